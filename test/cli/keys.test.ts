import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { openDatabase } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { graphql } from '../helpers/graphql-client.js';
import { runCli, spawnServer } from '../helpers/server-process.js';

let dataDir: string;
beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-cli-'));
});
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('npm run cli -- keys', () => {
  it('prints a working key on its last line', async () => {
    const { code, stdout } = await runCli(['keys', 'create', '--tenant', 'acme'], { DATA_DIR: dataDir });
    expect(code).toBe(0);
    const key = stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^fsk_[A-Za-z0-9_-]{43}$/);

    const server = await spawnServer({ DATA_DIR: dataDir });
    try {
      // A key already exists, so the server made no first key of its own.
      expect(server.apiKey).toBeUndefined();
      const { status } = await graphql(server.url, `Bearer ${key}`, '{ files { edges { cursor } } }');
      expect(status).toBe(200);

      // While the server holds the embedded database, the CLI refuses clearly and harms nothing.
      const refused = await runCli(['keys', 'create', '--tenant', 'other'], { DATA_DIR: dataDir });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/in use by process \d+/);
      expect(refused.stderr).toMatch(/DATABASE_URL/);
      const still = await graphql(server.url, `Bearer ${key}`, '{ files { edges { cursor } } }');
      expect(still.status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 60_000);

  it.each([
    [['keys', 'create']],
    [['keys', 'create', '--tenant', '  ']],
    [['keys', 'delete', '--tenant', 'x']],
    [['keys', 'revoke']],
    [['keys', 'revoke', 'a', 'b']],
    [['keys', 'list', 'extra']],
    [['keys', 'list', '--tenant', ' ']],
    [[]],
  ])(
    'answers %j with its usage and exit code 2',
    async (args) => {
      const { code, stderr } = await runCli(args, { DATA_DIR: dataDir });
      expect(code).toBe(2);
      expect(stderr).toMatch(/usage: npm run cli -- keys create --tenant NAME\n.*keys list \[--tenant NAME\]\n.*keys revoke ID_OR_KEY/);
    },
  );
});

describe('npm run cli -- keys list and keys revoke', () => {
  it('list keys by id and tenant, never a key, and revoke one by its id', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-keys-'));
    try {
      // Made in this process (keys create has its own test): each CLI run costs a start of the database.
      const db = await openDatabase({ dataDir: dir, databaseUrl: undefined });
      const created = [];
      try {
        await applyMigrations(db);
        for (const tenant of ['acme', 'acme', 'beta']) created.push({ tenant, ...(await createApiKey(db.prisma, tenant)) });
      } finally {
        await db.close();
      }
      const listed = await runCli(['keys', 'list'], { DATA_DIR: dir });
      expect(listed.code).toBe(0);
      expect(listed.stdout).not.toMatch(/fsk_/);
      expect(listed.stdout.trim().split('\n').map((line) => line.split(/\s+/))).toEqual(
        created.map(({ id, tenant }) => [id, expect.stringMatching(/^\d{4}-\d\d-\d\dT/), tenant]),
      );
      expect((await runCli(['keys', 'list', '--tenant', 'beta'], { DATA_DIR: dir })).stdout.trim()).toMatch(new RegExp(`^${created[2].id}\\s`));

      const revoked = await runCli(['keys', 'revoke', created[0].id.toUpperCase()], { DATA_DIR: dir });
      expect(revoked).toMatchObject({ code: 0, stdout: expect.stringContaining(`Revoked the API key ${created[0].id} of tenant "acme"`) });
      expect((await runCli(['keys', 'list', '--tenant', 'acme'], { DATA_DIR: dir })).stdout.trim().split('\n')).toHaveLength(1);
      for (const unknown of [created[0].key, 'not-a-key']) {
        const again = await runCli(['keys', 'revoke', unknown], { DATA_DIR: dir });
        expect(again.code).toBe(1);
        expect(again.stderr).toMatch(/No such API key/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the first start of the embedded default', () => {
  it('creates a key and prints it once', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-first-'));
    try {
      const first = await spawnServer({ DATA_DIR: fresh }, 60_000);
      expect(first.apiKey).toMatch(/^fsk_/);
      const { status } = await graphql(first.url, `Bearer ${first.apiKey}`, '{ files { edges { cursor } } }');
      expect(status).toBe(200);
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      // Revoked, as a key read from a shipped log would be: no new one is made and printed for it.
      const revoked = await runCli(['keys', 'revoke', first.apiKey!], { DATA_DIR: fresh });
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toMatch(/^Revoked the API key [0-9a-f-]{36} of tenant "default"/);
      const second = await spawnServer({ DATA_DIR: fresh }, 60_000);
      expect(second.apiKey).toBeUndefined();
      expect(second.lines.join('\n')).not.toContain(first.apiKey);
      expect((await graphql(second.url, `Bearer ${first.apiKey}`, '{ files { edges { cursor } } }')).status).toBe(401);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  }, 180_000);
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../helpers/graphql-client.js';
import { runCli, spawnServer } from '../helpers/server-process.js';

let dataDir: string;
beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-cli-'));
});
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('npm run cli -- keys create', () => {
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

  it.each([[['keys', 'create']], [['keys', 'create', '--tenant', '  ']], [['keys', 'delete', '--tenant', 'x']], [[]]])(
    'answers %j with its usage and exit code 2',
    async (args) => {
      const { code, stderr } = await runCli(args, { DATA_DIR: dataDir });
      expect(code).toBe(2);
      expect(stderr).toMatch(/usage: npm run cli -- keys create --tenant NAME/);
    },
  );
});

describe('the first start of the embedded default', () => {
  it('creates a key and prints it once', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-first-'));
    try {
      const first = await spawnServer({ DATA_DIR: fresh });
      expect(first.apiKey).toMatch(/^fsk_/);
      const { status } = await graphql(first.url, `Bearer ${first.apiKey}`, '{ files { edges { cursor } } }');
      expect(status).toBe(200);
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      const second = await spawnServer({ DATA_DIR: fresh });
      expect(second.apiKey).toBeUndefined();
      expect(second.lines.join('\n')).not.toContain(first.apiKey);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  }, 60_000);
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { uploadFile } from '../helpers/graphql-client.js';
import { runCli, spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { collect, wsClient } from '../helpers/subscriptions.js';
import { createTestDatabase } from '../helpers/test-database.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-roles-'));
const started: ServerProcess[] = [];
afterAll(async () => {
  for (const server of started) server.child.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('ROLE', () => {
  it('refuses to split roles on the embedded database, saying why', async () => {
    const { code, stderr } = await runCli(['keys', 'create', '--tenant', 'x'], { DATA_DIR: dataDir, ROLE: 'api' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/ROLE=api .*DATABASE_URL/);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    'runs the API and the worker in separate processes on PostgreSQL, with live status crossing between them',
    async () => {
      const database = await createTestDatabase();
      try {
        const db = await openDatabase({ dataDir, databaseUrl: database.url });
        await applyMigrations(db);
        const key = `Bearer ${(await createApiKey(db.prisma, 'split')).key}`;
        await db.close();

        const env = { DATA_DIR: dataDir, DATABASE_URL: database.url! };
        const api = await spawnServer({ ...env, ROLE: 'api' });
        started.push(api);
        const { body } = await uploadFile(api.url, key, 'split roles '.repeat(200_000));
        const fileId = body.data.uploadFile.file.id;
        const client = wsClient(api.url.replace('http', 'ws') + '/graphql', key);
        const watch = collect(client, { fileId });
        // No worker yet: the file waits, queued.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(watch.events).toEqual([expect.objectContaining({ stage: 'QUEUED', sequence: 1 })]);

        const worker = await spawnServer({ ...env, ROLE: 'worker' });
        started.push(worker);
        await watch.done;
        await client.dispose();
        const sequences = watch.events.map((event) => event.sequence);
        expect(sequences).toEqual(sequences.map((_, index) => index + 1));
        expect(watch.events.at(-1)).toMatchObject({ status: 'COMPLETED', progress: 100 });
      } finally {
        for (const server of started.splice(0)) {
          server.child.kill('SIGTERM');
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        await database.drop();
      }
    },
    60_000,
  );
});

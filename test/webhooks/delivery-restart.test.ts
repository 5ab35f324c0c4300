import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { openDatabase } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { uploadFile } from '../helpers/graphql-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { createTestDatabase } from '../helpers/test-database.js';
import { answer, startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-hook-restart-'));
let running: ServerProcess | undefined;
afterAll(() => {
  running?.child.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('a server killed with kill -9 during a delivery', () => {
  it('sends it again after the restart, with the same webhook-id and body', async () => {
    const database = await createTestDatabase();
    const receiver = await startReceiver(() => {}); // holds the first request open
    try {
      const db = await openDatabase({ dataDir, databaseUrl: database.url });
      await applyMigrations(db);
      const key = `Bearer ${(await createApiKey(db.prisma, 'restart')).key}`;
      await db.close();
      const env = {
        DATA_DIR: dataDir,
        ...LOOPBACK_WEBHOOKS,
        WEBHOOK_TIMEOUT_MS: '1000',
        WEBHOOK_POLL_MS: '100',
        ...(database.url ? { DATABASE_URL: database.url } : {}),
      };

      running = await spawnServer(env);
      await uploadFile(running.url, key, 'restart', { variables: { webhookUrl: receiver.url, webhookEvents: ['FILE_COMPLETED'] } });
      await receiver.until((received) => received.length === 1);
      running.child.kill('SIGKILL');
      await running.exited;

      receiver.reply = answer(200);
      running = await spawnServer(env);
      await receiver.until((received) => received.length === 2, 20_000);
      const [first, second] = receiver.received;
      expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
      expect(second.body).toBe(first.body);
      expect(JSON.parse(second.body).type).toBe('file.completed');
      running.child.kill('SIGTERM');
      expect(await running.exited).toBe(0);
      running = undefined;
    } finally {
      await receiver.close();
      await database.drop();
    }
  }, 60_000);
});

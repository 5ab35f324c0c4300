import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { startService } from '../../src/service.js';
import { age, settledFile } from '../helpers/settled-files.js';
import { createTestDatabase } from '../helpers/test-database.js';
import { testConfig } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

let hook: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  hook = await startReceiver();
});
afterAll(async () => {
  await hook.close();
});

it('the service sweeps the delivery log and the status events when it starts, and says how much each removed', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-retention-'));
  const database = await createTestDatabase();
  const config = testConfig(dataDir, database.url, {
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_LOG_RETENTION: '7d',
    STATUS_EVENT_RETENTION: '7d',
  });
  try {
    const first = await startService(config, pino({ level: 'silent' }));
    const { key } = await createApiKey(first.db.prisma, 'alice');
    const url = `http://127.0.0.1:${first.port}`;
    // The two sweeps run side by side: the events aged are those of a file no delivery names.
    const hooked = await settledFile(url, `Bearer ${key}`, first.db.prisma, { webhookUrl: hook.url });
    const plain = await settledFile(url, `Bearer ${key}`, first.db.prisma);
    const deliveries = await first.db.prisma.webhookDelivery.count({ where: { fileId: hooked } });
    const events = await first.db.prisma.fileStatusEvent.count({ where: { fileId: plain } });
    await age(first.db.prisma, 'webhook_delivery', hooked, 8);
    await age(first.db.prisma, 'file_status_event', plain, 8);
    await first.stop();

    const lines: { msg: string; deleted?: number }[] = [];
    const second = await startService(config, pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }));
    try {
      const removed = (what: string) => lines.find((line) => line.msg.startsWith(`removed ${what}`))?.deleted;
      const deadline = Date.now() + 10_000;
      while ((removed('webhook deliveries') === undefined || removed('status events') === undefined) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(removed('webhook deliveries older than WEBHOOK_LOG_RETENTION')).toBe(deliveries);
      expect(removed('status events older than STATUS_EVENT_RETENTION')).toBe(events);
      expect(await second.db.prisma.webhookDelivery.count({ where: { fileId: hooked } })).toBe(0);
      expect(await second.db.prisma.fileStatusEvent.count({ where: { fileId: plain } })).toBe(0);
    } finally {
      await second.stop();
    }
  } finally {
    await database.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

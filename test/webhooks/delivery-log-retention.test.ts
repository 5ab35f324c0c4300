import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startService } from '../../src/service.js';
import { deleteExpiredDeliveries } from '../../src/webhooks/delivery-log-retention.js';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { createTestDatabase } from '../helpers/test-database.js';
import { startTestServer, testConfig, type TestServer } from '../helpers/test-server.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const WEBHOOK_ENV = { WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_POLL_MS: '50' };
const DAY_MS = 86_400_000;

let hook: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  hook = await startReceiver();
});
afterAll(async () => {
  await hook.close();
});

type Prisma = TestServer['service']['db']['prisma'];

/** Waits until none of the file's deliveries is waiting or being sent. */
async function deliveriesSettled(prisma: Prisma, fileId: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (await prisma.webhookDelivery.count({ where: { fileId, state: { in: ['PENDING', 'SENDING'] } } })) {
    if (Date.now() > deadline) throw new Error('deliveries did not settle');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Uploads a file with a webhook and waits until each of its deliveries is settled. */
async function fileWithSettledDeliveries(url: string, key: string, prisma: Prisma): Promise<string> {
  const { body } = await uploadFile(url, key, 'kept or not', { variables: { webhookUrl: hook.url } });
  const fileId = body.data.uploadFile.file.id;
  await waitForTerminal(url, key, fileId);
  await deliveriesSettled(prisma, fileId);
  return fileId;
}

async function age(prisma: Prisma, fileId: string, days: number) {
  await prisma.$executeRaw`UPDATE webhook_delivery SET created_at = now() - ${days}::int * interval '1 day' WHERE file_id = ${fileId}::uuid`;
}

describe('deleteExpiredDeliveries', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer(WEBHOOK_ENV);
    alice = await server.tenant('alice');
  });
  afterAll(async () => {
    await server.stop();
  });

  it('deletes the settled deliveries older than the retention, with their attempts, in batches; open and newer ones stay', async () => {
    const { prisma } = server.service.db;
    const [old, recent] = [
      await fileWithSettledDeliveries(server.url, alice, prisma),
      await fileWithSettledDeliveries(server.url, alice, prisma),
    ];
    await age(prisma, old, 31);
    await age(prisma, recent, 29);
    // One of the old file's deliveries is waiting for a retry: the log must keep it, and its attempts.
    const oldDeliveries = await prisma.webhookDelivery.findMany({ where: { fileId: old }, orderBy: { sequence: 'asc' } });
    expect(oldDeliveries.length).toBeGreaterThanOrEqual(3);
    const waiting = oldDeliveries.at(-1)!;
    await prisma.webhookDelivery.update({ where: { id: waiting.id }, data: { state: 'PENDING', nextAttemptAt: new Date(Date.now() + 3_600_000) } });
    const expired = oldDeliveries.slice(0, -1).map((delivery) => delivery.id);
    const recentCount = await prisma.webhookDelivery.count({ where: { fileId: recent } });

    const deleted = await deleteExpiredDeliveries(prisma, 30 * DAY_MS, { batchSize: 2 });

    expect(deleted).toBe(expired.length);
    expect(await prisma.webhookDelivery.findMany({ where: { fileId: old }, select: { id: true } })).toEqual([{ id: waiting.id }]);
    expect(await prisma.webhookAttempt.count({ where: { deliveryId: { in: expired } } })).toBe(0);
    expect(await prisma.webhookAttempt.count({ where: { deliveryId: waiting.id } })).toBe(1);
    expect(await prisma.webhookDelivery.count({ where: { fileId: recent } })).toBe(recentCount);
    // What the log's readers see.
    const { body } = await graphql(server.url, alice, `query($id: ID!) { file(id: $id) { webhookDeliveries { id state } } }`, { id: old });
    expect(body.data.file.webhookDeliveries).toEqual([{ id: waiting.id, state: 'PENDING' }]);
  });

  it("keeps the deliveries of a file whose webhook a 410 disabled, since redelivering one turns it back on", async () => {
    const { prisma } = server.service.db;
    const fileId = await fileWithSettledDeliveries(server.url, alice, prisma);
    await age(prisma, fileId, 31);
    await prisma.file.update({ where: { id: fileId }, data: { webhookDisabledAt: new Date() } });
    const before = await prisma.webhookDelivery.count({ where: { fileId } });

    await deleteExpiredDeliveries(prisma, 30 * DAY_MS);

    expect(await prisma.webhookDelivery.count({ where: { fileId } })).toBe(before);
  });

  it('counts a redelivered delivery from its redelivery', async () => {
    const { prisma } = server.service.db;
    const fileId = await fileWithSettledDeliveries(server.url, alice, prisma);
    await age(prisma, fileId, 31);
    const last = await prisma.webhookDelivery.findFirstOrThrow({ where: { fileId }, orderBy: { sequence: 'desc' } });
    const received = hook.received.length;
    const { body } = await graphql(server.url, alice, `mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }`, { id: last.id });
    expect(body.data.redeliverWebhook.id).toBe(last.id);
    await hook.until((all) => all.length > received);
    await deliveriesSettled(prisma, fileId);

    await deleteExpiredDeliveries(prisma, 30 * DAY_MS);

    expect(await prisma.webhookDelivery.findMany({ where: { fileId }, select: { id: true, state: true } })).toEqual([{ id: last.id, state: 'DELIVERED' }]);
    expect(await prisma.webhookAttempt.count({ where: { deliveryId: last.id } })).toBe(2);
  });

  it('ends between batches once told to stop', async () => {
    const { prisma } = server.service.db;
    const fileId = await fileWithSettledDeliveries(server.url, alice, prisma);
    await age(prisma, fileId, 31);
    const before = await prisma.webhookDelivery.count();
    let batches = 0;

    const deleted = await deleteExpiredDeliveries(prisma, 30 * DAY_MS, { batchSize: 1, stopping: () => batches++ >= 1 });

    expect(deleted).toBe(1);
    expect(await prisma.webhookDelivery.count()).toBe(before - 1);
  });
});

describe('the service', () => {
  it('sweeps the delivery log when it starts, and says how much it removed', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-retention-'));
    const database = await createTestDatabase();
    const config = testConfig(dataDir, database.url, { ...WEBHOOK_ENV, WEBHOOK_LOG_RETENTION: '7d' });
    try {
      const first = await startService(config, pino({ level: 'silent' }));
      const { key } = await createApiKey(first.db.prisma, 'alice');
      const fileId = await fileWithSettledDeliveries(`http://127.0.0.1:${first.port}`, `Bearer ${key}`, first.db.prisma);
      const count = await first.db.prisma.webhookDelivery.count({ where: { fileId } });
      await age(first.db.prisma, fileId, 8);
      await first.stop();

      const lines: { msg: string; webhookDeliveries?: number }[] = [];
      const second = await startService(config, pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) }));
      try {
        const deadline = Date.now() + 10_000;
        while (!lines.some((line) => line.msg.startsWith('removed webhook deliveries')) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(lines.find((line) => line.msg.startsWith('removed webhook deliveries'))?.webhookDeliveries).toBe(count);
        expect(await second.db.prisma.webhookDelivery.count({ where: { fileId } })).toBe(0);
      } finally {
        await second.stop();
      }
    } finally {
      await database.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('WEBHOOK_LOG_RETENTION', () => {
  const retention = (value?: string) => loadConfig(value === undefined ? {} : { WEBHOOK_LOG_RETENTION: value }).webhooks.logRetentionMs;

  it('is 30 days unless set; 0 keeps everything', () => {
    expect(retention()).toBe(30 * DAY_MS);
    expect(retention('12h')).toBe(12 * 3_600_000);
    expect(retention('1h')).toBe(3_600_000);
    expect(retention('0')).toBe(0);
  });

  it('refuses what is not one duration of an hour or more, naming the setting', () => {
    // A bare number is milliseconds: 30 meant as days would empty the log at start.
    for (const value of ['forever', '-1d', '30 days', '1d,2d', '30', '59m']) {
      expect(() => retention(value)).toThrow(ConfigError);
      expect(() => retention(value)).toThrow(/WEBHOOK_LOG_RETENTION/);
    }
  });
});

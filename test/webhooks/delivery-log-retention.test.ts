import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { deleteExpiredDeliveries } from '../../src/webhooks/delivery-log-retention.js';
import { graphql } from '../helpers/graphql-client.js';
import { age, deliveriesSettled, settledFile } from '../helpers/settled-files.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const WEBHOOK_ENV = { ...LOOPBACK_WEBHOOKS, WEBHOOK_POLL_MS: '50' };
const DAY_MS = 86_400_000;

let hook: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  hook = await startReceiver();
});
afterAll(async () => {
  await hook.close();
});

/** A file whose deliveries are all settled. */
const fileWithSettledDeliveries = (url: string, key: string, prisma: TestServer['service']['db']['prisma']) =>
  settledFile(url, key, prisma, { webhookUrl: hook.url });

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
    await age(prisma, 'webhook_delivery', old, 31);
    await age(prisma, 'webhook_delivery', recent, 29);
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
    await age(prisma, 'webhook_delivery', fileId, 31);
    await prisma.file.update({ where: { id: fileId }, data: { webhookDisabledAt: new Date() } });
    const before = await prisma.webhookDelivery.count({ where: { fileId } });

    await deleteExpiredDeliveries(prisma, 30 * DAY_MS);

    expect(await prisma.webhookDelivery.count({ where: { fileId } })).toBe(before);
  });

  it('counts a redelivered delivery from its redelivery', async () => {
    const { prisma } = server.service.db;
    const fileId = await fileWithSettledDeliveries(server.url, alice, prisma);
    await age(prisma, 'webhook_delivery', fileId, 31);
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
    await age(prisma, 'webhook_delivery', fileId, 31);
    const before = await prisma.webhookDelivery.count();
    let batches = 0;

    const deleted = await deleteExpiredDeliveries(prisma, 30 * DAY_MS, { batchSize: 1, stopping: () => batches++ >= 1 });

    expect(deleted).toBe(1);
    expect(await prisma.webhookDelivery.count()).toBe(before - 1);
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

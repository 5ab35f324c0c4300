import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { deleteExpiredStatusEvents } from '../../src/status/status-event-retention.js';
import { graphql } from '../helpers/graphql-client.js';
import { age, settledFile } from '../helpers/settled-files.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const DAY_MS = 86_400_000;

describe('deleteExpiredStatusEvents', () => {
  let server: TestServer;
  let alice: string;
  let hook: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    hook = await startReceiver();
    server = await startTestServer({ ...LOOPBACK_WEBHOOKS, WEBHOOK_POLL_MS: '50' });
    alice = await server.tenant('alice');
  });
  afterAll(async () => {
    await server.stop();
    await hook.close();
  });

  const eventIds = async (fileId: string) =>
    (await server.service.db.prisma.fileStatusEvent.findMany({ where: { fileId }, orderBy: { id: 'asc' }, select: { id: true } })).map((row) => row.id);

  it('deletes the events older than the retention, in batches; those a logged delivery names and newer ones stay', async () => {
    const { prisma } = server.service.db;
    const plain = await settledFile(server.url, alice, prisma);
    const hooked = await settledFile(server.url, alice, prisma, { webhookUrl: hook.url, webhookEvents: ['FILE_COMPLETED'] });
    const recent = await settledFile(server.url, alice, prisma);
    await age(prisma, 'file_status_event', plain, 31);
    await age(prisma, 'file_status_event', hooked, 31);
    const [plainEvents, hookedEvents, recentEvents] = [await eventIds(plain), await eventIds(hooked), await eventIds(recent)];
    expect(plainEvents.length).toBeGreaterThanOrEqual(3);
    const named = await prisma.webhookDelivery.findMany({ where: { fileId: hooked }, select: { eventId: true } });
    expect(named).toEqual([{ eventId: hookedEvents.at(-1) }]);
    const statusBefore = (await graphql(server.url, alice, 'query($id: ID!) { fileStatus(fileId: $id) { status sequence } }', { id: plain })).body;

    const deleted = await deleteExpiredStatusEvents(prisma, 30 * DAY_MS, { batchSize: 2 });

    expect(deleted).toBe(plainEvents.length + hookedEvents.length - 1);
    expect(await eventIds(plain)).toEqual([]);
    expect(await eventIds(hooked)).toEqual([hookedEvents.at(-1)]);
    expect(await eventIds(recent)).toEqual(recentEvents);
    // Pollers read the file's current status, which no sweep touches.
    const statusAfter = (await graphql(server.url, alice, 'query($id: ID!) { fileStatus(fileId: $id) { status sequence } }', { id: plain })).body;
    expect(statusAfter).toEqual(statusBefore);
    expect(statusAfter.data.fileStatus).toEqual({ status: 'COMPLETED', sequence: plainEvents.length });

    // Once the delivery log lets the delivery go, its event goes at the next sweep.
    await prisma.webhookDelivery.deleteMany({ where: { fileId: hooked } });
    expect(await deleteExpiredStatusEvents(prisma, 30 * DAY_MS)).toBe(1);
    expect(await eventIds(hooked)).toEqual([]);
  });

  it('ends between batches once told to stop', async () => {
    const { prisma } = server.service.db;
    await settledFile(server.url, alice, prisma);
    await prisma.$executeRaw`UPDATE file_status_event SET created_at = now() - interval '31 days'`;
    const before = await prisma.fileStatusEvent.count();
    let batches = 0;

    const deleted = await deleteExpiredStatusEvents(prisma, 30 * DAY_MS, { batchSize: 1, stopping: () => batches++ >= 1 });

    expect(deleted).toBe(1);
    expect(await prisma.fileStatusEvent.count()).toBe(before - 1);
  });
});

describe('STATUS_EVENT_RETENTION', () => {
  const retention = (value?: string) => loadConfig(value === undefined ? {} : { STATUS_EVENT_RETENTION: value }).statusEventRetentionMs;

  it('is 30 days unless set; 0 keeps everything', () => {
    expect(retention()).toBe(30 * DAY_MS);
    expect(retention('7d')).toBe(7 * DAY_MS);
    expect(retention('0')).toBe(0);
  });

  it('refuses a bare number or less than an hour, naming the setting', () => {
    for (const value of ['30', '59m', 'week']) expect(() => retention(value)).toThrow(ConfigError);
    expect(() => retention('30')).toThrow(/STATUS_EVENT_RETENTION/);
  });
});

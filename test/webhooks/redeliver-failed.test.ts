import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../helpers/graphql-client.js';
import { deliveriesSettled, settledFile } from '../helpers/settled-files.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { answer, receiversClosedAfterEach, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const REDELIVER_FAILED = 'mutation($since: DateTime!) { redeliverFailedWebhooks(since: $since) }';

let server: TestServer;
let alice: string;
let bob: string;
const receiver = receiversClosedAfterEach();

beforeAll(async () => {
  server = await startTestServer({
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0,50ms',
    WEBHOOK_POLL_MS: '50',
  });
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
});
afterAll(() => server.stop());

/** A receiver that is down (500) until the test brings it back. */
const receiverDown = () => receiver(answer(500));

const deliveriesOf = (fileId: string) =>
  server.service.db.prisma.webhookDelivery.findMany({ where: { fileId }, orderBy: { sequence: 'asc' }, select: { id: true, eventId: true, eventType: true, state: true } });

describe('redeliverFailedWebhooks', () => {
  it("after an outage, sends again what failed since then: each file's latest state, with its webhook-id", async () => {
    const { prisma } = server.service.db;
    const hook = await receiverDown();
    const since = new Date().toISOString();
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await settledFile(server.url, alice, prisma, { webhookUrl: hook.url }));
    const completed = [];
    for (const fileId of files) {
      const deliveries = await deliveriesOf(fileId);
      // Every change failed or was superseded; the file.processing ones that failed had a later one.
      expect(deliveries.every((delivery) => delivery.state === 'FAILED' || delivery.state === 'DISCARDED')).toBe(true);
      expect(deliveries.at(-1)).toMatchObject({ eventType: 'file.completed', state: 'FAILED' });
      completed.push(deliveries.at(-1)!);
    }
    // As if the first change's attempts had all run out before the next change came: a stale
    // state, which must not go out again after the newer ones.
    const stale = (await deliveriesOf(files[0]))[0];
    expect(stale.eventType).toBe('file.processing');
    await prisma.webhookDelivery.update({ where: { id: stale.id }, data: { state: 'FAILED', discardReason: null } });
    const failedOnce = hook.received.length;

    hook.reply = answer(204);
    const { body } = await graphql(server.url, alice, REDELIVER_FAILED, { since });

    expect(body).toEqual({ data: { redeliverFailedWebhooks: 3 } });
    await hook.until((received) => received.length === failedOnce + 3);
    for (const fileId of files) await deliveriesSettled(prisma, fileId);
    const resent = hook.received.slice(failedOnce);
    const { webhookIds } = server.service.services;
    const completedIds = await Promise.all(completed.map((delivery) => webhookIds.of(delivery.eventId)));
    expect(resent.map((request) => request.headers['webhook-id']).sort()).toEqual(completedIds.sort());
    expect(resent.map((request) => JSON.parse(request.body).type)).toEqual(['file.completed', 'file.completed', 'file.completed']);
    expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: stale.id }, select: { state: true } })).toEqual({ state: 'FAILED' });
    for (const delivery of completed) {
      expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id }, select: { state: true } })).toEqual({ state: 'DELIVERED' });
    }
    // Nothing is left to send: asking again queues none.
    expect((await graphql(server.url, alice, REDELIVER_FAILED, { since })).body).toEqual({ data: { redeliverFailedWebhooks: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hook.received).toHaveLength(failedOnce + 3);
  });

  it('leaves a failed terminal event after which its file and URL had a later one: a retry that completed', async () => {
    const { prisma } = server.service.db;
    const { status } = server.service.services;
    const hook = await receiverDown();
    const since = new Date().toISOString();
    const tenant = await prisma.tenant.findFirstOrThrow({ where: { name: 'alice' } });
    const fileId = await prisma.$transaction(async (tx) => {
      const file = await tx.file.create({
        data: { tenantId: tenant.id, filename: 'f.txt', mimeType: 'text/plain', size: 1n, sha256: '0'.repeat(64), webhookUrl: hook.url, webhookEvents: ['file.completed', 'file.failed'] },
      });
      await status.recordQueued(tx, file, {});
      return file.id;
    });
    // Its first attempt fails while the receiver is down, and so does the delivery that says so.
    await status.record({ fileId, status: 'FAILED', progress: 40, message: 'could not convert' });
    await deliveriesSettled(prisma, fileId);
    expect((await deliveriesOf(fileId)).map((delivery) => [delivery.eventType, delivery.state])).toEqual([['file.failed', 'FAILED']]);
    // The receiver is back; the owner retries the file, which completes, and the receiver hears it.
    hook.reply = answer(204);
    await prisma.$transaction((tx) => status.recordRetry(tx, fileId));
    await status.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    await hook.until((received) => received.some((request) => JSON.parse(request.body).type === 'file.completed'));
    await deliveriesSettled(prisma, fileId);
    const heard = hook.received.length;

    const { body } = await graphql(server.url, alice, REDELIVER_FAILED, { since });

    // The first attempt's failure, sent now, would be the receiver's last word on a completed file.
    expect(body).toEqual({ data: { redeliverFailedWebhooks: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hook.received).toHaveLength(heard);
    expect((await deliveriesOf(fileId)).map((delivery) => [delivery.eventType, delivery.state])).toEqual([
      ['file.failed', 'FAILED'],
      ['file.completed', 'DELIVERED'],
    ]);
  });

  it("leaves another tenant's failures, those before `since`, and a file whose webhook a 410 disabled", async () => {
    const { prisma } = server.service.db;
    const hook = await receiverDown();
    const gone = await receiver(answer(410));
    const completedOnly = { webhookUrl: hook.url, webhookEvents: ['FILE_COMPLETED'] };
    const bobs = await settledFile(server.url, bob, prisma, completedOnly);
    const before = await settledFile(server.url, alice, prisma, completedOnly);
    const since = new Date().toISOString();
    const disabled = await settledFile(server.url, alice, prisma, { webhookUrl: gone.url, webhookEvents: ['FILE_COMPLETED'] });
    const missed = await settledFile(server.url, alice, prisma, completedOnly);
    const failedOnce = hook.received.length;

    hook.reply = answer(204);
    const { body } = await graphql(server.url, alice, REDELIVER_FAILED, { since });

    expect(body).toEqual({ data: { redeliverFailedWebhooks: 1 } });
    await hook.until((received) => received.length === failedOnce + 1);
    await deliveriesSettled(prisma, missed);
    expect(JSON.parse(hook.received.at(-1)!.body).data.file_id).toBe(missed);
    for (const fileId of [bobs, before, disabled]) expect((await deliveriesOf(fileId)).map((delivery) => delivery.state)).toEqual(['FAILED']);
    expect(gone.received).toHaveLength(1);
    expect((await prisma.file.findUniqueOrThrow({ where: { id: disabled } })).webhookDisabledAt).not.toBeNull();
  });

  it('refuses a since that is not a date-time, saying so, and a caller without a key', async () => {
    for (const since of ['yesterday', '2026-11-29', '2026-13-45T99:00:00Z', '2026-11-29T08:00:00', 1_700_000_000, '0000-06-01T00:00:00Z', '0001-01-01T00:00:00+01:00']) {
      const { body } = await graphql(server.url, alice, REDELIVER_FAILED, { since });
      expect(body.errors?.[0].message).toMatch(/^Variable "\$since" got invalid value .*DateTime is an ISO-8601 date and time with its zone/);
      expect(body.data).toBeUndefined();
    }
    const literal = await graphql(server.url, alice, 'mutation { redeliverFailedWebhooks(since: "soon") }');
    expect(literal.body.errors?.[0].message).toMatch(/DateTime is an ISO-8601 date and time/);
    const keyless = await graphql(server.url, '', REDELIVER_FAILED, { since: new Date().toISOString() });
    expect(keyless.body.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });
});

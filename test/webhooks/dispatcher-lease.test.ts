import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { filesWithWebhook, newDispatcher } from '../helpers/webhook-dispatcher.js';
import { receiversClosedAfterEach } from '../helpers/webhook-receiver.js';

let db: Database;
let closeDatabase: () => Promise<void>;
const startReceiver = receiversClosedAfterEach();

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('dispatcher-lease'));
});
afterAll(async () => {
  await closeDatabase();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deliveriesOf(fileId: string) {
  return db.prisma.webhookDelivery.findMany({ where: { fileId }, orderBy: { sequence: 'asc' }, include: { attempts: true } });
}

/** `db`, each write of a tenant's first webhook secret (ensureWebhookSecret's) held up by `ms`. */
function stallingSecretWrites(ms: number): Database {
  const prisma = new Proxy(db.prisma, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'tenant') return value;
      return new Proxy(value, {
        get(delegate, name, delegateReceiver) {
          const method = Reflect.get(delegate, name, delegateReceiver);
          if (name !== 'updateMany') return method;
          return async (...args: unknown[]) => {
            await sleep(ms);
            return method.apply(delegate, args);
          };
        },
      });
    },
  });
  return { ...db, prisma } as Database;
}

describe('an attempt and its lease', () => {
  it("leaves an attempt that the stop's grace cut short to its lease, uncounted, and it goes out again with its webhook-id", async () => {
    // Healthy, only slower than the grace: the stop closes the request's socket mid-answer.
    const receiver = await startReceiver((_request, _index, res) => void setTimeout(() => res.writeHead(204).end(), 1_000));
    const [fileId] = await filesWithWebhook(db, 1, receiver.url);
    // A single attempt: a cut-short request counted as one would fail the delivery for good.
    const settings = { WEBHOOK_RETRY_SCHEDULE: '0', WEBHOOK_TIMEOUT_MS: '2000' };
    const first = newDispatcher(db, settings);
    first.dispatcher.start();
    await receiver.until((received) => received.length === 1, 5_000);
    await first.close(200);
    await sleep(300);
    const [cutShort] = await deliveriesOf(fileId);
    expect(cutShort).toMatchObject({ state: 'SENDING', lockedBy: first.dispatcher.id, attemptCount: 1, attempts: [] });

    // Once the lease (2 × 2 s + 1 s) lapses, another dispatcher sends it again.
    const second = newDispatcher(db, settings);
    second.dispatcher.start();
    try {
      await receiver.until((received) => received.length === 2, 10_000);
      const ids = receiver.received.map((request) => request.headers['webhook-id']);
      expect(ids[1]).toBe(ids[0]);
      await expect.poll(async () => (await deliveriesOf(fileId))[0].state, { timeout: 5_000 }).toBe('DELIVERED');
      const [delivered] = await deliveriesOf(fileId);
      expect(delivered.attempts).toHaveLength(1);
      expect(delivered.attempts[0]).toMatchObject({ responseStatus: 204, error: null });
    } finally {
      await second.close();
    }
  });

  it('gives back, unsent, a delivery whose reads before sending outlasted its time, so that it and the next go out once each, in order', async () => {
    const receiver = await startReceiver();
    // A new tenant, with no secret yet: the first send writes one, here 2.5 s late.
    const [fileId] = await filesWithWebhook(db, 1, receiver.url);
    await db.prisma.webhookDelivery.updateMany({ where: { fileId }, data: { state: 'DELIVERED', nextAttemptAt: null } });
    const recorder = new StatusRecorder(db.prisma, createStatusBus());
    // A lease of 2 × 300 ms + 1 s, of which a send may start in the first 300 ms.
    const settings = { WEBHOOK_TIMEOUT_MS: '300' };
    const stalled = newDispatcher(stallingSecretWrites(2_500), settings);
    const other = newDispatcher(db, settings);
    try {
      await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 10 });
      stalled.dispatcher.start();
      await expect.poll(async () => (await deliveriesOf(fileId))[1]?.lockedBy, { timeout: 5_000 }).toBe(stalled.dispatcher.id);
      await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 20 });
      other.dispatcher.start();
      await receiver.until((received) => received.length >= 2, 10_000);
      // Past the stalled read: a stale send would have arrived by now.
      await sleep(1_500);
      expect(receiver.payloads().map((payload) => payload.data.sequence)).toEqual([2, 3]);
      expect((await deliveriesOf(fileId)).map((delivery) => delivery.state)).toEqual(['DELIVERED', 'DELIVERED', 'DELIVERED']);
    } finally {
      await stalled.close();
      await other.close();
    }
  });
});

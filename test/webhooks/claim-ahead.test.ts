import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { countingClaims, filesWithWebhook, newDispatcher, recorderHandingTo } from '../helpers/webhook-dispatcher.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

let db: Database;
let closeDatabase: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('claim-ahead'));
});
afterAll(async () => {
  await closeDatabase();
});

/** A started dispatcher on the test's database. */
function startDispatcher(settings: Record<string, string>, database: Database = db) {
  const started = newDispatcher(database, settings);
  started.dispatcher.start();
  return started;
}

async function deliveryStates(files: string[]) {
  return db.prisma.webhookDelivery.findMany({ where: { fileId: { in: files } }, select: { state: true, attemptCount: true, lockedBy: true } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the delivery of a file's change is recorded as delivered. */
async function deliveredOf(fileId: string, sequence: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await db.prisma.webhookDelivery.count({ where: { fileId, sequence, state: 'DELIVERED' } })) === 0) {
    if (Date.now() > deadline) throw new Error(`the delivery of ${fileId}:${sequence} was not recorded in time`);
    await sleep(10);
  }
}

describe('deliveries claimed ahead of a free slot', () => {
  it('never sends more at once than the limits allow, and sends every one', async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    const receiver = await startReceiver((_request, _index, res: http.ServerResponse) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(204).end();
      }, 60);
    });
    const files = await filesWithWebhook(db, 12, receiver.url);
    const { dispatcher, close } = startDispatcher({ WEBHOOK_CONCURRENCY: '8', WEBHOOK_CONCURRENCY_PER_HOST: '2' });
    try {
      await receiver.until((received) => received.length >= 1, 5_000);
      // Claimed: the host's limit of 2 and as many again waiting; sending: 2.
      const held = (await deliveryStates(files)).filter((delivery) => delivery.state === 'SENDING' && delivery.lockedBy === dispatcher.id);
      expect(held.length).toBeGreaterThan(2);
      await receiver.until((received) => received.length === 12, 10_000);
      expect(mostInFlight).toBe(2);
    } finally {
      await close();
      await receiver.close();
    }
  });

  it('gives back, when it stops, the deliveries still waiting for a slot', async () => {
    const receiver = await startReceiver(() => {}); // never answers
    const files = await filesWithWebhook(db, 3, receiver.url);
    const { dispatcher, close } = startDispatcher({ WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_TIMEOUT_MS: '5000' });
    try {
      await receiver.until((received) => received.length === 1, 5_000);
      await sleep(100);
      expect((await deliveryStates(files)).filter((delivery) => delivery.lockedBy === dispatcher.id)).toHaveLength(2);
    } finally {
      await close(100);
      await receiver.close();
    }
    const states = await deliveryStates(files);
    // The one being sent keeps its lease (its attempt may still be running); the one waiting is
    // due again at once, never attempted.
    expect(states.filter((delivery) => delivery.state === 'SENDING')).toHaveLength(1);
    expect(states.filter((delivery) => delivery.state === 'PENDING')).toEqual([{ state: 'PENDING', attemptCount: 0, lockedBy: null }, { state: 'PENDING', attemptCount: 0, lockedBy: null }]);
  });

  it('does not claim round after round while a hanging receiver holds all its host may', async () => {
    const hanging = await startReceiver(() => {}); // never answers
    const healthy = await startReceiver();
    await filesWithWebhook(db, 3, hanging.url);
    const [fileId] = await filesWithWebhook(db, 1, healthy.url);
    const { database, claims } = countingClaims(db);
    // The hanging host holds 2 (1 sending, 1 waiting) and has a third due, for as long as the first hangs.
    const { dispatcher, close } = startDispatcher({ WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_TIMEOUT_MS: '10000', WEBHOOK_POLL_MS: '60000' }, database);
    const recorder = recorderHandingTo(db, dispatcher);
    try {
      await hanging.until((received) => received.length === 1, 5_000);
      await healthy.until((received) => received.length === 1, 5_000);
      const before = claims();
      // The healthy host's changes are handed over and sent one after another, each send a round
      // of the dispatcher's: a dispatcher that claimed in every round while a host is at its bound
      // claimed 22 times. Each change waits for the previous delivery's record: one queued behind
      // a delivery still open is not handed over, and rightly wakes a claim.
      for (let progress = 1; progress <= 20; progress++) {
        const event = await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress });
        await healthy.until((received) => received.length === 1 + progress, 5_000);
        await deliveredOf(fileId, event!.sequence);
      }
      expect(claims() - before).toBeLessThanOrEqual(5);
    } finally {
      recorder.handWebhooksTo(null);
      await close(100);
      await hanging.close();
      await healthy.close();
    }
  });

  it('claims again as slots free, not at the next poll, while more are due than the bounds let it hold', async () => {
    const receiver = await startReceiver();
    const files = await filesWithWebhook(db, 60, receiver.url);
    // Holds at most 4 at once (2 sending, 2 waiting): 60 due take 15 claims or more.
    const { close } = startDispatcher({ WEBHOOK_CONCURRENCY_PER_TENANT: '2', WEBHOOK_POLL_MS: '60000' });
    try {
      await receiver.until((received) => received.length === 60, 10_000);
    } finally {
      await close();
      await receiver.close();
    }
  });
});

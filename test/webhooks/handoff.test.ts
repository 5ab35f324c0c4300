import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus, topics } from '../../src/status/status-bus.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { filesWithWebhook, interceptingQueryRaw, newDispatcher, recorderHandingTo } from '../helpers/webhook-dispatcher.js';
import { startReceiver } from '../helpers/webhook-receiver.js';
import { WebhookIds } from '../../src/webhooks/webhook-ids.js';

let db: Database;
let closeDatabase: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('handoff'));
});
afterAll(async () => {
  await closeDatabase();
});

/** A receiver that answers 204 after `delayMs`, noting the most requests it had open at once. */
async function slowReceiver(delayMs: number) {
  let open = 0;
  const counts = { mostOpen: 0 };
  const receiver = await startReceiver((_request, _index, res: http.ServerResponse) => {
    counts.mostOpen = Math.max(counts.mostOpen, ++open);
    setTimeout(() => {
      open--;
      res.writeHead(204).end();
    }, delayMs);
  });
  return Object.assign(receiver, { counts });
}

/** Files whose first status went out already: a started dispatcher finds nothing of theirs to claim. */
async function filesDelivered(count: number, webhookUrl: string) {
  const files = await filesWithWebhook(db, count, webhookUrl);
  await db.prisma.webhookDelivery.updateMany({ where: { fileId: { in: files } }, data: { state: 'DELIVERED', nextAttemptAt: null } });
  return files;
}

const progress = (fileId: string, value: number) => ({ fileId, status: 'PROCESSING' as const, progress: value });

async function deliveriesOf(files: string[]) {
  return db.prisma.webhookDelivery.findMany({
    where: { fileId: { in: files } },
    orderBy: [{ fileId: 'asc' }, { sequence: 'asc' }],
    include: { attempts: true },
  });
}

describe('deliveries handed over by the status change that queues them', () => {
  it('sends what a change hands over with no claim at all, leased from the start, and records it', async () => {
    const receiver = await startReceiver();
    const [fileId] = await filesWithWebhook(db, 1, receiver.url);
    // Never started: it makes no claim, so only a handoff can reach it.
    const { dispatcher, close } = newDispatcher(db);
    try {
      const event = await recorderHandingTo(db, dispatcher).record(progress(fileId, 10));
      const [, handed] = await deliveriesOf([fileId]);
      expect(handed).toMatchObject({ sequence: event!.sequence, state: 'SENDING', lockedBy: dispatcher.id, attemptCount: 1 });

      await receiver.until((received) => received.length === 1, 5_000);
      expect(receiver.payloads()[0].data).toMatchObject({ file_id: fileId, sequence: event!.sequence, progress: 10 });
      expect(receiver.received[0].headers['webhook-id']).toBe(await new WebhookIds(db.prisma).of(handed.eventId));
    } finally {
      await close();
      await receiver.close();
    }
    const [first, second] = await deliveriesOf([fileId]);
    expect(first).toMatchObject({ sequence: 1, state: 'DISCARDED', discardReason: 'superseded' });
    expect(second).toMatchObject({ state: 'DELIVERED', attemptCount: 1, lockedBy: null });
    expect(second.attempts.map((attempt) => attempt.responseStatus)).toEqual([204]);
  });

  it('still hands over to the release before, which calls the nine-argument form with its dispatcher during a rolling deploy', async () => {
    const receiver = await startReceiver();
    const [fileId] = await filesDelivered(1, receiver.url);
    try {
      const [row] = await db.prisma.$queryRaw<{ sequence: number; handed: { id: string; fileId: string; url: string; lockedUntil: string } | null }[]>`
        SELECT sequence, handed FROM record_status_change(${fileId}::uuid, 'PROCESSING', 'CONVERTING', 30, NULL, '{}'::jsonb, 1,
                                                          'dispatcher-of-the-release-before', 30000)`;
      const delivery = await db.prisma.webhookDelivery.findFirstOrThrow({ where: { fileId, sequence: 2 } });
      expect(delivery).toMatchObject({ state: 'SENDING', lockedBy: 'dispatcher-of-the-release-before', attemptCount: 1 });
      expect(row.sequence).toBe(2);
      expect(row.handed).toMatchObject({ id: delivery.id, fileId, url: receiver.url });
      expect(new Date(row.handed!.lockedUntil)).toEqual(delivery.lockedUntil);
    } finally {
      await receiver.close();
    }
  });

  it('leaves a change to wait while a delivery of its file and URL is open, and sends it the moment that one is done', async () => {
    const receiver = await slowReceiver(500);
    const [fileId] = await filesDelivered(1, receiver.url);
    // No poll within the test: only the settled delivery's record can set the waiting one going.
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    dispatcher.start();
    const recorder = recorderHandingTo(db, dispatcher);
    try {
      await recorder.record(progress(fileId, 10));
      await receiver.until((received) => received.length === 1, 5_000);
      const later = await recorder.record(progress(fileId, 20));
      const open = (await deliveriesOf([fileId])).find((delivery) => delivery.sequence === later!.sequence);
      expect(open).toMatchObject({ state: 'PENDING', lockedBy: null, attemptCount: 0 });

      await receiver.until((received) => received.length === 2, 5_000);
      expect(receiver.payloads().map((payload) => payload.data.progress)).toEqual([10, 20]);
      expect(receiver.counts.mostOpen).toBe(1);
    } finally {
      await close();
      await receiver.close();
    }
  });

  it('gives back to the outbox what a batch hands over beyond what a claim would take', async () => {
    const receiver = await slowReceiver(1_000);
    const files = await filesDelivered(6, receiver.url);
    // One at a time to the host, so a claim would hold two: one sending, one waiting.
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_POLL_MS: '60000' });
    dispatcher.start();
    const recorder = recorderHandingTo(db, dispatcher);
    try {
      await recorder.record(progress(files[0], 10));
      await Promise.all(files.slice(1).map((fileId) => recorder.record(progress(fileId, 10))));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const latest = (await deliveriesOf(files)).filter((delivery) => delivery.sequence === 2);
      expect(latest.filter((delivery) => delivery.state === 'SENDING' && delivery.lockedBy === dispatcher.id)).toHaveLength(2);
      expect(latest.filter((delivery) => delivery.state === 'PENDING' && delivery.attemptCount === 0)).toHaveLength(4);

      await receiver.until((received) => received.length === 6, 15_000);
      expect(receiver.counts.mostOpen).toBe(1);
    } finally {
      await close();
      await receiver.close();
    }
    const latest = (await deliveriesOf(files)).filter((delivery) => delivery.sequence === 2);
    expect(latest.map((delivery) => [delivery.state, delivery.attempts.length])).toEqual(Array(6).fill(['DELIVERED', 1]));
  });

  it('gives back what a batch whose answer was lost may have handed over, once no other batch is unanswered', async () => {
    const receiver = await startReceiver();
    const [fileId] = await filesDelivered(1, receiver.url);
    await new StatusRecorder(db.prisma, createStatusBus()).record(progress(fileId, 10));
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    // Two batches asked it to take their deliveries; the first committed and handed one over, but
    // its answer was lost; the second has not answered yet.
    expect(dispatcher.accepting()).toBe(true);
    expect(dispatcher.accepting()).toBe(true);
    await db.prisma.webhookDelivery.updateMany({
      where: { fileId, sequence: 2 },
      data: { state: 'SENDING', lockedBy: dispatcher.id, lockedUntil: new Date(Date.now() + 60_000), attemptCount: 1 },
    });
    dispatcher.lost();
    expect(dispatcher.accepting()).toBe(false);
    dispatcher.start();
    try {
      // What the second batch hands over would be taken from it: nothing is given back meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.received).toHaveLength(0);
      dispatcher.take([], [], performance.now());
      // Given back, not left to its lease of a minute, and claimed again at once.
      await receiver.until((received) => received.length === 1, 5_000);
      expect(receiver.payloads()[0].data).toMatchObject({ file_id: fileId, progress: 10 });
    } finally {
      await close();
      await receiver.close();
    }
  });

  it('gives back, when it stops, what a batch answered lost while it was stopping may have handed over', async () => {
    const receiver = await startReceiver();
    const [fileId] = await filesDelivered(1, receiver.url);
    await new StatusRecorder(db.prisma, createStatusBus()).record(progress(fileId, 10));
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    try {
      // A batch in flight as the process stops: it committed and handed a delivery over, but its answer is lost.
      expect(dispatcher.accepting()).toBe(true);
      await db.prisma.webhookDelivery.updateMany({
        where: { fileId, sequence: 2 },
        data: { state: 'SENDING', lockedBy: dispatcher.id, lockedUntil: new Date(Date.now() + 60_000), attemptCount: 1 },
      });
      // Started only now, so that its first claim cannot take the delivery before the batch hands it over.
      dispatcher.start();
      const stopped = close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      dispatcher.lost();
      await stopped;
      // Due again for any dispatcher, not held by a stopped one for a minute.
      expect(await db.prisma.webhookDelivery.findFirstOrThrow({ where: { fileId, sequence: 2 } })).toMatchObject({
        state: 'PENDING',
        lockedBy: null,
        attemptCount: 0,
      });
      expect(receiver.received).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  });

  it('tells the other dispatchers of what it gives back, so one with free slots sends it before its poll', async () => {
    // The first request hangs (the full one's slot); every later one is answered at once.
    const receiver = await startReceiver((_request, index, res: http.ServerResponse) => {
      if (index > 0) res.writeHead(204).end();
    });
    const files = await filesDelivered(6, receiver.url);
    const bus = createStatusBus();
    const full = newDispatcher(db, { WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_POLL_MS: '60000', WEBHOOK_TIMEOUT_MS: '5000' }, () =>
      bus.publishWebhooksQueued(),
    );
    const other = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    full.dispatcher.start();
    other.dispatcher.start();
    const stopSignals = bus.onSignal(topics.webhooks, () => other.dispatcher.wake());
    const recorder = recorderHandingTo(db, full.dispatcher);
    try {
      await recorder.record(progress(files[0], 10));
      await receiver.until((received) => received.length === 1, 5_000);
      await Promise.all(files.slice(1).map((fileId) => recorder.record(progress(fileId, 10))));
      // Of the five, the full one keeps one waiting behind its hanging request and gives back four.
      await receiver.until((received) => received.length === 5, 3_000);
    } finally {
      await stopSignals();
      await Promise.all([full.close(100), other.close()]);
      await receiver.close();
    }
  });

  it('supersedes what it gives back when a later change of the file waits, as the change would have had it not been leased', async () => {
    const receiver = await startReceiver(() => {}); // never answers: the host's one slot stays taken
    const [sending, waiting, file] = await filesDelivered(3, receiver.url);
    // Never started: what it gives back goes back when it stops.
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_TIMEOUT_MS: '5000' });
    const recorder = recorderHandingTo(db, dispatcher);
    try {
      await recorder.record(progress(sending, 10));
      await recorder.record(progress(waiting, 10));
      const beyond = await recorder.record(progress(file, 10)); // beyond the host's bound: to be given back
      const later = await recorder.record(progress(file, 20)); // queued behind it, while it is still leased
      const states = await deliveriesOf([file]);
      expect(states.find((delivery) => delivery.sequence === beyond!.sequence)).toMatchObject({ state: 'SENDING', lockedBy: dispatcher.id });
      expect(states.find((delivery) => delivery.sequence === later!.sequence)).toMatchObject({ state: 'PENDING' });
    } finally {
      await close(100);
      await receiver.close();
    }
    const [, given, queuedBehind] = await deliveriesOf([file]);
    expect(given).toMatchObject({ state: 'DISCARDED', discardReason: 'superseded', lockedBy: null, attemptCount: 0 });
    expect(queuedBehind).toMatchObject({ state: 'PENDING', attemptCount: 0 });
    // Given back with no later change waiting, a delivery is due again as it was.
    expect((await deliveriesOf([waiting]))[1]).toMatchObject({ state: 'PENDING', lockedBy: null, attemptCount: 0 });
  });
  it('claims for a change of its own that queued a delivery without handing it over', async () => {
    const receiver = await startReceiver();
    const [fileId] = await filesDelivered(1, receiver.url);
    // A process that died while sending the file's next delivery: its lease lapses in a moment.
    await new StatusRecorder(db.prisma, createStatusBus()).record(progress(fileId, 10));
    await db.prisma.webhookDelivery.updateMany({
      where: { fileId, sequence: 2 },
      data: { state: 'SENDING', lockedBy: 'dispatcher-gone', lockedUntil: new Date(Date.now() + 1_500), attemptCount: 1 },
    });
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    dispatcher.start();
    const recorder = recorderHandingTo(db, dispatcher);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_700));
      // Queued behind the lapsed one, so not handed over: only the claim it wakes finds both.
      const later = await recorder.record(progress(fileId, 20));
      expect((await deliveriesOf([fileId])).find((delivery) => delivery.sequence === later!.sequence)).toMatchObject({ state: 'PENDING' });
      await receiver.until((received) => received.length === 2, 3_000);
      expect(receiver.payloads().map((payload) => payload.data.sequence)).toEqual([2, 3]);
    } finally {
      await close();
      await receiver.close();
    }
  });

  it('claims for a change that may have queued a delivery, not for one that it knows queued none', async () => {
    const receiver = await startReceiver();
    const [waiting] = await filesWithWebhook(db, 1, receiver.url);
    // Due in a moment, and nothing will announce it: only a claim can find it, and the poll is a minute away.
    await db.prisma.webhookDelivery.updateMany({ where: { fileId: waiting }, data: { nextAttemptAt: new Date(Date.now() + 1_500) } });
    const tenantId = (await db.prisma.file.findUniqueOrThrow({ where: { id: waiting } })).tenantId;
    const withoutWebhook = await db.prisma.$transaction(async (tx) => {
      const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x' } });
      return (await new StatusRecorder(db.prisma, createStatusBus()).recordQueued(tx, file, {})).fileId;
    });
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_POLL_MS: '60000' });
    dispatcher.start();
    const bus = createStatusBus();
    bus.onStatus((event) => dispatcher.statusChanged(event));
    const handing = new StatusRecorder(db.prisma, bus);
    handing.handWebhooksTo(dispatcher);
    // Another process's change, as this dispatcher hears it: nothing says what it queued.
    const elsewhere = new StatusRecorder(db.prisma, bus);
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_700));
      await handing.record(progress(withoutWebhook, 10));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.received).toHaveLength(0);

      await elsewhere.record(progress(withoutWebhook, 20));
      await receiver.until((received) => received.length === 1, 3_000);
      expect(receiver.payloads()[0].data).toMatchObject({ file_id: waiting, sequence: 1 });
    } finally {
      await close();
      await receiver.close();
    }
  });
});

describe('a record of attempts whose answer was lost', () => {
  it('claims what waited behind a delivery whose record lost its answer, not at the poll', async () => {
    const receiver = await slowReceiver(300);
    const [fileId] = await filesDelivered(1, receiver.url);
    // The first record is committed, and its answer lost with the connection.
    let loseNextRecord = true;
    const losing = interceptingQueryRaw(db, async (sql, run) => {
      const answer = await run();
      if (loseNextRecord && sql.includes('record_webhook_attempts')) {
        loseNextRecord = false;
        throw new Error('Connection terminated unexpectedly');
      }
      return answer;
    });
    // The lost answer said that a later delivery waits; the poll is a minute away.
    const { dispatcher, close } = newDispatcher(losing, { WEBHOOK_POLL_MS: '60000' });
    dispatcher.start();
    try {
      await recorderHandingTo(db, dispatcher).record(progress(fileId, 10));
      await receiver.until((received) => received.length === 1, 5_000);
      // Recorded where no dispatcher hears it: only the record of the delivery before it can set it going.
      await new StatusRecorder(db.prisma, createStatusBus()).record(progress(fileId, 20));
      await receiver.until((received) => received.length === 2, 5_000);
      expect(loseNextRecord).toBe(false);
      expect(receiver.payloads().map((payload) => payload.data.progress)).toEqual([10, 20]);
    } finally {
      await close();
      await receiver.close();
    }
  });
});

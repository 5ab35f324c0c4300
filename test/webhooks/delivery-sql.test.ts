import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';
import { recordAttempts, releaseDeliveries, type AttemptResult } from '../../src/webhooks/delivery-sql.js';

let server: TestServer;
let alice: string;
let hook: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  server = await startTestServer({ ...LOOPBACK_WEBHOOKS, WEBHOOK_POLL_MS: '50' });
  alice = await server.tenant('alice');
  hook = await startReceiver();
});
afterAll(async () => {
  await hook.close();
  await server.stop();
});

/** A delivery that the test holds as if it were a dispatcher sending it. */
async function deliveryHeldBy(dispatcherId: string) {
  const { body } = await uploadFile(server.url, alice, 'held', { variables: { webhookUrl: hook.url, webhookEvents: ['FILE_COMPLETED'] } });
  const fileId = body.data.uploadFile.file.id;
  await waitForTerminal(server.url, alice, fileId);
  const { prisma } = server.service.db;
  for (;;) {
    const held = await prisma.webhookDelivery.updateMany({
      where: { fileId, state: 'DELIVERED' },
      data: { state: 'SENDING', lockedBy: dispatcherId, lockedUntil: new Date(Date.now() + 3_600_000) },
    });
    if (held.count === 1) {
      const delivery = await prisma.webhookDelivery.findFirstOrThrow({ where: { fileId } });
      return { ...delivery, lockedUntil: delivery.lockedUntil! };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const delivered = (delivery: AttemptResult['delivery'], responseBody: string): AttemptResult => ({
  delivery,
  attempt: { attemptedAt: new Date(), durationMs: 3, responseStatus: 200, responseBody, error: null },
  resolution: { state: 'DELIVERED' },
});

describe('recordAttempts', () => {
  it('records the others when one row of the batch is refused, and logs it', async () => {
    const [good, bad] = [await deliveryHeldBy('test-dispatcher'), await deliveryHeldBy('test-dispatcher')];
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    // PostgreSQL text refuses NUL; the sender strips it, so only a direct call can write one.
    const results = [delivered(good, 'ok'), delivered(bad, 'n\0l')];

    const { unrecorded } = await recordAttempts(server.service.db.prisma, 'test-dispatcher', results, log);

    expect([...unrecorded.keys()]).toEqual([results[1]]);
    const rows = await server.service.db.prisma.webhookDelivery.findMany({
      where: { id: { in: [good.id, bad.id] } },
      include: { attempts: true },
    });
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(good.id)).toMatchObject({ state: 'DELIVERED', lockedBy: null });
    expect(byId.get(good.id)!.attempts.map((attempt) => attempt.responseBody)).toContain('ok');
    expect(byId.get(bad.id)).toMatchObject({ state: 'SENDING', lockedBy: 'test-dispatcher' });
    expect(lines.map((line) => JSON.parse(line).msg)).toEqual(['could not record a batch of webhook attempts; recording them one by one']);
  });

  it('leaves a delivery alone once it is under a later lease, so a record written again cannot land on it', async () => {
    const first = await deliveryHeldBy('test-dispatcher');
    const { prisma } = server.service.db;
    // The same dispatcher claimed it again meanwhile (the first record had been committed, its answer lost).
    const laterLease = new Date(first.lockedUntil.getTime() + 60_000);
    await prisma.webhookDelivery.update({ where: { id: first.id }, data: { lockedUntil: laterLease } });
    const attemptsBefore = await prisma.webhookAttempt.count({ where: { deliveryId: first.id } });

    const { unrecorded } = await recordAttempts(prisma, 'test-dispatcher', [delivered(first, 'stale')], pino({ level: 'silent' }));

    expect(unrecorded.size).toBe(0);
    expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({
      state: 'SENDING',
      lockedBy: 'test-dispatcher',
      lockedUntil: laterLease,
    });
    expect(await prisma.webhookAttempt.count({ where: { deliveryId: first.id } })).toBe(attemptsBefore);
    // Under the lease it names, the same record lands.
    await recordAttempts(prisma, 'test-dispatcher', [delivered({ ...first, lockedUntil: laterLease }, 'current')], pino({ level: 'silent' }));
    expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: first.id } })).toMatchObject({ state: 'DELIVERED', lockedBy: null });
  });

  it('says whether a later delivery of a recorded one\'s file and URL waits for its turn', async () => {
    const { prisma } = server.service.db;
    const silent = pino({ level: 'silent' });
    const alone = await deliveryHeldBy('test-dispatcher');
    expect((await recordAttempts(prisma, 'test-dispatcher', [delivered(alone, 'ok')], silent)).laterWaiting).toBe(false);

    const first = await deliveryHeldBy('test-dispatcher');
    const { id, attempts, ...rest } = await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: first.id }, include: { attempts: true } });
    expect(attempts.length).toBeGreaterThan(0);
    await prisma.webhookDelivery.create({
      data: { ...rest, id: randomUUID(), sequence: first.sequence + 1, state: 'PENDING', lockedBy: null, lockedUntil: null, nextAttemptAt: new Date() },
    });
    expect((await recordAttempts(prisma, 'test-dispatcher', [delivered(first, 'ok')], silent)).laterWaiting).toBe(true);
  });
});

describe('releaseDeliveries', () => {
  it('gives a delivery back only under the lease it was held in, so a give-back written again cannot take it from a later sender', async () => {
    const { prisma } = server.service.db;
    const held = await deliveryHeldBy('test-dispatcher');
    const earlierLease = new Date(held.lockedUntil.getTime() - 60_000);

    expect(await releaseDeliveries(prisma, 'test-dispatcher', [{ id: held.id, lockedUntil: earlierLease }])).toBe(0);
    expect(await releaseDeliveries(prisma, 'another-dispatcher', [held])).toBe(0);
    expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: held.id } })).toMatchObject({ state: 'SENDING', lockedBy: 'test-dispatcher' });

    expect(await releaseDeliveries(prisma, 'test-dispatcher', [held])).toBe(1);
    expect(await prisma.webhookDelivery.findUniqueOrThrow({ where: { id: held.id } })).toMatchObject({
      state: 'PENDING',
      lockedBy: null,
      lockedUntil: null,
      attemptCount: held.attemptCount - 1,
    });
  });
});

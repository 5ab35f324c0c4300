import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { claimDeliveries } from '../../src/webhooks/delivery-sql.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { filesWithWebhook, newDispatcher } from '../helpers/webhook-dispatcher.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const CLAIM_FUNCTION = 'claim_webhook_deliveries(text, integer, integer, integer, text[], integer[], integer, uuid[], integer[])';
let db: Database;
let closeDatabase: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('lost-claim'));
});
afterAll(async () => {
  await closeDatabase();
});

/** The dispatcher's claims fail for a moment, as they would while the connection is down. */
async function claimsFailFor(ms: number, meanwhile: () => void = () => {}): Promise<void> {
  await db.prisma.$executeRawUnsafe(`ALTER FUNCTION ${CLAIM_FUNCTION} RENAME TO claim_away`);
  meanwhile();
  await sleep(ms);
  await db.prisma.$executeRawUnsafe(`ALTER FUNCTION ${CLAIM_FUNCTION.replace('claim_webhook_deliveries', 'claim_away')} RENAME TO claim_webhook_deliveries`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a webhook claim whose answer was lost', () => {
  it('gives back what it leased at once, instead of when the lease lapses', async () => {
    const receiver = await startReceiver();
    await filesWithWebhook(db, 1, receiver.url);
    const { dispatcher, close } = newDispatcher(db);
    try {
      // The claim was committed and its answer lost with the connection: the delivery is leased
      // for a minute to a dispatcher that does not know it.
      const limits = { limit: 1, perHost: 8, perTenant: 8, hostsInFlight: new Map(), tenantsInFlight: new Map() };
      const [lost] = await claimDeliveries(db.prisma, dispatcher.id, 60_000, limits);
      if (!lost) throw new Error('nothing to claim');
      await claimsFailFor(150, () => dispatcher.start());
      await receiver.until((received) => received.length === 1, 3_000);
    } finally {
      await close();
      await receiver.close();
    }
  });

  it('keeps a delivery it is sending, while an earlier attempt of it still writes its record', async () => {
    // The second request is answered after 3 s; any other at once.
    const receiver = await startReceiver((_request, index, res) => void setTimeout(() => res.writeHead(204).end(), index === 1 ? 3_000 : 0));
    const [fileId] = await filesWithWebhook(db, 1, receiver.url);
    const { dispatcher, close } = newDispatcher(db);
    try {
      // The first attempt's record cannot be written: it is written again, with backoff.
      await db.prisma.$executeRawUnsafe('ALTER TABLE webhook_attempt RENAME TO webhook_attempt_away');
      dispatcher.start();
      await receiver.until((received) => received.length === 1, 3_000);
      await sleep(200);
      // As if that record had been committed and its answer lost, and the delivery redelivered:
      // the dispatcher claims it again and sends it while the first attempt still writes.
      await db.prisma.webhookDelivery.updateMany({
        where: { fileId },
        data: { state: 'PENDING', lockedBy: null, lockedUntil: null, nextAttemptAt: new Date() },
      });
      dispatcher.wake();
      await receiver.until((received) => received.length === 2, 3_000);
      await db.prisma.$executeRawUnsafe('ALTER TABLE webhook_attempt_away RENAME TO webhook_attempt');
      await sleep(1_200); // the first attempt's next write finds its lease gone, and ends
      // A failed claim now has the dispatcher give back what it holds but is not sending.
      await claimsFailFor(150);
      await sleep(300);
      expect(receiver.received).toHaveLength(2);
      const deadline = Date.now() + 5_000;
      let delivery = await db.prisma.webhookDelivery.findFirstOrThrow({ where: { fileId }, include: { attempts: true } });
      while (delivery.state !== 'DELIVERED' && Date.now() < deadline) {
        await sleep(50);
        delivery = await db.prisma.webhookDelivery.findFirstOrThrow({ where: { fileId }, include: { attempts: true } });
      }
      expect(delivery).toMatchObject({ state: 'DELIVERED' });
      expect(delivery.attempts.map((attempt) => attempt.responseStatus)).toEqual([204]);
      expect(receiver.received).toHaveLength(2);
    } finally {
      await close();
      await receiver.close();
    }
  });
});

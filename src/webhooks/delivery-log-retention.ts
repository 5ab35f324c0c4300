import type { Database, PrismaClient } from '../db/database.js';
import { startRetentionSweep, type BatchOptions } from '../db/retention-sweep.js';
import type { Logger } from '../log.js';

/**
 * Deliveries deleted per statement. A statement holds the embedded database, and with it every
 * request and status change, until it ends: 500 deliveries and their attempts take 8 ms there
 * (14 ms at most, in a sweep of 20,000), 6 ms on PostgreSQL.
 */
const DELETE_BATCH = 500;

/**
 * Deletes, oldest first, the settled deliveries (DELIVERED, FAILED, DISCARDED) queued more than
 * `retentionMs` ago, with their attempts. Open ones stay whatever their age, and so do those of a
 * file whose webhook a 410 disabled: redelivering one is how its owner turns the webhook back on
 * (such a file queues no more). In batches, so that no statement runs long, until one finds
 * nothing or `stopping()` says so; rows another process is deleting are skipped, not waited for.
 * Returns how many it deleted.
 */
export async function deleteExpiredDeliveries(
  prisma: PrismaClient,
  retentionMs: number,
  { batchSize = DELETE_BATCH, stopping = () => false }: BatchOptions = {},
): Promise<number> {
  let deleted = 0;
  while (!stopping()) {
    const count = await prisma.$executeRaw`
      DELETE FROM webhook_delivery WHERE id IN (
        SELECT d.id FROM webhook_delivery d
        WHERE d.state IN ('DELIVERED', 'FAILED', 'DISCARDED') AND d.created_at < now() - ${retentionMs}::bigint * interval '1 millisecond'
          AND NOT EXISTS (SELECT 1 FROM file f WHERE f.id = d.file_id AND f.webhook_disabled_at IS NOT NULL)
        ORDER BY d.created_at
        LIMIT ${batchSize}::int
        FOR UPDATE OF d SKIP LOCKED)`;
    deleted += count;
    if (count === 0) break;
  }
  return deleted;
}

/** Keeps the delivery log to WEBHOOK_LOG_RETENTION: every status change of a file with a webhook adds a delivery and an attempt, forever otherwise. */
export function startDeliveryLogRetention(db: Database, retentionMs: number, log: Logger): () => Promise<void> {
  return startRetentionSweep(db, log, {
    setting: 'WEBHOOK_LOG_RETENTION',
    rows: 'webhook deliveries',
    retentionMs,
    deleteExpired: (stopping) => deleteExpiredDeliveries(db.prisma, retentionMs, { stopping }),
    tables: ['webhook_delivery', 'webhook_attempt'],
  });
}

import type { Database, PrismaClient } from '../db/database.js';
import { startIntervalTask } from '../interval-task.js';
import type { Logger } from '../log.js';

/**
 * Deliveries deleted per statement. A statement holds the embedded database, and with it every
 * request and status change, until it ends: 500 deliveries and their attempts take 8 ms there
 * (14 ms at most, in a sweep of 20,000), 6 ms on PostgreSQL.
 */
const DELETE_BATCH = 500;

const SWEEP_INTERVAL_MS = 60 * 60_000;

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
  { batchSize = DELETE_BATCH, stopping = () => false }: { batchSize?: number; stopping?: () => boolean } = {},
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

/**
 * Keeps the delivery log to WEBHOOK_LOG_RETENTION: sweeps at start, then hourly. Every status
 * change of a file with a webhook adds a delivery and an attempt, forever otherwise. 0 keeps
 * everything. Returns the stop, which ends a sweep between batches.
 */
export function startDeliveryLogRetention(db: Database, retentionMs: number, log: Logger): () => Promise<void> {
  if (retentionMs === 0) return async () => {};
  let stopped = false;
  const sweep = async () => {
    const deleted = await deleteExpiredDeliveries(db.prisma, retentionMs, { stopping: () => stopped });
    if (deleted === 0) return;
    log.info({ webhookDeliveries: deleted }, 'removed webhook deliveries older than WEBHOOK_LOG_RETENTION');
    // PGlite has no autovacuum, and the embedded vacuum covers only the tables every change
    // updates: webhook_attempt, where this deletes most, is not one of them.
    if (db.kind === 'embedded' && !stopped) await db.prisma.$executeRawUnsafe('VACUUM webhook_delivery, webhook_attempt');
  };
  const stop = startIntervalTask(sweep, SWEEP_INTERVAL_MS, (error) => log.error({ err: error }, 'could not remove expired webhook deliveries'), {
    runNow: true,
  });
  return async () => {
    stopped = true;
    await stop();
  };
}

import type { Database, PrismaClient } from '../db/database.js';
import { startRetentionSweep, type BatchOptions } from '../db/retention-sweep.js';
import type { Logger } from '../log.js';

/**
 * Events read per statement, oldest first. A statement holds the embedded database, and with it
 * every request and status change, until it ends: 500 take 9 ms there on average, 6 ms on
 * PostgreSQL (a sweep of 450,000 of 500,000 events, scratch timing, 2026-11-29).
 */
const DELETE_BATCH = 500;

/**
 * Deletes the status events recorded more than `retentionMs` ago, except those a webhook delivery
 * still in the log names: its sends and redeliveries render the event again. A file's current
 * status lives in file_status, so polls, queries and new subscriptions do not change; the events
 * serve the catch-up of a subscriber that fell behind, which reads the last seconds of them.
 * Walks the table in id order, which is the order they were recorded in, a batch a statement,
 * until a batch reaches the events still kept or `stopping()` says so. Returns how many it deleted.
 */
export async function deleteExpiredStatusEvents(
  prisma: PrismaClient,
  retentionMs: number,
  { batchSize = DELETE_BATCH, stopping = () => false }: BatchOptions = {},
): Promise<number> {
  let deleted = 0;
  let after = 0n;
  while (!stopping()) {
    const [batch] = await prisma.$queryRaw<{ deleted: number; lastId: bigint | null; reachedKept: boolean }[]>`
      WITH batch AS (
        SELECT e.id, e.file_id, e.created_at < now() - ${retentionMs}::bigint * interval '1 millisecond' AS expired
        FROM file_status_event e WHERE e.id > ${after} ORDER BY e.id LIMIT ${batchSize}::int),
      gone AS (
        DELETE FROM file_status_event e USING batch b
        WHERE e.id = b.id AND b.expired
          -- OFFSET 0 keeps this a probe per event: as an anti-join it read the whole delivery log each batch.
          AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.file_id = b.file_id AND d.event_id = b.id OFFSET 0)
        RETURNING e.id)
      SELECT (SELECT count(*)::int FROM gone) AS deleted, (SELECT max(id) FROM batch) AS "lastId",
             COALESCE((SELECT bool_or(NOT expired) FROM batch), false) AS "reachedKept"`;
    deleted += batch.deleted;
    if (batch.lastId === null || batch.reachedKept) break;
    after = batch.lastId;
  }
  return deleted;
}

/** Keeps the status history to STATUS_EVENT_RETENTION: every status change adds an event, forever otherwise. */
export function startStatusEventRetention(db: Database, retentionMs: number, log: Logger): () => Promise<void> {
  return startRetentionSweep(db, log, {
    setting: 'STATUS_EVENT_RETENTION',
    rows: 'status events',
    retentionMs,
    deleteExpired: (stopping) => deleteExpiredStatusEvents(db.prisma, retentionMs, { stopping }),
    tables: ['file_status_event'],
  });
}

import { startIntervalTask } from '../interval-task.js';
import type { Logger } from '../log.js';
import type { Database } from './database.js';

const SWEEP_INTERVAL_MS = 60 * 60_000;

/** How a sweep's batches go: their size, and the question asked between them. */
export interface BatchOptions {
  batchSize?: number;
  /** Asked before each batch: true ends the sweep there. */
  stopping?: () => boolean;
}

export interface RetentionSweep {
  /** The setting that sets the retention, named in the log. */
  setting: string;
  /** What the sweep deletes, as its log line says. */
  rows: string;
  /** 0 keeps everything: no sweep runs. */
  retentionMs: number;
  /** Deletes in batches until nothing is left or `stopping()` says so; returns how many. */
  deleteExpired: (stopping: () => boolean) => Promise<number>;
  /** The tables it deletes from, vacuumed after on the embedded database. */
  tables: string[];
}

/**
 * Runs a retention sweep at start, then hourly. PGlite has no autovacuum, and the embedded vacuum
 * covers only the tables every change updates, so after a sweep that deleted, its tables are
 * vacuumed there. Returns the stop, which ends a sweep between batches.
 */
export function startRetentionSweep(db: Database, log: Logger, sweep: RetentionSweep): () => Promise<void> {
  if (sweep.retentionMs === 0) return async () => {};
  let stopped = false;
  const run = async () => {
    const deleted = await sweep.deleteExpired(() => stopped);
    if (deleted === 0) return;
    log.info({ deleted }, `removed ${sweep.rows} older than ${sweep.setting}`);
    if (db.kind === 'embedded' && !stopped) await db.prisma.$executeRawUnsafe(`VACUUM ${sweep.tables.join(', ')}`);
  };
  const stop = startIntervalTask(run, SWEEP_INTERVAL_MS, (error) => log.error({ err: error }, `could not remove ${sweep.rows} older than ${sweep.setting}`), {
    runNow: true,
  });
  return async () => {
    stopped = true;
    await stop();
  };
}

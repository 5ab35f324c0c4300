import { startIntervalTask } from '../interval-task.js';
import type { Logger } from '../log.js';
import type { Database } from './database.js';

/**
 * The tables that every status change, job lease and webhook attempt updates. Each update leaves
 * a dead row version behind, which every later scan of the table and its indexes steps over.
 */
const HOT_TABLES = 'file_status, job, webhook_delivery';

/** Statistics change slowly; ANALYZE reads a sample of every table, so it runs once in this many rounds. */
const ROUNDS_PER_ANALYZE = 60;

/**
 * PGlite runs PostgreSQL in a single process, without the autovacuum workers a server has: left
 * alone, the embedded database keeps every dead row version forever, and the hot tables and their
 * indexes grow, and slow down, with every change ever made (40,000 updates of a 100-row table
 * left 36,000 dead rows and a 4 times slower scan). This does autovacuum's job on a timer: VACUUM
 * of the hot tables (milliseconds for what 10 seconds of changes leave), and now and then an
 * ANALYZE of the whole database. On PostgreSQL the server's own autovacuum does it; returns a
 * no-op there. Returns the stop.
 */
export function startEmbeddedVacuum(db: Database, intervalMs: number, log: Logger): () => Promise<void> {
  if (db.kind !== 'embedded') return async () => {};
  let round = 0;
  const vacuum = async () => {
    round++;
    await db.prisma.$executeRawUnsafe(`VACUUM ${HOT_TABLES}`);
    if (round % ROUNDS_PER_ANALYZE === 0) await db.prisma.$executeRawUnsafe('ANALYZE');
  };
  return startIntervalTask(vacuum, intervalMs, (error) => log.error({ err: error }, 'could not vacuum the embedded database'));
}

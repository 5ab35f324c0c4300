import type { Database } from '../db/database.js';
import type { Logger } from '../log.js';
import { isUuid } from '../uuid.js';
import type { BlobStore } from './blob-store.js';

/**
 * On PostgreSQL other processes share DATA_DIR, and one of them may be writing a file right now:
 * only what nobody has written to for this long is a leftover. An upload in progress keeps writing,
 * and bytes wait for their file row for milliseconds.
 */
const SHARED_GRACE_MS = 60 * 60_000;
const SHARED_SWEEP_INTERVAL_MS = 60 * 60_000;

/**
 * Removes the partial and unowned uploads of processes that died. The embedded database has one
 * process, so at its start everything left is a leftover; on PostgreSQL a process that dies leaves
 * them for the others, which sweep every hour. Returns the stop of the hourly sweep.
 */
export async function startLeftoverSweeps(db: Database, blobs: BlobStore, log: Logger): Promise<() => void> {
  const isOwned = async (ids: string[]) => {
    const rows = await db.prisma.file.findMany({ where: { id: { in: ids.filter(isUuid) } }, select: { id: true } });
    return new Set(rows.map((row) => row.id));
  };
  const sweep = async () => {
    const swept = await blobs.sweepLeftovers(isOwned, db.kind === 'embedded' ? 0 : SHARED_GRACE_MS);
    if (swept) log.info({ files: swept }, 'removed uploads left unfinished by a process that died');
  };
  await sweep();
  if (db.kind === 'embedded') return () => {};
  const timer = setInterval(() => sweep().catch((error: unknown) => log.error({ err: error }, 'could not sweep leftover uploads')), SHARED_SWEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

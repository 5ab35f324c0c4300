import type { PrismaClient } from '../db/database.js';
import type { Prisma } from '../generated/prisma/client.js';

export interface ClaimedJob {
  id: bigint;
  task: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
}

/**
 * Adds a job inside the caller's transaction. One job per key: a job added with the key of one
 * still in the table replaces it, to run from the start. That one may be a job whose worker is
 * giving it up (a retryFile right after the FAILED it recorded): the replacement gets a new id, so
 * that the worker's completing, abandoning or retrying of the old id no longer touches it.
 */
export async function addJob(
  tx: Prisma.TransactionClient,
  job: { task: string; payload: Prisma.InputJsonValue; key: string; maxAttempts: number },
): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO job (task, payload, key, max_attempts)
    VALUES (${job.task}, ${JSON.stringify(job.payload)}::jsonb, ${job.key}, ${job.maxAttempts})
    ON CONFLICT (key) DO UPDATE SET
      id = EXCLUDED.id, task = EXCLUDED.task, payload = EXCLUDED.payload, max_attempts = EXCLUDED.max_attempts, attempts = 0,
      run_at = now(), locked_by = NULL, locked_until = NULL, last_error = NULL`;
}

/**
 * One statement: lock ready rows nobody holds (or whose lease lapsed), skipping rows another
 * worker is claiming right now, and take a lease on them.
 */
export async function claimJobs(prisma: PrismaClient, workerId: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
  return prisma.$queryRaw<ClaimedJob[]>`
    UPDATE job SET locked_by = ${workerId},
                   locked_until = now() + ${leaseMs} * interval '1 millisecond',
                   attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM job
      WHERE run_at <= now() AND (locked_until IS NULL OR locked_until < now())
      ORDER BY run_at, id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING id, task, payload, attempts, max_attempts AS "maxAttempts"`;
}

/** The claim of a job that its worker's writes name: `attempts` tells this claim from a later one. */
export type JobClaim = Pick<ClaimedJob, 'id' | 'attempts'>;

/**
 * Removes a finished job. Like every write of a worker about its job, it lands only on the claim
 * it names, so writing it again after a lost connection cannot touch a later run of the job.
 */
export async function completeJob(prisma: PrismaClient, workerId: string, { id, attempts }: JobClaim): Promise<void> {
  await prisma.$executeRaw`DELETE FROM job WHERE id = ${id} AND locked_by = ${workerId} AND attempts = ${attempts}`;
}

/** Removes a job that will not run again (it failed for good). */
export const abandonJob = completeJob;

/** Schedules the job again after exponential backoff: base, 2×base, 4×base… */
export async function retryJobLater(
  prisma: PrismaClient,
  workerId: string,
  { id, attempts }: JobClaim,
  error: string,
  retryBaseMs: number,
): Promise<void> {
  await prisma.$executeRaw`
    UPDATE job SET locked_by = NULL, locked_until = NULL, last_error = ${error.slice(0, 2000)},
                   run_at = now() + ${retryBaseMs} * power(2, attempts - 1) * interval '1 millisecond'
    WHERE id = ${id} AND locked_by = ${workerId} AND attempts = ${attempts}`;
}

/** A live worker keeps its jobs: without this, another worker would take them when the lease lapses. */
export async function renewLeases(prisma: PrismaClient, workerId: string, ids: bigint[], leaseMs: number): Promise<void> {
  if (ids.length === 0) return;
  await prisma.$executeRaw`
    UPDATE job SET locked_until = now() + ${leaseMs} * interval '1 millisecond'
    WHERE locked_by = ${workerId} AND id = ANY(${ids}::bigint[])`;
}

/** Gives jobs back untouched on a graceful stop: the attempt does not count. */
export async function releaseJobs(prisma: PrismaClient, workerId: string, ids: bigint[]): Promise<void> {
  if (ids.length === 0) return;
  await prisma.$executeRaw`
    UPDATE job SET locked_by = NULL, locked_until = NULL, attempts = attempts - 1
    WHERE locked_by = ${workerId} AND id = ANY(${ids}::bigint[])`;
}

/**
 * Frees every lease at once. Only for the embedded database, where this process is the only one
 * that can hold leases: any lease found at start-up belongs to a process that died.
 */
export async function releaseOrphanedLeases(prisma: PrismaClient): Promise<number> {
  return prisma.$executeRaw`UPDATE job SET locked_by = NULL, locked_until = NULL WHERE locked_by IS NOT NULL`;
}

/**
 * Gives back what a claim whose answer was lost may have leased: the jobs this worker holds but
 * is not running. Left alone, they would wait out their lease.
 */
export async function releaseJobsNotRunning(prisma: PrismaClient, workerId: string, running: bigint[]): Promise<number> {
  return prisma.$executeRaw`
    UPDATE job SET locked_by = NULL, locked_until = NULL, attempts = attempts - 1
    WHERE locked_by = ${workerId} AND id <> ALL(${running}::bigint[])`;
}

/** The queue as an operator watches it. */
export interface QueueBacklog {
  /** Due and held by no live worker: waiting for a claim. */
  ready: number;
  /** Waiting for their retry's backoff. */
  scheduled: number;
  /** Leased to a live worker. */
  running: number;
  /** How long the longest-waiting ready job has been due; 0 when none is. */
  oldestReadySeconds: number;
}

/**
 * The queue's jobs by state, for the metrics. The table holds only jobs not yet finished (a
 * finished one is deleted), so one pass over it is the queue's length, not its history.
 */
export async function readQueueBacklog(prisma: PrismaClient): Promise<QueueBacklog> {
  const [backlog] = await prisma.$queryRaw<QueueBacklog[]>`
    SELECT
      count(*) FILTER (WHERE NOT leased AND run_at <= now())::int AS ready,
      count(*) FILTER (WHERE NOT leased AND run_at > now())::int AS scheduled,
      count(*) FILTER (WHERE leased)::int AS running,
      coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE NOT leased AND run_at <= now())), 0)::float8 AS "oldestReadySeconds"
    FROM (SELECT run_at, coalesce(locked_until >= now(), false) AS leased FROM job) AS jobs`;
  return backlog;
}

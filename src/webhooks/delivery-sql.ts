import type { PrismaClient } from '../db/database.js';
import { Prisma } from '../generated/prisma/client.js';
import type { Logger } from '../log.js';
import type { StatusEvent } from '../status/model.js';
import { toStatusEvent, type StatusRow } from '../status/status-rows.js';

export interface ClaimedDelivery {
  id: string;
  tenantId: string;
  fileId: string;
  eventId: bigint;
  eventType: string;
  url: string;
  host: string;
  event: StatusEvent;
  attemptCount: number;
  /** The lease's end: what tells this claim of the delivery from a later one. */
  lockedUntil: Date;
  webhookSecret: string | null;
  previousWebhookSecret: string | null;
  previousWebhookSecretExpiresAt: Date | null;
}

/** What one dispatcher has in flight, and how much it may have, per host and per tenant. */
export interface ClaimLimits {
  limit: number;
  perHost: number;
  perTenant: number;
  hostsInFlight: Map<string, number>;
  tenantsInFlight: Map<string, number>;
}

/**
 * Leases up to `limit` deliveries that are due (the database function claim_webhook_deliveries),
 * none beyond a host's or a tenant's free slots, with what sending them needs.
 */
export async function claimDeliveries(
  prisma: PrismaClient,
  dispatcherId: string,
  leaseMs: number,
  { limit, perHost, perTenant, hostsInFlight, tenantsInFlight }: ClaimLimits,
): Promise<ClaimedDelivery[]> {
  const rows = await prisma.$queryRaw<(Omit<ClaimedDelivery, 'event'> & { event: StatusRow & { createdAt: string } })[]>`
    SELECT * FROM claim_webhook_deliveries(${dispatcherId}, ${limit}::int, ${leaseMs}::int,
      ${perHost}::int, ${[...hostsInFlight.keys()]}::text[], ${[...hostsInFlight.values()]}::int[],
      ${perTenant}::int, ${[...tenantsInFlight.keys()]}::uuid[], ${[...tenantsInFlight.values()]}::int[])`;
  return rows.map((row) => ({ ...row, event: toStatusEvent({ ...row.event, createdAt: new Date(row.event.createdAt) }) }));
}

export interface AttemptRecord {
  attemptedAt: Date;
  durationMs: number;
  responseStatus: number | null;
  responseBody: string | null;
  error: string | null;
}

export type DeliveryResolution =
  | { state: 'DELIVERED' }
  | { state: 'PENDING'; retryInMs: number }
  | { state: 'FAILED'; disableWebhook: boolean };

export interface AttemptResult {
  delivery: { id: string; fileId: string; url: string; lockedUntil: Date };
  attempt: AttemptRecord;
  resolution: DeliveryResolution;
}

function lastError(attempt: AttemptRecord, resolution: DeliveryResolution): string | null {
  if (attempt.error) return attempt.error;
  return attempt.responseStatus !== null && resolution.state !== 'DELIVERED' ? `HTTP ${attempt.responseStatus}` : null;
}

const disablesWebhook = (result: AttemptResult) => result.resolution.state === 'FAILED' && result.resolution.disableWebhook;

export interface RecordedAttempts {
  /** The attempts that could not be recorded, with the reason. */
  unrecorded: Map<AttemptResult, unknown>;
  /** Whether a later delivery of a settled one's file and URL waits: its turn has come, for a claim to take. */
  laterWaiting: boolean;
}

/**
 * Records attempts and what follows from them, in one statement for the whole batch (the database
 * function record_webhook_attempts; a busy dispatcher finishes many attempts while the previous
 * batch is written). Should that statement fail, each attempt is written on its own, so that one
 * bad row cannot lose the others. A delivery no longer under the lease its attempt was made in is
 * left alone, so writing a record again is harmless.
 */
export async function recordAttempts(
  prisma: PrismaClient,
  dispatcherId: string,
  results: AttemptResult[],
  log: Logger,
): Promise<RecordedAttempts> {
  const unrecorded = new Map<AttemptResult, unknown>();
  let laterWaiting = false;
  for (const result of results.filter(disablesWebhook)) {
    await recordGone(prisma, dispatcherId, result).catch((error: unknown) => unrecorded.set(result, error));
  }
  const batch = results.filter((result) => !disablesWebhook(result));
  if (batch.length === 0) return { unrecorded, laterWaiting };
  try {
    laterWaiting = await recordBatch(prisma, dispatcherId, batch);
  } catch (error) {
    // Its answer, not its commit, may be what failed, and with it the word that a later one waits:
    // a claim finds out.
    laterWaiting = true;
    if (batch.length === 1) {
      unrecorded.set(batch[0], error);
    } else {
      log.warn({ err: error, attempts: batch.length }, 'could not record a batch of webhook attempts; recording them one by one');
      for (const result of batch) {
        await recordBatch(prisma, dispatcherId, [result]).then(
          (waiting) => (laterWaiting ||= waiting),
          (single: unknown) => unrecorded.set(result, single),
        );
      }
    }
  }
  return { unrecorded, laterWaiting };
}

async function recordBatch(prisma: PrismaClient, dispatcherId: string, batch: AttemptResult[]): Promise<boolean> {
  const column = <T>(pick: (result: AttemptResult) => T) => batch.map(pick);
  const [{ laterWaiting }] = await prisma.$queryRaw<{ laterWaiting: boolean }[]>`
    SELECT record_webhook_attempts(${dispatcherId},
      ${column((r) => r.delivery.id)}::uuid[], ${column((r) => r.delivery.lockedUntil)}::timestamptz[],
      ${column((r) => r.resolution.state)}::text[],
      ${column((r) => (r.resolution.state === 'PENDING' ? new Date(Date.now() + r.resolution.retryInMs) : null))}::timestamptz[],
      ${column((r) => lastError(r.attempt, r.resolution))}::text[], ${column((r) => r.attempt.attemptedAt)}::timestamptz[],
      ${column((r) => r.attempt.durationMs)}::int[], ${column((r) => r.attempt.responseStatus)}::int[],
      ${column((r) => r.attempt.responseBody)}::text[], ${column((r) => r.attempt.error)}::text[]) AS "laterWaiting"`;
  return laterWaiting;
}

const WEBHOOK_GONE = 'webhook disabled: the receiver answered 410 Gone';

/** 410 Gone: the delivery fails, the file's webhook is disabled and its waiting deliveries discarded. */
async function recordGone(prisma: PrismaClient, dispatcherId: string, { delivery, attempt }: AttemptResult): Promise<void> {
  await prisma.$transaction(async (tx) => {
    const updated = await tx.webhookDelivery.updateMany({
      where: { id: delivery.id, lockedBy: dispatcherId, lockedUntil: delivery.lockedUntil, state: 'SENDING' },
      data: {
        state: 'FAILED',
        nextAttemptAt: null,
        lockedBy: null,
        lockedUntil: null,
        lastError: `HTTP ${attempt.responseStatus}`,
        discardReason: WEBHOOK_GONE,
      },
    });
    if (updated.count === 0) return;
    await tx.webhookAttempt.create({ data: { deliveryId: delivery.id, ...attempt } });
    await tx.file.update({ where: { id: delivery.fileId }, data: { webhookDisabledAt: new Date() } });
    await tx.webhookDelivery.updateMany({
      where: { fileId: delivery.fileId, url: delivery.url, state: 'PENDING' },
      data: { state: 'DISCARDED', discardReason: WEBHOOK_GONE, nextAttemptAt: null },
    });
  });
}

/**
 * Gives back what a claim whose answer was lost may have leased: the deliveries this dispatcher
 * holds but is not sending. Left alone, they would wait out their lease, and hold back the later
 * deliveries of their file and URL meanwhile.
 */
export async function releaseUnsentDeliveries(prisma: PrismaClient, dispatcherId: string, sending: string[]): Promise<number> {
  return prisma.$executeRaw`
    UPDATE webhook_delivery SET state = 'PENDING', locked_by = NULL, locked_until = NULL, attempt_count = attempt_count - 1
    WHERE state = 'SENDING' AND locked_by = ${dispatcherId} AND id <> ALL(${sending}::uuid[])`;
}

/**
 * Waits for the status changes under way of the files `files` selects: each holds its file's
 * file_status row until it commits. The next statement, in a new snapshot, then sees the newer
 * delivery such a change queued, and a change that starts meanwhile waits for this transaction
 * instead. As record_webhook_attempts does (migration attempts_wait_for_status_changes), in file
 * order, as a batch of changes locks them.
 */
const statusChangesUnderWay = (prisma: PrismaClient, files: Prisma.Sql) => prisma.$executeRaw`
  SELECT 1 FROM file_status WHERE file_id IN (${files}) ORDER BY file_id FOR SHARE`;

/**
 * Gives back deliveries leased to this dispatcher that it will not send: due again, for any
 * dispatcher, the attempt not counted; or, for a `file.processing` one whose file and URL has a
 * later delivery waiting (queued while this one was leased, so not superseding it then),
 * superseded. Each under the lease it was held in, so that a give-back written again cannot take
 * a later lease of the same delivery from its sender.
 */
export async function releaseDeliveries(prisma: PrismaClient, dispatcherId: string, held: { id: string; lockedUntil: Date }[]): Promise<number> {
  const ids = held.map((delivery) => delivery.id);
  // A change under way that queued a newer delivery is seen, and the stale one superseded.
  const [, released] = await prisma.$transaction([
    statusChangesUnderWay(prisma, Prisma.sql`SELECT file_id FROM webhook_delivery WHERE id = ANY(${ids}::uuid[]) AND event_type = 'file.processing'`),
    prisma.$executeRaw`
      WITH released AS (
        SELECT d.id, h.locked_until, d.event_type = 'file.processing' AND EXISTS (
                 SELECT 1 FROM webhook_delivery l
                 WHERE l.file_id = d.file_id AND l.url = d.url AND l.state = 'PENDING' AND l.sequence > d.sequence) AS superseded
        FROM webhook_delivery d
        JOIN unnest(${ids}::uuid[], ${held.map((delivery) => delivery.lockedUntil)}::timestamptz[]) AS h(id, locked_until)
          ON d.id = h.id AND d.locked_until = h.locked_until)
      UPDATE webhook_delivery d
      SET state = CASE WHEN r.superseded THEN 'DISCARDED' ELSE 'PENDING' END,
          discard_reason = CASE WHEN r.superseded THEN 'superseded' END,
          next_attempt_at = CASE WHEN r.superseded THEN NULL ELSE d.next_attempt_at END,
          locked_by = NULL, locked_until = NULL, attempt_count = d.attempt_count - 1
      FROM released r
      WHERE d.id = r.id AND d.locked_until = r.locked_until AND d.state = 'SENDING' AND d.locked_by = ${dispatcherId}`,
  ]);
  return released;
}

/**
 * What queuing a delivery again sets, for one redelivery or many: due now with a fresh retry
 * schedule, and counted by the log's retention from now.
 */
const QUEUED_AGAIN = Prisma.sql`state = 'PENDING', attempt_count = 0, next_attempt_at = now(), created_at = now(),
  discard_reason = NULL, locked_by = NULL, locked_until = NULL`;

/**
 * Queues a delivery again, with the same webhook-id and a fresh retry schedule. Asking for it
 * again re-enables a webhook that a 410 disabled: the owner says the receiver is back. A delivery
 * being sent is left as it is.
 *
 * Lock order: the file row first, then the delivery, as the outbox trigger (queue_webhook_delivery)
 * does; the other order deadlocks with a status change of the same file. FOR NO KEY UPDATE rather
 * than the trigger's FOR SHARE: two redeliveries of one file would each hold a share and then
 * both wait to clear webhook_disabled_at.
 */
export async function redeliver(prisma: PrismaClient, tenantId: string, deliveryId: string): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const [file] = await tx.$queryRaw<{ id: string; webhookDisabled: boolean }[]>`
      SELECT f.id, f.webhook_disabled_at IS NOT NULL AS "webhookDisabled" FROM file f
      WHERE f.id = (SELECT file_id FROM webhook_delivery WHERE id = ${deliveryId}::uuid AND tenant_id = ${tenantId}::uuid)
      FOR NO KEY UPDATE`;
    if (!file) return false;
    if (file.webhookDisabled) await tx.file.update({ where: { id: file.id }, data: { webhookDisabledAt: null } });
    const queued = await tx.$executeRaw`UPDATE webhook_delivery SET ${QUEUED_AGAIN} WHERE id = ${deliveryId}::uuid AND state <> 'SENDING'`;
    // None: being sent, or deleted by the log's retention since it was looked up.
    return queued === 1 || (await tx.webhookDelivery.count({ where: { id: deliveryId } })) === 1;
  });
}

/**
 * Deliveries queued again per statement: a statement holds the embedded database while it runs.
 */
const REDELIVER_BATCH = 500;

/**
 * Queues again, as `redeliver` does, a tenant's deliveries that failed for good and were queued at
 * or after `since`: what a receiver missed during an outage. Left out: those of a file whose
 * webhook a 410 disabled (the receiver asked for no more; redelivering one by one turns it back
 * on), and a delivery after which the same file and URL had a later one, so that a stale state
 * never goes out after a newer one. A terminal one too: a file.failed whose file was retried and
 * completed would be the receiver's last word on a completed file. The latest of a file and URL
 * was delivered, waits, or failed and is queued again here, so the receiver ends with the file's
 * latest state all the same. Those it queues again count from now, so one that fails again
 * meanwhile is not taken twice. Returns how many it queued.
 */
export async function redeliverFailed(prisma: PrismaClient, tenantId: string, since: Date): Promise<number> {
  const startedAt = new Date();
  let queued = 0;
  // Where the last batch ended, in the index's order: each batch reads on from there, not again
  // past the failures it left, nor past those it queued (their index entries stay until a vacuum).
  let after: { createdAt: Date; id: string } = { createdAt: since, id: '00000000-0000-0000-0000-000000000000' };
  for (;;) {
    const nextFailures = Prisma.sql`
      SELECT d.id, d.file_id, d.url, d.sequence, d.created_at FROM webhook_delivery d
      WHERE d.tenant_id = ${tenantId}::uuid AND d.state = 'FAILED'
        AND (d.created_at, d.id) > (${after.createdAt}::timestamptz, ${after.id}::uuid) AND d.created_at < ${startedAt}
      ORDER BY d.created_at, d.id
      LIMIT ${REDELIVER_BATCH}::int`;
    // No stale state goes out after a newer one that a change under way queues: the check below
    // sees that delivery, or the change sees this one queued again and goes after it.
    const [, [batch]] = await prisma.$transaction([
      statusChangesUnderWay(prisma, Prisma.sql`SELECT file_id FROM (${nextFailures}) failures`),
      prisma.$queryRaw<{ queued: number; lastCreatedAt: Date | null; lastId: string | null }[]>`
        WITH batch AS (${nextFailures} FOR UPDATE OF d SKIP LOCKED),
        queued AS (
          UPDATE webhook_delivery w SET ${QUEUED_AGAIN}
          FROM batch b JOIN file f ON f.id = b.file_id
          WHERE w.id = b.id AND f.webhook_disabled_at IS NULL
            AND NOT EXISTS (
              -- OFFSET 0: a probe of the file's deliveries each, not an anti-join over the whole log.
              SELECT 1 FROM webhook_delivery later WHERE later.file_id = b.file_id AND later.url = b.url AND later.sequence > b.sequence
              OFFSET 0)
          RETURNING w.id)
        SELECT (SELECT count(*)::int FROM queued) AS queued, last.created_at AS "lastCreatedAt", last.id::text AS "lastId"
        FROM (SELECT NULL) AS one LEFT JOIN (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1) last ON true`,
    ]);
    queued += batch.queued;
    if (batch.lastId === null) return queued;
    after = { createdAt: batch.lastCreatedAt!, id: batch.lastId };
  }
}

/** Embedded database only: at start, any delivery marked as being sent belongs to a process that died. */
export async function releaseOrphanedDeliveries(prisma: PrismaClient): Promise<number> {
  return prisma.$executeRaw`
    UPDATE webhook_delivery SET state = 'PENDING', locked_by = NULL, locked_until = NULL, next_attempt_at = now()
    WHERE state = 'SENDING'`;
}

/** The open deliveries, as an operator watches them. */
export interface OutboxBacklog {
  /** PENDING and due: waiting for a dispatcher to claim them. */
  due: number;
  /** PENDING, their next attempt later (a retry's delay). */
  scheduled: number;
  /** Leased to a dispatcher: being sent, or waiting in it for a slot. */
  sending: number;
  /** How long the longest-waiting due delivery has been due; 0 when none is. */
  oldestDueSeconds: number;
}

/**
 * The outbox's open deliveries, for the metrics: each part reads only a partial index of the open
 * ones (webhook_outbox_open_indexes), never the settled log, and the oldest due is the due
 * index's first entry. Timed with 50,000 due on the embedded database: see README, Metrics.
 */
export async function readOutboxBacklog(prisma: PrismaClient): Promise<OutboxBacklog> {
  const [backlog] = await prisma.$queryRaw<OutboxBacklog[]>`
    SELECT
      (SELECT count(*)::int FROM webhook_delivery WHERE state = 'PENDING' AND next_attempt_at <= now()) AS due,
      (SELECT count(*)::int FROM webhook_delivery WHERE state = 'PENDING' AND next_attempt_at > now()) AS scheduled,
      (SELECT count(*)::int FROM webhook_delivery WHERE state = 'SENDING') AS sending,
      (SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float8
       FROM webhook_delivery WHERE state = 'PENDING' AND next_attempt_at <= now()) AS "oldestDueSeconds"`;
  return backlog;
}

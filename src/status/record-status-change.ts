import type { PrismaClient } from '../db/database.js';
import type { Prisma } from '../generated/prisma/client.js';
import { isTerminal, type FileState, type Metadata, type Stage, type StatusEvent } from './model.js';
import { toStatusEvent, type StatusRow } from './status-rows.js';
import type { StatusBus } from './status-bus.js';

type Tx = Prisma.TransactionClient;

export interface StatusChange {
  fileId: string;
  status: FileState;
  /** Unset keeps the current stage (a failure names the stage it happened in). */
  stage?: Stage;
  progress: number;
  message?: string | null;
  /** Merged into the current metadata. */
  metadata?: Metadata;
}

function etaSeconds(progress: number, attemptStartedAt: Date, now: Date): number | null {
  if (progress <= 0 || progress >= 100) return null;
  const elapsed = (now.getTime() - attemptStartedAt.getTime()) / 1000;
  return Math.round(((elapsed * (100 - progress)) / progress) * 10) / 10;
}

/**
 * Work that must happen in the same transaction as a status change, so that it can never be lost
 * between the commit and a crash: the webhook outbox. Returns true when it queued something.
 */
export type StatusOutbox = (tx: Tx, event: StatusEvent, eventId: bigint) => Promise<boolean>;

/** A change written inside a caller's transaction, to be published once that commits. */
export interface RecordedStatus {
  event: StatusEvent;
  outboxWritten: boolean;
}

/**
 * Writes the current row and appends the event in one statement: a status change is on the hot
 * path of every subscriber and webhook, and each round trip to the embedded database costs about
 * 0.3 ms (bench/webhooks.ts).
 */
async function insertStatus(tx: Tx, event: StatusEvent, attemptStartedAt: Date): Promise<bigint> {
  const metadata = JSON.stringify(event.metadata);
  const [inserted] = await tx.$queryRaw<{ id: bigint }[]>`
    WITH current_row AS (
      INSERT INTO file_status (file_id, tenant_id, status, stage, progress, message, metadata, sequence, attempt,
                               attempt_started_at, eta_seconds, updated_at)
      VALUES (${event.fileId}::uuid, ${event.tenantId}::uuid, ${event.status}, ${event.stage}, ${event.progress},
              ${event.message}, ${metadata}::jsonb, ${event.sequence}, ${event.attempt}, ${attemptStartedAt},
              ${event.etaSeconds}, ${event.updatedAt})
      ON CONFLICT (file_id) DO UPDATE SET
        status = EXCLUDED.status, stage = EXCLUDED.stage, progress = EXCLUDED.progress, message = EXCLUDED.message,
        metadata = EXCLUDED.metadata, sequence = EXCLUDED.sequence, attempt = EXCLUDED.attempt,
        attempt_started_at = EXCLUDED.attempt_started_at, eta_seconds = EXCLUDED.eta_seconds, updated_at = EXCLUDED.updated_at)
    INSERT INTO file_status_event (file_id, tenant_id, sequence, status, stage, progress, message, metadata, attempt,
                                   eta_seconds, created_at)
    VALUES (${event.fileId}::uuid, ${event.tenantId}::uuid, ${event.sequence}, ${event.status}, ${event.stage},
            ${event.progress}, ${event.message}, ${metadata}::jsonb, ${event.attempt}, ${event.etaSeconds}, ${event.updatedAt})
    RETURNING id`;
  return inserted.id;
}

/**
 * The only writer of file status. Every change writes the current row and its event in one
 * transaction and is published only after the commit, so a subscriber that sees an event can
 * always find it in the table, and a crash can never publish a change the table does not hold.
 */
export class StatusRecorder {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly bus: StatusBus,
    private readonly outboxes: StatusOutbox[] = [],
  ) {}

  private async write(tx: Tx, event: StatusEvent, attemptStartedAt: Date): Promise<RecordedStatus> {
    const eventId = await insertStatus(tx, event, attemptStartedAt);
    let outboxWritten = false;
    for (const outbox of this.outboxes) outboxWritten = (await outbox(tx, event, eventId)) || outboxWritten;
    return { event, outboxWritten };
  }

  /** The first status of a new file, written inside the caller's upload transaction. */
  async recordQueued(tx: Tx, file: { id: string; tenantId: string }, metadata: Metadata): Promise<RecordedStatus> {
    const now = new Date();
    const event: StatusEvent = {
      fileId: file.id,
      tenantId: file.tenantId,
      sequence: 1,
      status: 'PROCESSING',
      stage: 'QUEUED',
      progress: 0,
      message: null,
      metadata,
      attempt: 1,
      etaSeconds: null,
      updatedAt: now,
    };
    return this.write(tx, event, now);
  }

  /**
   * Starts the next attempt of a FAILED file, inside the caller's transaction (which queues its
   * job). Returns null when the file is not FAILED.
   */
  async recordRetry(tx: Tx, fileId: string): Promise<RecordedStatus | null> {
    const current = await lockStatus(tx, fileId);
    if (!current || current.status !== 'FAILED') return null;
    const now = new Date();
    const event: StatusEvent = {
      ...toStatusEvent(current),
      sequence: current.sequence + 1,
      status: 'PROCESSING',
      stage: 'QUEUED',
      progress: 0,
      message: null,
      attempt: current.attempt + 1,
      etaSeconds: null,
      updatedAt: now,
    };
    return this.write(tx, event, now);
  }

  /**
   * Records a change of the current attempt. Progress never goes back within an attempt (a job
   * resumed after a crash re-runs its stages, and its watchers must not see the bar jump back),
   * and a terminal status is final until a retry: a late write from a worker that lost its lease
   * is dropped. Returns null when nothing was recorded.
   */
  async record(change: StatusChange): Promise<StatusEvent | null> {
    const recorded = await this.prisma.$transaction(async (tx) => {
      const current = await lockStatus(tx, change.fileId);
      if (!current || isTerminal(current.status as FileState)) return null;
      const now = new Date();
      const progress = Math.min(100, Math.max(current.progress, Math.round(change.progress)));
      const next: StatusEvent = {
        fileId: current.fileId,
        tenantId: current.tenantId,
        sequence: current.sequence + 1,
        status: change.status,
        stage: change.stage ?? (current.stage as Stage),
        progress,
        message: change.message ?? null,
        metadata: { ...(current.metadata as Metadata), ...change.metadata },
        attempt: current.attempt,
        etaSeconds: isTerminal(change.status) ? null : etaSeconds(progress, current.attemptStartedAt, now),
        updatedAt: now,
      };
      return this.write(tx, next, current.attemptStartedAt);
    });
    if (!recorded) return null;
    this.publish(recorded);
    return recorded.event;
  }

  /** After the commit: tell subscribers, and the webhook dispatcher when there is work for it. */
  publish({ event, outboxWritten }: RecordedStatus): void {
    this.bus.publishStatus(event);
    if (outboxWritten) this.bus.publishWebhooksQueued();
  }
}

async function lockStatus(tx: Tx, fileId: string): Promise<(StatusRow & { attemptStartedAt: Date }) | null> {
  const rows = await tx.$queryRaw<(StatusRow & { attemptStartedAt: Date })[]>`
    SELECT file_id AS "fileId", tenant_id AS "tenantId", status, stage, progress, message, metadata,
           sequence, attempt, attempt_started_at AS "attemptStartedAt", eta_seconds AS "etaSeconds",
           updated_at AS "updatedAt"
    FROM file_status WHERE file_id = ${fileId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

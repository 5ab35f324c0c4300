import type { PrismaClient } from '../db/database.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { FileState, Metadata, Stage, StatusEvent } from './model.js';
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
  /** The attempt this change belongs to; once the file is on another, the change is dropped. Unset: the current one. */
  attempt?: number;
}

/**
 * Writes the current row and appends the event in one statement, for the first status of an
 * attempt, stamped with the database's clock as every other change is. Later changes go through
 * the database function record_status_change. The event's trigger queues its webhook delivery
 * (migration webhook_outbox_trigger).
 */
async function insertStatus(tx: Tx, event: Omit<StatusEvent, 'updatedAt'>): Promise<StatusEvent> {
  const metadata = JSON.stringify(event.metadata);
  const [stamped] = await tx.$queryRaw<{ updatedAt: Date }[]>`
    WITH current_row AS (
      INSERT INTO file_status (file_id, tenant_id, status, stage, progress, message, metadata, sequence, attempt,
                               attempt_started_at, eta_seconds, updated_at)
      VALUES (${event.fileId}::uuid, ${event.tenantId}::uuid, ${event.status}, ${event.stage}, ${event.progress},
              ${event.message}, ${metadata}::jsonb, ${event.sequence}, ${event.attempt}, now(), ${event.etaSeconds}, now())
      ON CONFLICT (file_id) DO UPDATE SET
        status = EXCLUDED.status, stage = EXCLUDED.stage, progress = EXCLUDED.progress, message = EXCLUDED.message,
        metadata = EXCLUDED.metadata, sequence = EXCLUDED.sequence, attempt = EXCLUDED.attempt,
        attempt_started_at = EXCLUDED.attempt_started_at, eta_seconds = EXCLUDED.eta_seconds, updated_at = EXCLUDED.updated_at)
    INSERT INTO file_status_event (file_id, tenant_id, sequence, status, stage, progress, message, metadata, attempt,
                                   eta_seconds, created_at)
    VALUES (${event.fileId}::uuid, ${event.tenantId}::uuid, ${event.sequence}, ${event.status}, ${event.stage},
            ${event.progress}, ${event.message}, ${metadata}::jsonb, ${event.attempt}, ${event.etaSeconds}, now())
    RETURNING created_at AS "updatedAt"`;
  return { ...event, updatedAt: stamped.updatedAt };
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
  ) {}

  /** The first status of a new file, written inside the caller's upload transaction. */
  async recordQueued(tx: Tx, file: { id: string; tenantId: string }, metadata: Metadata): Promise<StatusEvent> {
    return insertStatus(tx, {
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
    });
  }

  /**
   * Starts the next attempt of a FAILED file, inside the caller's transaction (which queues its
   * job). Returns null when the file is not FAILED.
   */
  async recordRetry(tx: Tx, fileId: string): Promise<StatusEvent | null> {
    const current = await lockStatus(tx, fileId);
    if (!current || current.status !== 'FAILED') return null;
    return insertStatus(tx, {
      ...toStatusEvent(current),
      sequence: current.sequence + 1,
      status: 'PROCESSING',
      stage: 'QUEUED',
      progress: 0,
      message: null,
      attempt: current.attempt + 1,
      etaSeconds: null,
    });
  }

  /**
   * Records a change of the current attempt. Progress never goes back within an attempt (a job
   * resumed after a crash re-runs its stages, and its watchers must not see the bar jump back),
   * and a terminal status is final until a retry: a late write from a worker that lost its lease
   * is dropped. Returns null when nothing was recorded.
   */
  async record(change: StatusChange): Promise<StatusEvent | null> {
    const [recorded] = await this.prisma.$queryRaw<StatusRow[]>`
      SELECT file_id AS "fileId", tenant_id AS "tenantId", status, stage, progress, message, metadata, sequence,
             attempt, eta_seconds AS "etaSeconds", created_at AS "updatedAt"
      FROM record_status_change(${change.fileId}::uuid, ${change.status}::text, ${change.stage ?? null}::text,
                                ${Math.round(change.progress)}::int, ${change.message ?? null}::text,
                                ${JSON.stringify(change.metadata ?? {})}::jsonb, ${change.attempt ?? null}::int)`;
    if (!recorded) return null;
    const event = toStatusEvent(recorded);
    this.publish(event);
    return event;
  }

  /** After the commit: tell subscribers, and through them the webhook dispatcher. */
  publish(event: StatusEvent): void {
    this.bus.publishStatus(event);
  }
}

async function lockStatus(tx: Tx, fileId: string): Promise<StatusRow | null> {
  const rows = await tx.$queryRaw<StatusRow[]>`
    SELECT file_id AS "fileId", tenant_id AS "tenantId", status, stage, progress, message, metadata,
           sequence, attempt, eta_seconds AS "etaSeconds", updated_at AS "updatedAt"
    FROM file_status WHERE file_id = ${fileId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

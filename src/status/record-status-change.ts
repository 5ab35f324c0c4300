import type { PrismaClient } from '../db/database.js';
import { Prisma } from '../generated/prisma/client.js';
import type { HandedDelivery, HandedDeliveryRow, WebhookHandoff } from '../webhooks/handoff.js';
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
 * the database function record_status_event. The event's trigger queues its webhook delivery
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
 * The most changes one statement carries. The embedded database runs on this thread, so a
 * statement holds up every request and every webhook until it ends: 32 changes take a few
 * milliseconds. Larger batches record faster but starve the dispatcher (bench/webhooks.ts, 100
 * producers: 16 a batch, 9,900 changes in 6.5 s and 602 deliveries/s; up to 500, 3.0 s and 283/s).
 */
const MAX_BATCH = 32;

interface QueuedChange {
  change: StatusChange;
  settle(result: { event: StatusEvent | null } | { error: unknown }): void;
}

const byFileId = (a: QueuedChange, b: QueuedChange) => (a.change.fileId < b.change.fileId ? -1 : a.change.fileId > b.change.fileId ? 1 : 0);

/** A change as the database functions take it: unset fields NULL, progress whole, metadata JSON. */
function asArguments(change: StatusChange) {
  return {
    fileId: change.fileId,
    status: change.status,
    stage: change.stage ?? null,
    progress: Math.round(change.progress),
    message: change.message ?? null,
    metadata: JSON.stringify(change.metadata ?? {}),
    attempt: change.attempt ?? null,
  };
}

/**
 * What record_status_event returns: the event as StatusEvent has it (and its id), its time as JSON
 * has it; the webhook delivery it queued, if leased to the handoff's dispatcher; and, with a
 * handoff, whether it queued one that it did not hand over (without one, null: unknown).
 */
interface RecordedRow {
  event: Omit<StatusRow, 'updatedAt'> & { updatedAt: string };
  handed: HandedDeliveryRow | null;
  queued: boolean | null;
}

type RecordedChange = Omit<RecordedRow, 'event'> & { event: StatusEvent | null };

/**
 * Records changes in the order given, in one statement and one transaction (the database function
 * record_status_event, or record_status_events for more than one), handing the webhook
 * deliveries they queue to `handoff`'s dispatcher when there is one. Returns, for each change,
 * its event (null when it was dropped) and what it handed over.
 */
async function recordChanges(prisma: PrismaClient, changes: StatusChange[], handoff: WebhookHandoff | null): Promise<RecordedChange[]> {
  const dispatcher = handoff?.id ?? null;
  const leaseMs = handoff?.leaseMs ?? null;
  const recorded = (row: RecordedRow | undefined): RecordedChange =>
    row ? { ...row, event: toStatusEvent({ ...row.event, updatedAt: new Date(row.event.updatedAt) }) } : { event: null, handed: null, queued: null };
  // A batch of one is what a quiet service and two workers mostly make, and the batch's loop
  // around the function made it dearer: on PostgreSQL the webhook bench's ceiling (two producers,
  // so batches of one) fell 15-25% with it, and was back level without it.
  if (changes.length === 1) {
    const { fileId, status, stage, progress, message, metadata, attempt } = asArguments(changes[0]);
    const [row] = await prisma.$queryRaw<RecordedRow[]>`
      SELECT event, handed, queued
      FROM record_status_event(${fileId}::uuid, ${status}::text, ${stage}::text, ${progress}::int, ${message}::text,
                               ${metadata}::jsonb, ${attempt}::int, ${dispatcher}::text, ${leaseMs}::int)`;
    return [recorded(row)];
  }
  const args = changes.map(asArguments);
  const column = <K extends keyof ReturnType<typeof asArguments>>(key: K) => args.map((change) => change[key]);
  const rows = await prisma.$queryRaw<(RecordedRow & { changeIndex: number })[]>`
    SELECT change_index AS "changeIndex", event, handed, queued
    FROM record_status_events(${column('fileId')}::uuid[], ${column('status')}::text[], ${column('stage')}::text[],
                              ${column('progress')}::int[], ${column('message')}::text[], ${column('metadata')}::text[]::jsonb[],
                              ${column('attempt')}::int[], ${dispatcher}::text, ${leaseMs}::int)`;
  const byChange = new Map(rows.map((row) => [row.changeIndex, row]));
  return changes.map((_, index) => recorded(byChange.get(index + 1)));
}

/**
 * The only writer of file status. Every change writes the current row and its event in one
 * transaction and is published only after the commit, so a subscriber that sees an event can
 * always find it in the table, and a crash can never publish a change the table does not hold.
 *
 * Changes are group-committed: those that callers make while `concurrentBatches` batches are
 * being written wait, and go together in the next one. On the embedded database, where one
 * statement at a time runs and each costs several times the change it carries, that is what
 * lets many workers record more changes a second than one could.
 */
export class StatusRecorder {
  private queued: QueuedChange[] = [];
  private batchesInFlight = 0;
  private webhookHandoff: WebhookHandoff | null = null;

  /** `onPublished` hears each change this process recorded, once (the metrics count them). */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly bus: StatusBus,
    private readonly concurrentBatches = 1,
    private readonly onPublished: (event: StatusEvent) => void = () => {},
  ) {}

  /**
   * Hands the webhook deliveries that later changes queue to `handoff` while it has room, rather
   * than leaving them for a claim; null: to none.
   */
  handWebhooksTo(handoff: WebhookHandoff | null): void {
    this.webhookHandoff = handoff;
  }

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
  record(change: StatusChange): Promise<StatusEvent | null> {
    return new Promise((resolve, reject) => {
      this.queued.push({ change, settle: (result) => ('error' in result ? reject(result.error) : resolve(result.event)) });
      this.writeQueued();
    });
  }

  private writeQueued(): void {
    if (this.batchesInFlight >= this.concurrentBatches || this.queued.length === 0) return;
    // By file, keeping each file's changes in the order made: concurrent batches (on PostgreSQL,
    // from any number of processes) then lock their files in one order and cannot deadlock.
    const batch = this.queued.splice(0, MAX_BATCH).sort(byFileId);
    this.batchesInFlight++;
    void this.writeBatch(batch).finally(() => {
      this.batchesInFlight--;
      this.writeQueued();
    });
  }

  /**
   * Should the batch fail, each change is written on its own, so that one bad change cannot fail
   * the others.
   */
  private async writeBatch(batch: QueuedChange[]): Promise<void> {
    const handoff = this.webhookHandoff?.accepting() ? this.webhookHandoff : null;
    const startedAt = performance.now();
    let recorded: RecordedChange[];
    try {
      recorded = await recordChanges(this.prisma, batch.map((queued) => queued.change), handoff);
    } catch (error) {
      handoff?.lost();
      if (batch.length === 1) return batch[0].settle({ error });
      for (const queued of batch) await this.writeBatch([queued]);
      return;
    }
    const handed: HandedDelivery[] = [];
    const queuedNothing: StatusEvent[] = [];
    for (const { event, handed: delivery, queued } of recorded) {
      if (event && delivery) handed.push({ event, delivery });
      else if (event && queued === false) queuedNothing.push(event);
    }
    handoff?.take(handed, queuedNothing, startedAt);
    batch.forEach((queued, index) => {
      const { event } = recorded[index];
      if (event) this.publish(event);
      queued.settle({ event });
    });
  }

  /** After the commit: tell subscribers, and through them the webhook dispatcher. */
  publish(event: StatusEvent): void {
    this.bus.publishStatus(event);
    this.onPublished(event);
  }
}

async function lockStatus(tx: Tx, fileId: string): Promise<StatusRow | null> {
  const rows = await tx.$queryRaw<StatusRow[]>`
    SELECT file_id AS "fileId", tenant_id AS "tenantId", status, stage, progress, message, metadata,
           sequence, attempt, eta_seconds AS "etaSeconds", updated_at AS "updatedAt"
    FROM file_status WHERE file_id = ${fileId}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

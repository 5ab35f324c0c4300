import type { FileState, Metadata, Stage, StatusEvent } from './model.js';

/** A file_status or file_status_event row as Prisma returns it. */
export interface StatusRow {
  fileId: string;
  tenantId: string;
  status: string;
  stage: string;
  progress: number;
  message: string | null;
  metadata: unknown;
  sequence: number;
  attempt: number;
  attemptStartedAt?: Date;
  etaSeconds: number | null;
  updatedAt?: Date;
  createdAt?: Date;
}

export function toStatusEvent(row: StatusRow): StatusEvent {
  return {
    fileId: row.fileId,
    tenantId: row.tenantId,
    sequence: row.sequence,
    status: row.status as FileState,
    stage: row.stage as Stage,
    progress: row.progress,
    message: row.message,
    metadata: (row.metadata ?? {}) as Metadata,
    attempt: row.attempt,
    etaSeconds: row.etaSeconds,
    updatedAt: (row.updatedAt ?? row.createdAt) as Date,
  };
}

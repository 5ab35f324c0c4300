import type { StatusEvent } from './model.js';

/** The snake_case shape that REST pollers read and webhook payloads carry as `data`. */
export function toSnakeCaseStatus(event: StatusEvent) {
  return {
    file_id: event.fileId,
    status: event.status.toLowerCase(),
    stage: event.stage.toLowerCase(),
    progress: event.progress,
    message: event.message,
    metadata: event.metadata,
    sequence: event.sequence,
    attempt: event.attempt,
    eta_seconds: event.etaSeconds,
    updated_at: event.updatedAt.toISOString(),
  };
}

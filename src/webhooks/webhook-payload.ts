import { toSnakeCaseStatus } from '../status/legacy-shape.js';
import type { StatusEvent } from '../status/model.js';

/**
 * What the receiver gets: thin, with the REST status as `data`. `type` is the delivery's, which
 * the database trigger webhook_outbox named. Rendered from the event, which never changes, so
 * every attempt sends and signs the very same bytes.
 */
export function webhookPayload(type: string, event: StatusEvent): string {
  return JSON.stringify({ type, timestamp: event.updatedAt.toISOString(), data: toSnakeCaseStatus(event) });
}

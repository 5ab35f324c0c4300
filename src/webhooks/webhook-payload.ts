import { toSnakeCaseStatus } from '../status/legacy-shape.js';
import type { StatusEvent } from '../status/model.js';

/**
 * What the receiver gets: thin, and in `data` the very shape of the REST status (its
 * `toLegacyStatus`, which webhooks may not import; a test compares the two). `type` is the
 * delivery's, which the database trigger webhook_outbox named. Rendered from the event, which
 * never changes, so every attempt sends and signs the very same bytes.
 */
export function webhookPayload(type: string, event: StatusEvent): string {
  const data = { ...toSnakeCaseStatus(event), eta_seconds: event.etaSeconds, updated_at: event.updatedAt.toISOString() };
  return JSON.stringify({ type, timestamp: event.updatedAt.toISOString(), data });
}

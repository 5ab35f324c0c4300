import type { StatusOutbox } from '../status/record-status-change.js';
import { toSnakeCaseStatus } from '../status/legacy-shape.js';
import type { StatusEvent } from '../status/model.js';

export type WebhookEventType = 'file.processing' | 'file.completed' | 'file.failed';

export function webhookEventType(event: StatusEvent): WebhookEventType {
  return event.status === 'COMPLETED' ? 'file.completed' : event.status === 'FAILED' ? 'file.failed' : 'file.processing';
}

/** What the receiver gets: thin, and the same shape as the REST status. */
export function webhookPayload(event: StatusEvent): string {
  return JSON.stringify({ type: webhookEventType(event), timestamp: event.updatedAt.toISOString(), data: toSnakeCaseStatus(event) });
}

/**
 * Writes a delivery row for a status change, inside the change's own transaction, when the file
 * has a webhook that wants this type. A newer event supersedes the older non-terminal ones still
 * waiting for the same receiver, so a slow receiver gets the latest state, not a backlog; terminal
 * events are never superseded.
 */
export const writeWebhookDelivery: StatusOutbox = async (tx, event, eventId) => {
  const type = webhookEventType(event);
  // One statement, as it runs inside every status change. FOR SHARE: a 410 that disables this
  // webhook right now (it updates the file row) waits for this transaction and then discards what
  // it wrote, or this one waits and sees the webhook disabled.
  const written = await tx.$queryRaw<{ id: string }[]>`
    WITH target AS (
      SELECT webhook_url AS url FROM file
      WHERE id = ${event.fileId}::uuid AND webhook_url IS NOT NULL AND webhook_disabled_at IS NULL
        AND ${type} = ANY(webhook_events)
      FOR SHARE),
    superseded AS (
      UPDATE webhook_delivery SET state = 'DISCARDED', discard_reason = 'superseded', next_attempt_at = NULL
      WHERE file_id = ${event.fileId}::uuid AND url = (SELECT url FROM target) AND state = 'PENDING'
        AND event_type = 'file.processing' AND sequence < ${event.sequence})
    INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, payload, state, next_attempt_at)
    SELECT gen_random_uuid(), ${event.tenantId}::uuid, ${event.fileId}::uuid, ${eventId}, ${event.sequence}, ${type}, url,
           substring(url from '^[a-z]+://([^/?#]+)'), ${webhookPayload(event)}, 'PENDING', ${event.updatedAt}
    FROM target
    RETURNING id`;
  return written.length > 0;
};

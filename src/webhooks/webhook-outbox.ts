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
  // FOR SHARE: a 410 that disables this webhook right now (it updates the file row) waits for
  // this transaction and then discards what it wrote, or this one waits and sees it disabled.
  const [file] = await tx.$queryRaw<{ webhookUrl: string | null; webhookEvents: string[]; webhookDisabledAt: Date | null }[]>`
    SELECT webhook_url AS "webhookUrl", webhook_events AS "webhookEvents", webhook_disabled_at AS "webhookDisabledAt"
    FROM file WHERE id = ${event.fileId}::uuid FOR SHARE`;
  if (!file?.webhookUrl || file.webhookDisabledAt || !file.webhookEvents.includes(type)) return false;
  await tx.webhookDelivery.updateMany({
    where: { fileId: event.fileId, url: file.webhookUrl, state: 'PENDING', eventType: 'file.processing', sequence: { lt: event.sequence } },
    data: { state: 'DISCARDED', discardReason: 'superseded', nextAttemptAt: null },
  });
  await tx.webhookDelivery.create({
    data: {
      tenantId: event.tenantId,
      fileId: event.fileId,
      eventId,
      sequence: event.sequence,
      eventType: type,
      url: file.webhookUrl,
      host: new URL(file.webhookUrl).host,
      payload: webhookPayload(event),
      state: 'PENDING',
      nextAttemptAt: event.updatedAt,
    },
  });
  return true;
};

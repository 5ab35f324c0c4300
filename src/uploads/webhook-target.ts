import { InvalidWebhookEventsError, InvalidWebhookUrlError } from './errors.js';

export const WEBHOOK_EVENT_TYPES = ['file.processing', 'file.completed', 'file.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookTarget {
  url: string;
  events: WebhookEventType[];
}

const MAX_URL_LENGTH = 2048;

/**
 * Checks the webhook an upload asks for: `checkUrl` resolves the host and refuses private and
 * other non-public addresses. The sender checks the address again when it sends.
 */
export async function parseWebhookTarget(
  url: string | null | undefined,
  events: WebhookEventType[] | null | undefined,
  checkUrl: (url: string) => Promise<unknown>,
): Promise<WebhookTarget | null> {
  if (events && events.length === 0) {
    throw new InvalidWebhookEventsError('webhookEvents is empty: name at least one event type, or leave it out for all three.');
  }
  if (url === null || url === undefined) {
    if (events) throw new InvalidWebhookEventsError('webhookEvents needs a webhookUrl to deliver to.');
    return null;
  }
  if (url.length > MAX_URL_LENGTH) throw new InvalidWebhookUrlError(`The webhook URL is longer than ${MAX_URL_LENGTH} characters.`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidWebhookUrlError('The webhook URL is not an absolute URL.');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new InvalidWebhookUrlError(`The webhook URL must use http or https, not ${parsed.protocol.slice(0, -1)}.`);
  }
  if (!parsed.hostname) throw new InvalidWebhookUrlError('The webhook URL has no host.');
  // Percent-encoding can triple what was counted above: what is stored and sent is this.
  const normalized = parsed.toString();
  if (normalized.length > MAX_URL_LENGTH) {
    throw new InvalidWebhookUrlError(`The webhook URL is longer than ${MAX_URL_LENGTH} characters once encoded.`);
  }
  try {
    await checkUrl(normalized);
  } catch (error) {
    throw new InvalidWebhookUrlError(`The webhook URL was refused: ${(error as Error).message}.`);
  }
  const chosen = events ? [...new Set(events)] : [...WEBHOOK_EVENT_TYPES];
  return { url: normalized, events: chosen };
}

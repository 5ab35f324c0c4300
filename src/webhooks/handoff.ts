import type { StatusEvent } from '../status/model.js';
import type { ClaimedDelivery } from './delivery-sql.js';

/** A delivery as the database hands it over with the change that queued it (record_status_event's `handed`). */
export interface HandedDeliveryRow {
  id: string;
  tenantId: string;
  fileId: string;
  eventId: string;
  eventType: string;
  url: string;
  host: string;
  attemptCount: number;
  lockedUntil: string;
  webhookSecret: string | null;
  previousWebhookSecret: string | null;
  previousWebhookSecretExpiresAt: string | null;
}

export interface HandedDelivery {
  event: StatusEvent;
  delivery: HandedDeliveryRow;
}

/**
 * A dispatcher that takes, from the status changes recorded in its process, the deliveries they
 * queue, already leased to it: no claim between the change and the send (migration webhook_handoff).
 */
export interface WebhookHandoff {
  /** The lease holder the database writes on what it hands over. */
  readonly id: string;
  readonly leaseMs: number;
  /** Whether it has room for more now; asked before each batch of changes. A yes is answered by take() or lost(). */
  accepting(): boolean;
  /**
   * What the batch handed over, after its commit (possibly nothing), and its changes that queued
   * no delivery at all: neither needs a claim. `leasedSince` is performance.now() from before the
   * batch's statement, which leased what it handed over: the leases run from no earlier.
   */
  take(handed: HandedDelivery[], queuedNothing: StatusEvent[], leasedSince: number): void;
  /** The batch failed: it may have committed all the same, and handed over what no answer told of. */
  lost(): void;
}

export function toClaimedDelivery({ event, delivery }: HandedDelivery): ClaimedDelivery {
  return {
    ...delivery,
    event,
    eventId: BigInt(delivery.eventId),
    lockedUntil: new Date(delivery.lockedUntil),
    previousWebhookSecretExpiresAt: delivery.previousWebhookSecretExpiresAt === null ? null : new Date(delivery.previousWebhookSecretExpiresAt),
  };
}

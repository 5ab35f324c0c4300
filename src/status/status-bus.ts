import { createPubSub } from 'graphql-yoga';
import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import type { StatusEvent } from './model.js';

/**
 * Topics of the internal pub-sub. A status change is published twice, once for watchers of the
 * file and once for watchers of the whole tenant, so that neither kind filters the other's traffic.
 */
export const topics = {
  file: (fileId: string) => `file:${fileId}`,
  tenant: (tenantId: string) => `tenant:${tenantId}`,
  /** Work was queued: workers stop waiting for their next poll. */
  jobs: 'jobs',
  /** Webhook deliveries were queued: the dispatcher stops waiting for its next poll. */
  webhooks: 'webhooks',
};

// Over the wire events are JSON, where dates become strings.
export function reviveStatusEvent(event: StatusEvent): StatusEvent {
  return { ...event, updatedAt: new Date(event.updatedAt) };
}

export type StatusBus = ReturnType<typeof createStatusBus>;

/**
 * Yoga's pub-sub over an event target: an in-process one for the embedded database, PostgreSQL
 * LISTEN/NOTIFY when API and workers run in separate processes.
 */
export function createStatusBus(eventTarget?: TypedEventTarget<CustomEvent>) {
  const pubsub = createPubSub({ eventTarget });
  return {
    pubsub,
    publishStatus(event: StatusEvent) {
      pubsub.publish(topics.file(event.fileId), event);
      pubsub.publish(topics.tenant(event.tenantId), event);
    },
    publishJobsQueued() {
      pubsub.publish(topics.jobs, null);
    },
    publishWebhooksQueued() {
      pubsub.publish(topics.webhooks, null);
    },
    /** Calls `wake` for every message on a signal topic (jobs, webhooks) until the returned stop. */
    onSignal(topic: string, wake: () => void): () => Promise<void> {
      const signals = pubsub.subscribe(topic)[Symbol.asyncIterator]();
      void (async () => {
        while (!(await signals.next()).done) wake();
      })();
      return async () => {
        await signals.return?.();
      };
    },
  };
}

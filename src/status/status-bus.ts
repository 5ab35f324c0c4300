import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';
import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import type { Logger } from '../log.js';
import type { StatusEvent } from './model.js';
import { RECONNECTED } from './postgres-event-target.js';

/**
 * Topics of the internal pub-sub. A status change crosses processes once, on `status`, and is
 * fanned out in each process to the watchers of its file and of its tenant, so that neither kind
 * filters the other's traffic.
 */
export const topics = {
  status: 'status',
  file: (fileId: string) => `file:${fileId}`,
  tenant: (tenantId: string) => `tenant:${tenantId}`,
  /** Work was queued: workers stop waiting for their next poll. */
  jobs: 'jobs',
  /** A delivery was queued again (redeliverWebhook): the dispatcher stops waiting for its next poll. */
  webhooks: 'webhooks',
};

// Over the wire events are JSON, where dates become strings.
function reviveStatusEvent(event: StatusEvent): StatusEvent {
  return { ...event, updatedAt: new Date(event.updatedAt) };
}

export type StatusBus = ReturnType<typeof createStatusBus>;

/** Changes may cross processes with a lag, so a reconnected bus reads back a little before it went down. */
const RESYNC_MARGIN_MS = 5_000;

interface Resync {
  /** The current status of every file changed since `since`. */
  changedSince(since: Date): Promise<StatusEvent[]>;
  log: Logger;
}

export interface StatusBusOptions {
  /**
   * Status changes reach the wire from the database, announced by the transaction that records
   * each (PostgreSQL: migration status_events_announced_at_commit), so this process sends none.
   * @default false
   */
  announcedByDatabase?: boolean;
}

/**
 * Yoga's pub-sub over an event target: an in-process one for the embedded database, PostgreSQL
 * LISTEN/NOTIFY when API and workers run in separate processes. When that connection comes back
 * after an outage, the current status of each file changed meanwhile is heard again: watchers that
 * see a sequence gap read the missed changes from the event table, so none is lost.
 */
export function createStatusBus(
  eventTarget: TypedEventTarget<CustomEvent> = new EventTarget(),
  resync?: Resync,
  { announcedByDatabase = false }: StatusBusOptions = {},
) {
  const wire = createPubSub({ eventTarget });
  // Every subscriber of a file or a tenant listens here: 11 on one topic are not a leak, though
  // Node warns of one on stderr past 10 per event.
  const localTarget = new EventTarget();
  setMaxListeners(0, localTarget);
  const statusListeners = new Set<(event: StatusEvent) => void>();
  const hear = (event: StatusEvent): void => {
    localTarget.dispatchEvent(new CustomEvent(topics.file(event.fileId), { detail: event }));
    localTarget.dispatchEvent(new CustomEvent(topics.tenant(event.tenantId), { detail: event }));
    for (const listener of statusListeners) listener(event);
  };
  eventTarget.addEventListener(topics.status, (message) => hear(reviveStatusEvent((message as CustomEvent<StatusEvent>).detail)));
  eventTarget.addEventListener(RECONNECTED, (message) => {
    if (!resync) return;
    const { downSince } = (message as CustomEvent<{ downSince: Date }>).detail;
    resync
      .changedSince(new Date(downSince.getTime() - RESYNC_MARGIN_MS))
      .then((events) => events.forEach(hear))
      .catch((error: unknown) => resync.log.error({ err: error }, 'could not read the changes missed while the bus was down'));
  });
  return {
    /**
     * Calls `listener` with each status change on a file's or a tenant's topic, in this process,
     * until the returned stop. A plain listener, not an async iterator: one with a buffer of its
     * own (Yoga's pub-sub holds at most 1,024 pending events) threw, and ended the process, when
     * a reconnected bus re-announced more changes at once than that.
     */
    watch(topic: string, listener: (event: StatusEvent) => void): () => void {
      const onEvent = (message: Event) => listener((message as CustomEvent<StatusEvent>).detail);
      localTarget.addEventListener(topic, onEvent);
      return () => localTarget.removeEventListener(topic, onEvent);
    },
    publishStatus(event: StatusEvent) {
      // This process's own changes reach its listeners at once, so that a read after a write sees
      // it; the copy that comes back over the wire is heard again.
      for (const listener of statusListeners) listener(event);
      if (!announcedByDatabase) wire.publish(topics.status, event);
    },
    /**
     * Every status change of every file, at least once: this process's own at once, and every
     * change as it arrives over the wire.
     */
    onStatus(listener: (event: StatusEvent) => void): () => void {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    publishJobsQueued() {
      wire.publish(topics.jobs, null);
    },
    publishWebhooksQueued() {
      wire.publish(topics.webhooks, null);
    },
    /** Calls `wake` for every message on a signal topic (jobs, webhooks) until the returned stop. */
    onSignal(topic: string, wake: () => void): () => Promise<void> {
      const signals = wire.subscribe(topic)[Symbol.asyncIterator]();
      void (async () => {
        while (!(await signals.next()).done) wake();
      })();
      return async () => {
        await signals.return?.();
      };
    },
  };
}

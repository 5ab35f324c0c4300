import type { PrismaClient } from '../db/database.js';
import { isTerminal, type StatusEvent } from './model.js';
import { readEventsAfter, readStatus } from './read-status.js';
import { topics, type StatusBus } from './status-bus.js';

/** Live events a subscriber may fall behind by before it is caught up from the event table. */
const LIVE_BUFFER_LIMIT = 64;
const REPLAY_PAGE = 200;
/** Files whose last delivered sequence a tenant-wide stream remembers. */
const DELIVERED_MEMORY = 10_000;

/** Stands in the queue for live events of a file that overflowed it: they are read back from the table. */
interface Replay {
  replayFileId: string;
  firstDroppedSequence: number;
}

/**
 * A bounded queue of live events. When a subscriber falls behind, further events are not kept:
 * a single marker per file says "read this file's events from the table", which holds them all
 * (they are published only after their commit). Memory stays bounded, and nothing is lost.
 */
class LiveQueue {
  private items: (StatusEvent | Replay)[] = [];
  private replaying = new Set<string>();
  private wake: (() => void) | undefined;
  private closed = false;

  push(event: StatusEvent): void {
    if (this.items.length < LIVE_BUFFER_LIMIT) this.items.push(event);
    else if (!this.replaying.has(event.fileId)) {
      this.replaying.add(event.fileId);
      this.items.push({ replayFileId: event.fileId, firstDroppedSequence: event.sequence });
    }
    this.wake?.();
  }

  /** Wakes a pending take(), which then answers null. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async take(): Promise<StatusEvent | Replay | null> {
    while (this.items.length === 0 && !this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.closed) return null;
    const item = this.items.shift()!;
    if ('replayFileId' in item) this.replaying.delete(item.replayFileId);
    return item;
  }
}

/** Told when a stream opens and when it lets go of its subscription: the metrics count those open. */
export interface WatchObserver {
  opened(): void;
  closed(): void;
}

interface WatchDeps {
  prisma: PrismaClient;
  bus: StatusBus;
  watchObserver?: WatchObserver;
}

/**
 * Delivers each file's changes in sequence order, exactly once: events at or below the last one
 * delivered are dropped, and a gap (events that overflowed the queue, or crossed processes out of
 * order) is filled from the event table before the newer event goes out. The subscription is
 * live when this returns, before the first event is read.
 */
function orderedEvents(
  deps: WatchDeps,
  topic: string,
  delivered: Map<string, number>,
  isLast: (event: StatusEvent) => boolean,
): AsyncGenerator<StatusEvent> {
  const queue = new LiveQueue();
  const unwatch = deps.bus.watch(topic, (event) => queue.push(event));
  deps.watchObserver?.opened();

  async function* catchUp(fileId: string, after: number, upTo: number): AsyncGenerator<StatusEvent> {
    for (;;) {
      const page = await readEventsAfter(deps.prisma, fileId, after, REPLAY_PAGE);
      for (const event of page) {
        if (event.sequence > upTo) return;
        if (event.sequence !== after + 1) throw new HistoryExpiredError(fileId, after + 1, event.sequence - 1);
        after = event.sequence;
        yield event;
      }
      if (page.length < REPLAY_PAGE) return;
    }
  }

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    queue.close();
    unwatch();
    deps.watchObserver?.closed();
  };

  async function* ordered(): AsyncGenerator<StatusEvent> {
    // A stream that ends by itself (after a terminal status) lets go of its subscription too.
    try {
      yield* orderedUntilLast();
    } finally {
      await stop();
    }
  }

  async function* orderedUntilLast(): AsyncGenerator<StatusEvent> {
    for (;;) {
      const item = await queue.take();
      if (!item) return;
      const fileId = 'replayFileId' in item ? item.replayFileId : item.fileId;
      const last = delivered.get(fileId);
      const missed =
        'replayFileId' in item
          ? catchUp(fileId, last ?? item.firstDroppedSequence - 1, Number.MAX_SAFE_INTEGER)
          : last !== undefined && item.sequence > last + 1
            ? catchUp(fileId, last, item.sequence)
            : [item];
      for await (const event of missed) {
        if (event.sequence <= (delivered.get(fileId) ?? 0)) continue;
        delivered.delete(fileId);
        delivered.set(fileId, event.sequence);
        yield event;
        if (isLast(event)) return;
        // A tenant's stream outlives its files: forget the least recently seen ones.
        if (delivered.size > DELIVERED_MEMORY) delivered.delete(delivered.keys().next().value!);
      }
    }
  }

  const events = ordered();
  return {
    next: () => events.next(),
    async return(value) {
      await stop();
      return events.return(value);
    },
    async throw(error) {
      await stop();
      return events.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncGenerator<StatusEvent>;
}

export class NotFoundError extends Error {}

/**
 * A subscriber fell so far behind that changes it had not read were deleted by the history's
 * retention (STATUS_EVENT_RETENTION) before it caught up: the stream ends rather than skip them.
 */
export class HistoryExpiredError extends Error {
  constructor(fileId: string, from: number, to: number) {
    super(
      `The changes ${from} to ${to} of file ${fileId} were deleted by the status history's retention before this subscription read them. Subscribe again for the current status.`,
    );
  }
}

/**
 * A file's status as a stream: the current status first, then every change in order, ending
 * after a terminal status. Rejects with NotFoundError for an unknown file or another tenant's.
 */
export async function watchFileStatus(deps: WatchDeps, tenantId: string, fileId: string): Promise<AsyncGenerator<StatusEvent>> {
  const delivered = new Map<string, number>();
  // Subscribe before reading the snapshot, so no change can fall between the two.
  const changes = orderedEvents(deps, topics.file(fileId), delivered, (event) => isTerminal(event.status));
  const snapshot = await readStatus(deps.prisma, tenantId, fileId).catch(async (error: unknown) => {
    await changes.return(undefined);
    throw error;
  });
  if (!snapshot) {
    await changes.return(undefined);
    throw new NotFoundError(fileId);
  }
  delivered.set(fileId, snapshot.sequence);
  // Hand-written rather than a generator: a generator's return() waits for its pending next(),
  // which waits for a change that may never come, and a subscriber who leaves must be let go.
  let snapshotSent = false;
  return {
    async next() {
      if (!snapshotSent) {
        snapshotSent = true;
        return { value: snapshot, done: false };
      }
      if (isTerminal(snapshot.status)) return changes.return(undefined);
      return changes.next();
    },
    return: (value) => changes.return(value),
    throw: (error) => changes.throw(error),
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncGenerator<StatusEvent>;
}

/** Every change of every file of a tenant, in order per file; it never ends by itself. */
export async function watchTenantStatus(deps: WatchDeps, tenantId: string): Promise<AsyncGenerator<StatusEvent>> {
  return orderedEvents(deps, topics.tenant(tenantId), new Map(), () => false);
}

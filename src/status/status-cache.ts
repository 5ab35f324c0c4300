import type { PrismaClient } from '../db/database.js';
import type { StatusEvent } from './model.js';
import { readStatus } from './read-status.js';
import type { StatusBus } from './status-bus.js';

/**
 * How long a cached status is served without asking the database. Every published change
 * refreshes its entry at once; the age limit only bounds how stale an entry can get if a change's
 * publication is lost (a dropped bus connection between processes).
 */
const MAX_AGE_MS = 1_000;
const MAX_ENTRIES = 50_000;

/**
 * Current statuses of recently read files, for the pollers: with it, a poll costs a map lookup
 * instead of a query (measured in bench/status-reads.ts). Only known files are kept, so made-up
 * ids cannot fill it.
 */
export class StatusCache {
  private entries = new Map<string, { event: StatusEvent; fetchedAt: number }>();
  /** Files being read from the database, with how many reads: a change heard meanwhile is newer than what they will get. */
  private reading = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly prisma: PrismaClient,
    bus: StatusBus,
  ) {
    this.unsubscribe = bus.onStatus((event) => {
      const cached = this.entries.get(event.fileId);
      if (cached ? cached.event.sequence < event.sequence : this.reading.has(event.fileId)) this.remember(event);
    });
  }

  /** The current status of a tenant's file; another tenant's file reads as unknown. */
  async read(tenantId: string, fileId: string): Promise<StatusEvent | null> {
    const cached = this.entries.get(fileId);
    if (cached && Date.now() - cached.fetchedAt < MAX_AGE_MS) return cached.event.tenantId === tenantId ? cached.event : null;
    this.reading.set(fileId, (this.reading.get(fileId) ?? 0) + 1);
    try {
      const event = await readStatus(this.prisma, tenantId, fileId);
      if (!event) return null;
      const heard = this.entries.get(fileId);
      if (heard && heard.event.sequence > event.sequence) return heard.event;
      this.remember(event);
      return event;
    } finally {
      const count = this.reading.get(fileId)!;
      if (count === 1) this.reading.delete(fileId);
      else this.reading.set(fileId, count - 1);
    }
  }

  close(): void {
    this.unsubscribe();
  }

  private remember(event: StatusEvent): void {
    this.entries.delete(event.fileId);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(event.fileId, { event, fetchedAt: Date.now() });
  }
}

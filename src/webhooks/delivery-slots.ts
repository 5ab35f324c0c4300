import type { ClaimedDelivery } from './delivery-sql.js';

export interface SlotLimits {
  concurrency: number;
  concurrencyPerHost: number;
  concurrencyPerTenant: number;
}

function countIn(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function countOut(counts: Map<string, number>, key: string): void {
  const left = counts.get(key)! - 1;
  if (left === 0) counts.delete(key);
  else counts.set(key, left);
}

/**
 * What one dispatcher holds, against its limits: the deliveries being sent, at most the limits'
 * worth per process, host and tenant, and those leased and waiting for a slot, in the order they
 * came. Sending and waiting together are held to `ahead` times the limits.
 */
export class DeliverySlots {
  private sendingPerHost = new Map<string, number>();
  private sendingPerTenant = new Map<string, number>();
  private sendingTotal = 0;
  /**
   * With a time no later than its lease's start (performance.now() before the statement that
   * leased it): what it may still wait is counted from then.
   */
  private waiting: { delivery: ClaimedDelivery; heldSince: number }[] = [];

  constructor(
    private readonly limits: SlotLimits,
    private readonly ahead: number,
  ) {}

  /** How many more the process may hold, sending or waiting. */
  get free(): number {
    return this.ahead * this.limits.concurrency - this.sendingTotal - this.waiting.length;
  }

  /** Held per host and per tenant, sending or waiting: what a claim must stay within. */
  heldPer(): { hosts: Map<string, number>; tenants: Map<string, number> } {
    const hosts = new Map(this.sendingPerHost);
    const tenants = new Map(this.sendingPerTenant);
    for (const { delivery } of this.waiting) {
      countIn(hosts, delivery.host);
      countIn(tenants, delivery.tenantId);
    }
    return { hosts, tenants };
  }

  /** The hosts and tenants that hold all they may; `held` is what heldPer() gave. */
  atTheirBound({ hosts, tenants }: { hosts: Map<string, number>; tenants: Map<string, number> }): { hosts: Set<string>; tenants: Set<string> } {
    const full = (counts: Map<string, number>, limit: number) =>
      new Set([...counts].filter(([, count]) => count >= this.ahead * limit).map(([key]) => key));
    return { hosts: full(hosts, this.limits.concurrencyPerHost), tenants: full(tenants, this.limits.concurrencyPerTenant) };
  }

  /** Holds deliveries that a claim bounded already, leased since `leasedSince` (performance.now()). */
  hold(deliveries: ClaimedDelivery[], leasedSince: number): void {
    for (const delivery of deliveries) this.waiting.push({ delivery, heldSince: leasedSince });
  }

  /**
   * Holds, in order, each delivery that fits within what may be held, leased since `leasedSince`;
   * tells which did and which did not.
   */
  holdWithin(deliveries: ClaimedDelivery[], leasedSince: number): { held: ClaimedDelivery[]; beyond: ClaimedDelivery[] } {
    const { hosts, tenants } = this.heldPer();
    const held: ClaimedDelivery[] = [];
    const beyond: ClaimedDelivery[] = [];
    for (const delivery of deliveries) {
      const fits =
        this.free > 0 &&
        (hosts.get(delivery.host) ?? 0) < this.ahead * this.limits.concurrencyPerHost &&
        (tenants.get(delivery.tenantId) ?? 0) < this.ahead * this.limits.concurrencyPerTenant;
      if (!fits) {
        beyond.push(delivery);
        continue;
      }
      this.waiting.push({ delivery, heldSince: leasedSince });
      held.push(delivery);
      countIn(hosts, delivery.host);
      countIn(tenants, delivery.tenantId);
    }
    return { held, beyond };
  }

  /**
   * Takes out, in the order they came, the waiting deliveries that have a slot: those that waited
   * longer than `maxWaitMs` as overdue, the others as sending, each in its slot until release(),
   * with the time (performance.now()) by which its request must have started: `maxWaitMs` after
   * it was held.
   */
  start(now: number, maxWaitMs: number): { sending: { delivery: ClaimedDelivery; sendBy: number }[]; overdue: ClaimedDelivery[] } {
    const sending: { delivery: ClaimedDelivery; sendBy: number }[] = [];
    const overdue: ClaimedDelivery[] = [];
    this.waiting = this.waiting.filter(({ delivery, heldSince }) => {
      if (!this.hasSlot(delivery)) return true;
      if (now - heldSince > maxWaitMs) {
        overdue.push(delivery);
      } else {
        countIn(this.sendingPerHost, delivery.host);
        countIn(this.sendingPerTenant, delivery.tenantId);
        this.sendingTotal++;
        sending.push({ delivery, sendBy: heldSince + maxWaitMs });
      }
      return false;
    });
    return { sending, overdue };
  }

  /** Frees the slot of a delivery that start() gave as sending. */
  release(delivery: ClaimedDelivery): void {
    countOut(this.sendingPerHost, delivery.host);
    countOut(this.sendingPerTenant, delivery.tenantId);
    this.sendingTotal--;
  }

  /** Takes out every waiting delivery. */
  drainWaiting(): ClaimedDelivery[] {
    return this.waiting.splice(0).map(({ delivery }) => delivery);
  }

  private hasSlot(delivery: ClaimedDelivery): boolean {
    return (
      this.sendingTotal < this.limits.concurrency &&
      (this.sendingPerHost.get(delivery.host) ?? 0) < this.limits.concurrencyPerHost &&
      (this.sendingPerTenant.get(delivery.tenantId) ?? 0) < this.limits.concurrencyPerTenant
    );
  }
}

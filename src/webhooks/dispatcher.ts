import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebhookConfig } from '../config.js';
import type { PrismaClient } from '../db/database.js';
import { LostClaimRecovery } from '../db/lost-claim-recovery.js';
import { retryWrite } from '../db/retry-write.js';
import type { Logger } from '../log.js';
import type { StatusEvent } from '../status/model.js';
import { WakeSignal } from '../wake-signal.js';
import {
  claimDeliveries,
  recordAttempts,
  releaseDeliveries,
  releaseUnsentDeliveries,
  type AttemptResult,
  type ClaimedDelivery,
  type DeliveryResolution,
} from './delivery-sql.js';
import { DeliverySlots } from './delivery-slots.js';
import { toClaimedDelivery, type HandedDelivery, type WebhookHandoff } from './handoff.js';
import { clampRetryAfter, parseRetryAfter, scheduledDelayMs } from './retry-schedule.js';
import type { SendOutcome, WebhookSender } from './send-webhook.js';
import { webhookPayload } from './webhook-payload.js';
import { WebhookIds } from './webhook-ids.js';
import { ensureWebhookSecret, SigningSecrets } from './webhook-secrets.js';

/** What an attempt's outcome means for its delivery. */
export function resolveAttempt(outcome: SendOutcome, attemptCount: number, schedule: number[]): DeliveryResolution {
  const status = outcome.responseStatus;
  if (status !== null && status >= 200 && status < 300) return { state: 'DELIVERED' };
  if (status === 410) return { state: 'FAILED', disableWebhook: true };
  const delay = scheduledDelayMs(schedule, attemptCount + 1);
  if (delay === null) return { state: 'FAILED', disableWebhook: false };
  const requested = status === 429 || status === 503 ? parseRetryAfter(outcome.retryAfter) : null;
  return { state: 'PENDING', retryInMs: requested === null ? delay : clampRetryAfter(requested, delay) };
}

/**
 * What the dispatcher tells an onlooker (the metrics) as it goes. Called on the sending path, so
 * it must be cheap and synchronous; it carries nothing a tenant chose.
 */
export interface DeliveryObserver {
  /** Every attempt, with its outcome, whatever becomes of the delivery. */
  attempted(outcome: SendOutcome): void;
  /**
   * A delivery ended with this attempt, and its record was written. A record that found the lease
   * gone writes nothing and still counts here: the rare delivery whose lease lapsed mid-attempt
   * is counted by both dispatchers that sent it.
   */
  ended(state: 'DELIVERED' | 'FAILED'): void;
}

const UNOBSERVED: DeliveryObserver = { attempted() {}, ended() {} };

const changeKey = (event: StatusEvent) => `${event.fileId}:${event.sequence}`;

/**
 * The shortest time between two claims. Every status change wakes the dispatcher, and on the
 * embedded database a claim costs about as much as the change itself, mostly planning. A lone
 * change is still claimed at once; a stream of them is claimed in batches, one claim per
 * interval (bench/webhooks.ts, embedded: 236 deliveries/s claiming every 5 ms, 300-550 every 20 ms).
 */
const CLAIM_INTERVAL_MS = 20;

/**
 * A claim takes up to this many times what the limits let run at once. The extra ones wait here,
 * leased, and start the moment a slot of theirs frees, rather than at the next claim, a claim
 * interval and a database round later: a loopback request takes a few milliseconds, a round tens
 * of them, so with only the limits' worth claimed the slots stood idle most of the time
 * (bench/webhooks.ts, 16 producers: 789-914 deliveries/s, none superseded, against 508-551/s with
 * half superseded). Twice, because a waiting delivery then mostly starts within one attempt's time
 * of its claim (its slot was taken before it was claimed), and a lease outlives two attempts with
 * room to record; one that waited longer is given back (startWaiting).
 */
const CLAIM_AHEAD = 2;

/**
 * Sends the outbox. Takes what the status changes of its own process hand it (WebhookHandoff),
 * and claims the rest: woken by every status change that may have queued one (and by
 * redeliveries), polling as a fallback.
 * Each delivery is leased, so one that a killed process was sending goes out again (same
 * webhook-id) once the lease lapses. A global limit, a per-host one and a per-tenant one keep a
 * slow or hanging receiver, or a tenant with many of them, from taking the slots of the others.
 */
export class WebhookDispatcher implements WebhookHandoff {
  readonly id = `dispatcher-${randomUUID()}`;
  private readonly slots: DeliverySlots;
  /**
   * Claimed and not yet settled (waiting, sending, or writing what the attempt gave), with the
   * lease each was claimed under: a redelivery can be claimed again while the previous attempt
   * still writes.
   */
  private unsettled = new Map<string, number>();
  /** After a lost claim, gives back every delivery leased to this dispatcher that it is not settling. */
  private lostClaims = new LostClaimRecovery(() => releaseUnsentDeliveries(this.prisma, this.id, [...this.unsettled.keys()]));
  /** Leased to this dispatcher, and not to be sent by it: handed over beyond its room, or waited too long. */
  private toGiveBack: ClaimedDelivery[] = [];
  /**
   * Batches of status changes that may hand deliveries over and have not answered yet: until they
   * do, what they handed is leased here but unknown, and a lost claim's give-back would take it.
   */
  private handoffsInFlight = 0;
  /** Resolves the stop's wait for the batches still unanswered. */
  private handoffsAnswered: (() => void) | undefined;
  /** What batches answered during the stop gave back, which the stop waits for. */
  private givingBackAtStop: Promise<void> = Promise.resolve();
  /**
   * Whether the next round claims: something may have queued a delivery, or freed one to go. A
   * round that only records what was sent and finds nothing new due claims nothing; with
   * deliveries handed over, that is most rounds.
   */
  private claimWanted = true;
  /**
   * The status changes of this process that need no claim (file:sequence), over the last poll
   * interval or two: they handed their delivery here, or queued none.
   */
  private claimless = { since: 0, recent: new Set<string>(), older: new Set<string>() };
  /** The hosts and tenants that held all they may at the last claim: a slot of theirs freeing calls for another. */
  private boundedAtClaim = { hosts: new Set<string>(), tenants: new Set<string>() };
  private stopping = false;
  /** The stop's grace is over: what is still being sent is left to its lease. */
  private abandoned = false;
  private signal = new WakeSignal();
  private loop: Promise<void> | undefined;
  private sends = new Set<Promise<void>>();
  private unrecorded: { result: AttemptResult; done: (error?: unknown) => void }[] = [];
  private recording = false;
  private readonly signingSecrets: SigningSecrets;
  private readonly webhookIds: WebhookIds;

  /** `announceQueued` tells every dispatcher, of every process, that deliveries are due again. */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly sender: WebhookSender,
    private readonly config: WebhookConfig,
    private readonly log: Logger,
    private readonly announceQueued: () => void = () => {},
    private readonly observer: DeliveryObserver = UNOBSERVED,
  ) {
    this.slots = new DeliverySlots(config, CLAIM_AHEAD);
    this.signingSecrets = new SigningSecrets(prisma, log);
    this.webhookIds = new WebhookIds(prisma);
  }

  /** A lease outlives the longest attempt with room to record it, so a live sender never loses its delivery. */
  get leaseMs(): number {
    return 2 * this.config.timeoutMs + 1_000;
  }

  start(): void {
    this.loop = this.claimLoop();
  }

  /** Something may have queued a delivery: the next round claims. */
  wake(): void {
    this.claimWanted = true;
    this.signal.wake();
  }

  /**
   * A status change, of this process or another: it may have queued a delivery, unless it handed
   * it here or this process knows it queued none. (Each change is heard twice, at once and as it
   * comes back over the wire.)
   */
  statusChanged(event: StatusEvent): void {
    const key = changeKey(event);
    if (!this.claimless.recent.has(key) && !this.claimless.older.has(key)) this.wake();
  }

  private async claimLoop(): Promise<void> {
    let lastRoundAt = 0;
    let lastClaimAt = 0;
    while (!this.stopping) {
      const wait = lastRoundAt + CLAIM_INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
      lastRoundAt = performance.now();
      // The poll: a retry falls due, or another dispatcher's lease lapses, with no wake.
      if (lastRoundAt - lastClaimAt >= this.config.pollMs) this.claimWanted = true;
      if (lastRoundAt - this.claimless.since >= this.config.pollMs) {
        this.claimless = { since: lastRoundAt, recent: new Set(), older: this.claimless.recent };
      }
      // The attempts finished since the last round first: they end their deliveries' turn, so the
      // next delivery of the same file and URL can be claimed in this round.
      await this.writeAttempts();
      await this.giveBack();
      if (this.handoffsInFlight === 0) await this.lostClaims.settle();
      const free = this.slots.free;
      let claimed: ClaimedDelivery[] = [];
      if (free > 0 && this.claimWanted) {
        lastClaimAt = lastRoundAt;
        this.claimWanted = false;
        const held = this.slots.heldPer();
        this.boundedAtClaim = this.slots.atTheirBound(held);
        const claimStartedAt = performance.now();
        try {
          claimed = await this.lostClaims.claim(() =>
            claimDeliveries(this.prisma, this.id, this.leaseMs, {
              limit: free,
              perHost: CLAIM_AHEAD * this.config.concurrencyPerHost,
              perTenant: CLAIM_AHEAD * this.config.concurrencyPerTenant,
              hostsInFlight: held.hosts,
              tenantsInFlight: held.tenants,
            }),
          );
        } catch (error) {
          this.claimWanted = true;
          if (!this.stopping) this.log.error({ err: error }, 'could not claim webhook deliveries');
        }
        this.markUnsettled(claimed);
        this.slots.hold(claimed, claimStartedAt);
        // Until a claim finds nothing: more may be due than the bounds let one claim take. What a
        // host or tenant at its bound has due waits for a slot of its to free (freeSlot), not for
        // the next round: a receiver that hangs holds its host's slots for a whole timeout, and
        // every round meanwhile claimed, a scan of the outbox, for nothing.
        if (claimed.length > 0) this.claimWanted = true;
        // Skipped, a give-back being owed: claim once it is made.
        if (this.lostClaims.owed) this.claimWanted = true;
      }
      this.startWaiting();
      // Fewer than the free slots: every due delivery that the limits allow was taken, and
      // another can only be claimed once a slot frees or a change queues one (both wake this
      // loop) or a retry falls due (the poll). Claiming again at once would scan the outbox for
      // nothing: with 5,000 due to one tenant, a claim the tenant's limit left empty cost 30 ms.
      if ((free > 0 && claimed.length === free) || this.unrecorded.length > 0) continue;
      // Rounds that only record or start what they hold do not claim; the poll still comes on time.
      const untilPoll = free > 0 ? lastClaimAt + this.config.pollMs - performance.now() : this.config.pollMs;
      await this.signal.pause(Math.max(0, Math.min(this.config.pollMs, untilPoll)));
    }
  }

  accepting(): boolean {
    const accepting = !this.stopping && !this.lostClaims.owed && this.slots.free > 0;
    if (accepting) this.handoffsInFlight++;
    return accepting;
  }

  /** Gives back, once no other batch is unanswered, every delivery leased here that this dispatcher does not hold. */
  lost(): void {
    this.handoffAnswered();
    this.lostClaims.owe();
    this.signal.wake();
  }

  private handoffAnswered(): void {
    if (--this.handoffsInFlight === 0) this.handoffsAnswered?.();
  }

  /**
   * Holds what a batch of status changes handed over, as a claim's, within the bounds a claim
   * keeps to; gives back the rest (a batch carries up to 32, and may be all one host's).
   */
  take(handed: HandedDelivery[], queuedNothing: StatusEvent[], leasedSince: number): void {
    this.handoffAnswered();
    for (const { event } of handed) this.claimless.recent.add(changeKey(event));
    for (const event of queuedNothing) this.claimless.recent.add(changeKey(event));
    const deliveries = handed.map(toClaimedDelivery);
    const { held, beyond } = this.stopping ? { held: [], beyond: deliveries } : this.slots.holdWithin(deliveries, leasedSince);
    this.markUnsettled(held);
    this.giveBackLater(beyond);
    this.startWaiting();
    // Stopping, there are no more rounds to give them back in (stop() waits for this one). A
    // give-back owed waited for this batch's answer.
    if (this.stopping) this.givingBackAtStop = this.givingBackAtStop.then(() => this.giveBack());
    else if (this.toGiveBack.length > 0 || this.lostClaims.owed) this.signal.wake();
  }

  /** Claimed or handed over: each is this dispatcher's, under its lease, until its attempt is written. */
  private markUnsettled(deliveries: ClaimedDelivery[]): void {
    for (const delivery of deliveries) this.unsettled.set(delivery.id, delivery.lockedUntil.getTime());
  }

  /** Held here and not to be sent: given back to the outbox in the next round. */
  private giveBackLater(deliveries: ClaimedDelivery[]): void {
    for (const delivery of deliveries) this.unsettled.delete(delivery.id);
    this.toGiveBack.push(...deliveries);
  }

  /** Gives back to the outbox, for any dispatcher to claim, what this one will not send; what fails, the next round tries again. */
  private async giveBack(): Promise<void> {
    const deliveries = this.toGiveBack.splice(0);
    if (deliveries.length === 0) return;
    try {
      await releaseDeliveries(this.prisma, this.id, deliveries);
      this.claimWanted = true;
      // Another process may have the slots this one lacks; it heard of their changes while they
      // were leased here, and would otherwise claim them only at its poll.
      this.announceQueued();
    } catch (error) {
      this.toGiveBack.push(...deliveries);
      this.log.warn({ err: error, deliveries: deliveries.length }, 'could not give back webhook deliveries; they go out when their lease lapses, or at the next try');
    }
  }

  /**
   * Starts, in claim order, each waiting delivery that has a slot. One that waited so long that
   * its lease no longer outlives an attempt and its record is given back instead, to be claimed
   * again. (By this process's clock: the lease's end is the database's, which may be set apart.)
   */
  private startWaiting(): void {
    if (this.stopping) return;
    const { sending, overdue } = this.slots.start(performance.now(), this.leaseMs - this.config.timeoutMs - 1_000);
    this.giveBackLater(overdue);
    if (overdue.length > 0) this.signal.wake();
    for (const { delivery, sendBy } of sending) this.begin(delivery, sendBy);
  }

  /** Sends a delivery that has its slot, if its request can start by `sendBy` (performance.now()). */
  private begin(delivery: ClaimedDelivery, sendBy: number): void {
    const lease = delivery.lockedUntil.getTime();
    let slotHeld = true;
    // The slot is free once the request is over: a waiting delivery takes it at once; its record
    // follows in the next round.
    const freeSlot = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.slots.release(delivery);
      if (this.boundedAtClaim.hosts.has(delivery.host) || this.boundedAtClaim.tenants.has(delivery.tenantId)) this.claimWanted = true;
      this.startWaiting();
      this.signal.wake();
    };
    const send = this.deliver(delivery, sendBy, freeSlot)
      .catch((error: unknown) => this.log.error({ err: error, deliveryId: delivery.id }, 'could not record a webhook attempt'))
      .finally(() => {
        freeSlot();
        if (this.unsettled.get(delivery.id) === lease) this.unsettled.delete(delivery.id);
        this.sends.delete(send);
      });
    this.sends.add(send);
  }

  private async deliver(delivery: ClaimedDelivery, sendBy: number, freeSlot: () => void): Promise<void> {
    const secret = delivery.webhookSecret ?? (await ensureWebhookSecret(this.prisma, delivery.tenantId));
    const secrets = await this.signingSecrets.of({ ...delivery, webhookSecret: secret });
    const id = await this.webhookIds.of(delivery.eventId);
    if (this.abandoned) return;
    // The secrets' reads can stall with the database. Sent after its time, the request could
    // outlive the lease, and another dispatcher send it, and the file's next one, meanwhile.
    if (performance.now() > sendBy) {
      this.giveBackLater([delivery]);
      if (this.stopping) this.givingBackAtStop = this.givingBackAtStop.then(() => this.giveBack());
      else this.signal.wake();
      return;
    }
    const outcome = await this.sender.send({
      id,
      url: delivery.url,
      body: webhookPayload(delivery.eventType, delivery.event),
      secrets,
    });
    freeSlot();
    // The stop's grace ended during the request, and the stop closed its socket: no answer came,
    // and the delivery keeps its lease, to be sent again, rather than counting a failure of ours
    // against the receiver (on its last attempt, failing it for good).
    if (this.abandoned) return;
    this.observer.attempted(outcome);
    const resolution = resolveAttempt(outcome, delivery.attemptCount, this.config.retryScheduleMs);
    const { attemptedAt, durationMs, responseStatus, responseBody, error } = outcome;
    const result = { delivery, attempt: { attemptedAt, durationMs, responseStatus, responseBody, error }, resolution };
    // Written while the lease holds: after that the delivery may be another dispatcher's.
    await retryWrite(() => this.record(result), delivery.lockedUntil.getTime() - Date.now());
    if (resolution.state !== 'PENDING') this.observer.ended(resolution.state);
    if (resolution.state === 'FAILED') {
      const lastError = outcome.error ?? `HTTP ${outcome.responseStatus}`;
      this.log.error(
        { fileId: delivery.fileId, host: delivery.host, lastError, attempts: delivery.attemptCount, disabled: resolution.disableWebhook },
        'webhook delivery failed for good',
      );
    }
  }

  /**
   * Queues an attempt for the next round's batch write (at once while stopping, when there are no
   * more rounds); resolves once it is written.
   */
  private record(result: AttemptResult): Promise<void> {
    return new Promise((resolve, reject) => {
      this.unrecorded.push({ result, done: (error) => (error ? reject(error) : resolve()) });
      if (this.stopping) void this.writeAttempts();
    });
  }

  /**
   * Writes the queued attempts in one statement; one writer at a time. Those that finish meanwhile
   * wait for the next round: written as they came, a steady stream of attempts went one statement
   * each and kept the round from ever reaching its claim. Stopping, there is no next round.
   */
  private async writeAttempts(): Promise<void> {
    if (this.recording) return;
    this.recording = true;
    try {
      do {
        const batch = this.unrecorded.splice(0);
        if (batch.length === 0) break;
        const { unrecorded, laterWaiting } = await recordAttempts(this.prisma, this.id, batch.map((entry) => entry.result), this.log);
        if (laterWaiting) this.claimWanted = true;
        batch.forEach((entry) => entry.done(unrecorded.get(entry.result)));
      } while (this.stopping);
    } finally {
      this.recording = false;
    }
  }

  /**
   * Stops claiming and gives the attempts in flight, and the batches of status changes not yet
   * answered, `graceMs` to finish. An attempt still running then keeps its lease, and is sent
   * again (same webhook-id) by whoever claims it next.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    void this.writeAttempts();
    // Those still waiting for a slot go back to the outbox now, not when their lease lapses.
    this.giveBackLater(this.slots.drainWaiting());
    await this.giveBack();
    const answered = this.handoffsInFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.handoffsAnswered = resolve));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.sends, answered]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.abandoned = true;
    await this.givingBackAtStop;
    // A batch whose answer was lost may have handed deliveries over. With no rounds left to give
    // them back in, it is now, or they would wait out their lease. (One still unanswered after
    // the grace leaves what it handed to its lease.)
    if (this.handoffsInFlight === 0) await this.lostClaims.settle();
  }
}

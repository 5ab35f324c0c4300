import { Gauge, type Registry } from 'prom-client';
import type { PrismaClient } from '../db/database.js';
import type { Logger } from '../log.js';
import { readQueueBacklog } from '../queue/job-sql.js';
import { readOutboxBacklog } from '../webhooks/delivery-sql.js';

/**
 * How long a scrape waits for the database. Prometheus gives up on a scrape after 10 s by
 * default, and the counters of this process should still reach it when the database hangs.
 */
const READ_TIMEOUT_MS = 3_000;

class BacklogReadTimeout extends Error {}

/**
 * One read of the database per scrape, however many gauges ask for it; null when it failed or
 * took longer than READ_TIMEOUT_MS (a warning in the log says which). A read that timed out is
 * still the one later scrapes wait on, until it ends: against a stalled database each scrape
 * would otherwise add a query to those already waiting.
 */
function oncePerScrape<T>(source: string, read: () => Promise<T>, log: Logger): () => Promise<T | null> {
  let running: Promise<T> | undefined;
  let scrape: Promise<T | null> | undefined;
  const readWithin = async (): Promise<T | null> => {
    running ??= read().finally(() => (running = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new BacklogReadTimeout(`no answer within ${READ_TIMEOUT_MS} ms`)), READ_TIMEOUT_MS);
    });
    try {
      return await Promise.race([running, timeout]);
    } catch (error) {
      log.warn({ err: error, source }, 'could not read a backlog for the metrics; the scrape leaves its gauges out');
      return null;
    } finally {
      clearTimeout(timer);
    }
  };
  return () => (scrape ??= readWithin().finally(() => (scrape = undefined)));
}

type BacklogRead<T> = () => Promise<T | null>;

/** A backlog's counts by state; no samples when the read failed. */
function countsByState<T>(registry: Registry, name: string, help: string, read: BacklogRead<T>, counts: (backlog: T) => Record<string, number>) {
  new Gauge({
    name,
    help,
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const backlog = await read();
      this.reset();
      if (!backlog) return;
      for (const [state, count] of Object.entries(counts(backlog))) this.set({ state }, count);
    },
  });
}

/** How long a backlog's longest-waiting entry has waited; no sample when the read failed. */
function oldestAge<T>(registry: Registry, name: string, help: string, read: BacklogRead<T>, age: (backlog: T) => number) {
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      const backlog = await read();
      if (backlog) this.set(age(backlog));
      else this.remove();
    },
  });
}

/**
 * The webhook outbox's and the job queue's backlogs, read from the database at each scrape: the
 * same in every process, and right after a restart. A source the database did not answer for has
 * no samples in that scrape (not zeros, which would read as "no backlog"), and
 * filestatus_backlog_read_ok says so.
 */
export function backlogGauges(registry: Registry, prisma: PrismaClient, log: Logger): void {
  const outbox = oncePerScrape('webhook_delivery', () => readOutboxBacklog(prisma), log);
  const queue = oncePerScrape('job', () => readQueueBacklog(prisma), log);

  countsByState(
    registry,
    'filestatus_webhook_deliveries_open',
    'Webhook deliveries not yet settled, in the database (all processes): due (waiting for a claim), scheduled (a retry later), sending (leased to a dispatcher).',
    outbox,
    ({ due, scheduled, sending }) => ({ due, scheduled, sending }),
  );
  oldestAge(
    registry,
    'filestatus_webhook_oldest_due_age_seconds',
    'How long the longest-waiting due webhook delivery has been due, in the database (all processes); 0 when none is.',
    outbox,
    (backlog) => backlog.oldestDueSeconds,
  );
  countsByState(
    registry,
    'filestatus_jobs',
    'Jobs in the queue, in the database (all processes): ready (due, waiting for a worker), scheduled (a retry later), running (leased to a live worker).',
    queue,
    ({ ready, scheduled, running }) => ({ ready, scheduled, running }),
  );
  oldestAge(
    registry,
    'filestatus_job_oldest_ready_age_seconds',
    'How long the longest-waiting ready job has been due, in the database (all processes); 0 when none is.',
    queue,
    (backlog) => backlog.oldestReadySeconds,
  );
  new Gauge({
    name: 'filestatus_backlog_read_ok',
    help: 'Whether this scrape read the backlog gauges from the database (1) or not (0: failed or timed out, gauges left out), by table.',
    labelNames: ['table'],
    registers: [registry],
    async collect() {
      const [outboxBacklog, queueBacklog] = await Promise.all([outbox(), queue()]);
      this.set({ table: 'webhook_delivery' }, outboxBacklog ? 1 : 0);
      this.set({ table: 'job' }, queueBacklog ? 1 : 0);
    },
  });
}

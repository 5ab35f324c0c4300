import http from 'node:http';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService, type RunningService } from '../src/service.js';
import { signWebhook, generateWebhookSecret } from '../src/webhooks/sign-webhook.js';
import { createTestDatabase } from '../test/helpers/test-database.js';
import { printComparison, type ResultRow } from './report.js';
import { makeTempDir, removeTempDir, spawnServer } from './server.js';
import type { Receipt } from './webhook-receivers.js';
import { formatNumber, ratio, summarizeLatencies } from './stats.js';

export interface WebhookBenchOptions {
  events: number;
  receivers: number;
  /** Files whose webhooks point at the receiver that never answers, in the second run. */
  hangingFiles: number;
  /** Status changes recorded at once, as that many workers would (the service runs 2 by default). */
  producers: number;
  /** A PostgreSQL server to run on (a fresh database each run) instead of the embedded default. */
  databaseUrl: string | undefined;
  /** Deliveries all due at once, as receivers that come back after an outage find them. */
  backlog: number;
}

/** The receivers' process (bench/webhook-receivers.ts): their addresses, and the receipts so far. */
interface Receivers {
  urls: string[];
  /** The receipts since the last take. */
  take(): Promise<Receipt[]>;
  close(): Promise<void>;
}

/** `count` loopback receivers that answer 204 (or, `hang`, never) and note each request's delay since `clock` says it was sent. */
async function startReceivers(count: number, clock: 'timestamp' | 'sentAt' | 'none', hang = false): Promise<Receivers> {
  const server = await spawnServer({
    name: 'webhook receivers',
    entry: 'bench/webhook-receivers.ts',
    env: { RECEIVERS: String(count), CLOCK: clock, HANG: String(hang) },
  });
  const announced = server.logLines.find((line) => line.msg === 'listening');
  return {
    urls: announced?.urls as string[],
    async take() {
      const response = await fetch(`http://127.0.0.1:${server.port}/receipts`);
      return (await response.json()) as Receipt[];
    },
    close: () => server.stop(),
  };
}

/** Baseline: the same number of signed POSTs, 64 at a time, with no database and no outbox. */
async function bareSender(options: WebhookBenchOptions) {
  const receivers = await startReceivers(options.receivers, 'sentAt');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const secret = generateWebhookSecret();
  const started = Date.now();
  let next = 0;
  const post = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ type: 'file.processing', sentAt: Date.now(), data: { sequence: index } });
      const id = `evt_${index}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const req = http.request(receivers.urls[index % receivers.urls.length], {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': timestamp,
          'webhook-signature': signWebhook([secret], id, timestamp, body),
        },
        timeout: 15_000,
      });
      req.on('response', (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < options.events) await post(next++);
    }),
  );
  const elapsed = (Date.now() - started) / 1000;
  agent.destroy();
  const receipts = await receivers.take();
  await receivers.close();
  return { perSecond: receipts.length / elapsed, latency: summarizeLatencies(receipts.map((r) => r.latencyMs)) };
}

/** Creates a file the way an upload does: its row, and its first status in the same transaction. */
async function createFile(service: RunningService, tenantId: string, webhookUrl: string | null): Promise<string> {
  const { prisma, status } = service.services;
  const recorded = await prisma.$transaction(async (tx) => {
    const file = await tx.file.create({
      data: {
        tenantId,
        filename: 'bench.txt',
        mimeType: 'text/plain',
        size: 1n,
        sha256: '0'.repeat(64),
        webhookUrl,
        webhookEvents: ['file.processing', 'file.completed', 'file.failed'],
      },
    });
    return status.recordQueued(tx, file, {});
  });
  status.publish(recorded);
  return recorded.fileId;
}

interface BenchService {
  service: RunningService;
  tenantId: string;
  close(): Promise<void>;
}

/** The service in this process, on the embedded database or a fresh PostgreSQL one, with a tenant. */
async function startBenchService(options: WebhookBenchOptions): Promise<BenchService> {
  const dataDir = makeTempDir('filestatus-bench-webhooks-');
  const database = await createTestDatabase(options.databaseUrl);
  const service = await startService(
    loadConfig({
      DATA_DIR: dataDir,
      ...(database.url ? { DATABASE_URL: database.url } : {}),
      PORT: '0',
      HOST: '127.0.0.1',
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    }),
    createLogger('silent'),
  );
  const tenantId = (await service.db.prisma.tenant.create({ data: { name: 'bench' } })).id;
  return {
    service,
    tenantId,
    async close() {
      await service.stop();
      removeTempDir(dataDir);
      await database.drop();
    },
  };
}

/**
 * Records `steps` status changes of each file through the status module, round-robin over the
 * files, `producers` at a time; the last one of each file COMPLETED. Returns the seconds it took.
 */
async function recordChanges(service: RunningService, files: string[], steps: number, producers: number): Promise<number> {
  const started = Date.now();
  const changes = Array.from({ length: steps }, (_, step) => files.map((fileId) => ({ fileId, step: step + 1 }))).flat();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      for (let change = changes.shift(); change; change = changes.shift()) {
        const last = change.step === steps;
        await service.services.status.record({
          fileId: change.fileId,
          status: last ? 'COMPLETED' : 'PROCESSING',
          stage: last ? 'DONE' : 'CONVERTING',
          progress: last ? 100 : change.step,
        });
      }
    }),
  );
  return (Date.now() - started) / 1000;
}

/**
 * The ceiling: the same status changes on the same database, with no webhook at all. Every
 * delivery costs one status change first, so no outbox can deliver faster than this.
 */
async function statusOnlyRun(options: WebhookBenchOptions) {
  const bench = await startBenchService(options);
  try {
    const files = await Promise.all(Array.from({ length: options.receivers }, () => createFile(bench.service, bench.tenantId, null)));
    const steps = Math.ceil(options.events / options.receivers) - 1;
    const seconds = await recordChanges(bench.service, files, steps, options.producers);
    return { perSecond: (files.length * steps) / seconds };
  } finally {
    await bench.close();
  }
}

/**
 * Ours: the service in this process on the embedded database, with `events` status changes
 * recorded through its status module (the first of each file at creation, the last COMPLETED),
 * each one fanned out to its file's receiver through the outbox and the dispatcher.
 */
async function outboxRun(options: WebhookBenchOptions, withHangingReceiver: boolean) {
  const bench = await startBenchService(options);
  const { service, tenantId } = bench;
  const receivers = await startReceivers(options.receivers, 'timestamp');
  const hanging = withHangingReceiver ? await startReceivers(1, 'none', true) : null;
  try {
    const steps = Math.ceil(options.events / options.receivers) - 1;
    const files = await Promise.all(receivers.urls.map((url) => createFile(service, tenantId, url)));
    const hangingFiles = hanging
      ? await Promise.all(Array.from({ length: options.hangingFiles }, () => createFile(service, tenantId, hanging.urls[0])))
      : [];
    // Done when every healthy delivery is settled; the hanging receiver's may still be in flight.
    const settled = async (deadline: number) => {
      for (;;) {
        const open = await service.db.prisma.webhookDelivery.count({ where: { fileId: { in: files }, state: { in: ['PENDING', 'SENDING'] } } });
        if (open === 0) return;
        if (Date.now() > deadline) throw new Error('webhook deliveries did not settle in time');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    // Warm-up: the files' first status goes out before the clock starts, so that the figures are
    // the steady state's, not the start's (connections, JIT, the tenant's first secret).
    await settled(Date.now() + 60_000);
    await receivers.take();
    const started = Date.now();

    const produceSeconds = await recordChanges(service, [...files, ...hangingFiles], steps, options.producers);
    await settled(Date.now() + 120_000);
    const states = await service.db.prisma.webhookDelivery.groupBy({ by: ['state'], where: { fileId: { in: files } }, _count: true });
    const count = (state: string) => states.find((row) => row.state === state)?._count ?? 0;
    const receipts = await receivers.take();
    const lastReceipt = Math.max(...receipts.map((r) => r.at));
    return {
      events: files.length * steps,
      produceSeconds,
      delivered: count('DELIVERED'),
      superseded: count('DISCARDED'),
      failed: count('FAILED'),
      perSecond: receipts.length / ((lastReceipt - started) / 1000),
      latency: summarizeLatencies(receipts.map((r) => r.latencyMs)),
    };
  } finally {
    await bench.close();
    await Promise.all([receivers.close(), hanging?.close()]);
  }
}

/**
 * The outbox after an outage: `backlog` deliveries, one per file, spread over the receivers, all
 * falling due at the same moment, and no status change meanwhile. Only the dispatcher works:
 * deliveries/s from that moment to the last receipt.
 */
async function backlogRun(options: WebhookBenchOptions) {
  const bench = await startBenchService(options);
  const { prisma } = bench.service.db;
  const receivers = await startReceivers(options.receivers, 'none');
  try {
    // Files without a webhook of their own, so that their first status queues nothing; their
    // deliveries are written as the outbox holds them, due a second from now.
    // Eight at a time: on PostgreSQL, thousands of transactions at once would wait for the pool past Prisma's limit.
    const files: string[] = [];
    let started = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (started++ < options.backlog) files.push(await createFile(bench.service, bench.tenantId, null));
      }),
    );
    const urls = files.map((_, index) => receivers.urls[index % receivers.urls.length]);
    const [{ dueAt }] = await prisma.$queryRaw<{ dueAt: Date }[]>`
      WITH queued AS (
        INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, state, next_attempt_at)
        SELECT gen_random_uuid(), e.tenant_id, e.file_id, e.id, e.sequence, 'file.processing', t.url,
               substring(t.url from '^[a-z]+://([^/?#]+)'), 'PENDING', now() + interval '1 second'
        FROM unnest(${files}::uuid[], ${urls}::text[]) AS t(file_id, url) JOIN file_status_event e USING (file_id)
        RETURNING next_attempt_at)
      SELECT max(next_attempt_at) AS "dueAt" FROM queued`;
    const deadline = Date.now() + 120_000;
    const receipts: Receipt[] = [];
    while (receipts.length < options.backlog) {
      if (Date.now() > deadline) throw new Error(`the backlog did not drain in time: ${receipts.length} of ${options.backlog} received`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      receipts.push(...(await receivers.take()));
    }
    const seconds = (Math.max(...receipts.map((r) => r.at)) - dueAt.getTime()) / 1000;
    return { perSecond: receipts.length / seconds, seconds };
  } finally {
    await bench.close();
    await receivers.close();
  }
}

export async function benchWebhooks(options: WebhookBenchOptions): Promise<ResultRow[]> {
  console.log(
    `\n## webhooks: ${options.events} status events over ${options.receivers} loopback receivers, ${options.producers} recorded at a time, ` +
      (options.databaseUrl ? 'on PostgreSQL' : 'on the embedded database'),
  );
  const baseline = await bareSender(options);
  const ceiling = await statusOnlyRun(options);
  const healthy = await outboxRun(options, false);
  const withHanging = await outboxRun(options, true);
  const backlog = await backlogRun(options);
  const ms = (value: number) => `${formatNumber(value, 1)} ms`;
  for (const [label, run] of [
    ['healthy receivers', healthy],
    ['plus one that never answers', withHanging],
  ] as const) {
    console.log(
      `  ${label}: ${run.events} events committed in ${formatNumber(run.produceSeconds, 1)} s; ` +
        `${run.delivered} delivered, ${run.superseded} superseded, ${run.failed} failed`,
    );
    printComparison(`${label}: deliveries/s`, formatNumber(run.perSecond), formatNumber(baseline.perSecond), ratio(run.perSecond, baseline.perSecond));
    printComparison(`${label}: p50 commit→receipt`, ms(run.latency.p50), ms(baseline.latency.p50), null);
    printComparison(`${label}: p99 commit→receipt`, ms(run.latency.p99), ms(baseline.latency.p99), null);
  }
  printComparison(
    'deliveries/s ÷ changes/s, no webhook',
    formatNumber(healthy.perSecond),
    formatNumber(ceiling.perSecond),
    ratio(healthy.perSecond, ceiling.perSecond),
  );
  const p99Ratio = withHanging.latency.p99 / healthy.latency.p99;
  console.log(`  healthy p99 with a hanging receiver ÷ without: ${formatNumber(p99Ratio, 2)}`);
  console.log(`  backlog: ${options.backlog} due at once, drained in ${formatNumber(backlog.seconds, 1)} s`);
  printComparison('backlog drain: deliveries/s', formatNumber(backlog.perSecond), formatNumber(baseline.perSecond), ratio(backlog.perSecond, baseline.perSecond));
  return [
    {
      benchmark: 'webhooks',
      metric: 'deliveries/s',
      unit: '/s',
      ours: healthy.perSecond,
      baseline: baseline.perSecond,
      ratio: ratio(healthy.perSecond, baseline.perSecond),
      goal: '≥ 2,000/s',
      met: healthy.perSecond >= 2000,
    },
    {
      benchmark: 'webhooks',
      metric: 'deliveries/s against status changes/s with no webhook (the ceiling)',
      unit: '/s',
      ours: healthy.perSecond,
      baseline: ceiling.perSecond,
      ratio: ratio(healthy.perSecond, ceiling.perSecond),
      goal: '',
      met: null,
    },
    { benchmark: 'webhooks', metric: 'p50 commit→receipt', unit: 'ms', ours: healthy.latency.p50, baseline: baseline.latency.p50, ratio: null, goal: '', met: null, digits: 1 },
    { benchmark: 'webhooks', metric: 'p99 commit→receipt', unit: 'ms', ours: healthy.latency.p99, baseline: baseline.latency.p99, ratio: null, goal: '≤ 50 ms', met: healthy.latency.p99 <= 50, digits: 1 },
    {
      benchmark: 'webhooks',
      metric: `backlog of ${options.backlog} due at once: deliveries/s`,
      unit: '/s',
      ours: backlog.perSecond,
      baseline: baseline.perSecond,
      ratio: ratio(backlog.perSecond, baseline.perSecond),
      goal: '',
      met: null,
    },
    {
      benchmark: 'webhooks',
      metric: 'p99 with a hanging receiver',
      unit: 'ms',
      ours: withHanging.latency.p99,
      baseline: healthy.latency.p99,
      ratio: p99Ratio,
      goal: '≤ 1.5 × without',
      met: p99Ratio <= 1.5,
      digits: 1,
    },
  ];
}

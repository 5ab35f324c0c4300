import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, scrape, type Scrape } from '../helpers/metrics-scrape.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let metricsPort: number;
let tenantId: string;

// The worker and the dispatcher claim once at start, then only at their poll, an hour away, or
// when woken: the rows this file writes with SQL wake nothing, so they stay as written.
beforeAll(async () => {
  server = await startTestServer({ METRICS_PORT: String(await freePort()), WEBHOOK_POLL_MS: '3600000', JOB_POLL_MS: '3600000' });
  metricsPort = server.service.metricsPort!;
  tenantId = (await server.service.db.prisma.tenant.create({ data: { name: 'backlog' } })).id;
});
afterEach(async () => {
  const { prisma } = server.service.db;
  await prisma.$executeRaw`DELETE FROM job`;
  await prisma.$executeRaw`DELETE FROM file`;
});
afterAll(() => server.stop());

const jobs = (metrics: Scrape, state: string) => metrics.value('filestatus_jobs', { state });
const deliveries = (metrics: Scrape, state: string) => metrics.value('filestatus_webhook_deliveries_open', { state });

/** `count` jobs in the queue, as `run_at` and the lease say, the first due at `runAt`. */
async function addJobs(count: number, runAt: string, lockedUntil: string | null = null) {
  await server.service.db.prisma.$executeRawUnsafe(
    `INSERT INTO job (task, payload, key, max_attempts, run_at, locked_by, locked_until)
     SELECT 'process-file', '{}'::jsonb, gen_random_uuid()::text, 5, ${runAt} + g * interval '1 ms',
            ${lockedUntil === null ? 'NULL' : "'worker-elsewhere'"}, ${lockedUntil ?? 'NULL'}
     FROM generate_series(0, $1 - 1) g`,
    count,
  );
}

/** `count` deliveries of one file in `state`, the first due at `nextAttemptAt`. */
async function addDeliveries(count: number, state: string, nextAttemptAt: string | null, lockedUntil: string | null = null) {
  const { prisma } = server.service.db;
  const [file] = await prisma.$queryRaw<{ id: string }[]>`
    INSERT INTO file (id, tenant_id, filename, mime_type, size, sha256, webhook_url, webhook_events)
    VALUES (gen_random_uuid(), ${tenantId}::uuid, 'f', 'text/plain', 1, 'x', 'https://receiver.example/hook', ARRAY['file.processing'])
    RETURNING id::text`;
  await prisma.$executeRawUnsafe(
    `INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, state, next_attempt_at, locked_by, locked_until)
     SELECT gen_random_uuid(), $1::uuid, $2::uuid, g, g, 'file.processing', 'https://receiver.example/hook', 'receiver.example', $3,
            ${nextAttemptAt === null ? 'NULL' : `${nextAttemptAt} + g * interval '1 ms'`},
            ${lockedUntil === null ? 'NULL' : "'dispatcher-elsewhere'"}, ${lockedUntil ?? 'NULL'}
     FROM generate_series(1, $4) g`,
    tenantId,
    file.id,
    state,
    count,
  );
}

describe('the job queue', () => {
  it('counts jobs ready, scheduled and running, and how long the oldest ready one has waited', async () => {
    await addJobs(3, "now() - interval '90 seconds'");
    await addJobs(2, "now() + interval '1 hour'");
    await addJobs(1, "now() - interval '1 minute'", "now() + interval '1 hour'");
    // A lease that lapsed: its worker died, and the job is ready for another.
    await addJobs(1, "now() - interval '30 seconds'", "now() - interval '1 second'");
    const metrics = await scrape(metricsPort);
    expect(jobs(metrics, 'ready')).toBe(4);
    expect(jobs(metrics, 'scheduled')).toBe(2);
    expect(jobs(metrics, 'running')).toBe(1);
    expect(metrics.value('filestatus_job_oldest_ready_age_seconds')).toBeGreaterThanOrEqual(90);
    expect(metrics.value('filestatus_job_oldest_ready_age_seconds')).toBeLessThan(120);
  });

  it('reads 0 and an age of 0 when the queue is empty', async () => {
    const metrics = await scrape(metricsPort);
    expect(['ready', 'scheduled', 'running'].map((state) => jobs(metrics, state))).toEqual([0, 0, 0]);
    expect(metrics.value('filestatus_job_oldest_ready_age_seconds')).toBe(0);
  });
});

describe('the webhook outbox', () => {
  it('counts open deliveries by state from the database, the settled ones left out', async () => {
    await addDeliveries(5, 'PENDING', "now() - interval '2 minutes'");
    await addDeliveries(4, 'PENDING', "now() + interval '5 minutes'");
    await addDeliveries(3, 'SENDING', "now() - interval '1 minute'", "now() + interval '1 hour'");
    await addDeliveries(20, 'DELIVERED', null);
    await addDeliveries(2, 'FAILED', null);
    const metrics = await scrape(metricsPort);
    expect(deliveries(metrics, 'due')).toBe(5);
    expect(deliveries(metrics, 'scheduled')).toBe(4);
    expect(deliveries(metrics, 'sending')).toBe(3);
    expect(metrics.value('filestatus_webhook_oldest_due_age_seconds')).toBeGreaterThanOrEqual(119);
    expect(metrics.value('filestatus_webhook_oldest_due_age_seconds')).toBeLessThan(150);
  });

  it('is scraped in milliseconds with 50,000 deliveries due and 50,000 settled', async () => {
    await addDeliveries(50_000, 'PENDING', "now() - interval '10 minutes'");
    await addDeliveries(50_000, 'DELIVERED', null);
    await addJobs(1_000, "now() - interval '1 minute'");
    const times: number[] = [];
    let metrics: Scrape | undefined;
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      metrics = await scrape(metricsPort);
      times.push(performance.now() - started);
    }
    expect(deliveries(metrics!, 'due')).toBe(50_000);
    expect(metrics!.value('filestatus_webhook_oldest_due_age_seconds')).toBeGreaterThanOrEqual(599);
    const median = times.sort((a, b) => a - b)[2];
    console.log(`scrape with 50,000 due: median ${median.toFixed(1)} ms of ${times.map((ms) => ms.toFixed(1)).join(', ')}`);
    // Measured on the embedded database (2 shared cores): see README, Metrics. The bound is loose
    // for a busy machine; a plan that read the whole log would take seconds.
    expect(median).toBeLessThan(1_000);
  }, 120_000);
});

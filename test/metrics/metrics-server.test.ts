import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, scrape } from '../helpers/metrics-scrape.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let metricsPort: number;

beforeAll(async () => {
  server = await startTestServer({ METRICS_PORT: String(await freePort()) });
  metricsPort = server.service.metricsPort!;
});
afterAll(() => server.stop());

const metricsUrl = (path: string) => `http://127.0.0.1:${metricsPort}${path}`;

describe('the metrics listener', () => {
  it('answers GET /metrics in Prometheus text format', async () => {
    const response = await fetch(metricsUrl('/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await response.text()).toMatch(/^# HELP filestatus_/m);
  });

  it('answers GET /metrics with a query string too', async () => {
    expect((await fetch(metricsUrl('/metrics?name[]=x'))).status).toBe(200);
  });

  it.each(['/', '/metrics/', '/graphql', '/healthz', '/api/file/status'])('answers 404 on %s', async (path) => {
    expect((await fetch(metricsUrl(path))).status).toBe(404);
  });

  it.each(['POST', 'PUT', 'DELETE'])('answers %s /metrics with 405, allowing GET', async (method) => {
    const response = await fetch(metricsUrl('/metrics'), { method });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
  });

  it('is not on the API port', async () => {
    expect(metricsPort).not.toBe(server.service.port);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('filestatus_');
  });

  it("carries prom-client's process metrics under the service's prefix", async () => {
    const metrics = await scrape(metricsPort);
    for (const name of ['filestatus_nodejs_eventloop_lag_p99_seconds', 'filestatus_nodejs_heap_size_used_bytes', 'filestatus_process_cpu_seconds_total']) {
      expect(metrics.value(name), name).toBeGreaterThanOrEqual(0);
    }
  });

  it('answers what it can when the database does not, leaving out the gauges it could not read', async () => {
    const { prisma } = server.service.db;
    await prisma.$executeRawUnsafe('ALTER TABLE job RENAME TO job_hidden');
    let metrics;
    try {
      metrics = await scrape(metricsPort);
    } finally {
      await prisma.$executeRawUnsafe('ALTER TABLE job_hidden RENAME TO job');
    }
    expect(metrics.value('filestatus_backlog_read_ok', { table: 'job' })).toBe(0);
    expect(metrics.value('filestatus_jobs', { state: 'ready' })).toBeUndefined();
    expect(metrics.value('filestatus_job_oldest_ready_age_seconds')).toBeUndefined();
    expect(metrics.value('filestatus_backlog_read_ok', { table: 'webhook_delivery' })).toBe(1);
    expect(metrics.value('filestatus_webhook_oldest_due_age_seconds')).toBe(0);
    expect(metrics.value('filestatus_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    const again = await scrape(metricsPort);
    expect(again.value('filestatus_backlog_read_ok', { table: 'job' })).toBe(1);
    expect(again.value('filestatus_jobs', { state: 'ready' })).toBe(0);
  });

  it('leaves a stalled read to end on its own: later scrapes wait on it rather than add to it', async () => {
    const { prisma, kind } = server.service.db;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockHeld = new Promise<void>((resolve) => (locked = resolve));
    // An ALTER or a REINDEX holding the job table: the backlog read waits for as long as it does.
    const holding = prisma.$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe('LOCK TABLE job IN ACCESS EXCLUSIVE MODE');
        locked();
        await released;
      },
      { timeout: 30_000, maxWait: 30_000 },
    );
    await lockHeld;
    try {
      for (let scrapeNumber = 0; scrapeNumber < 2; scrapeNumber++) {
        const started = performance.now();
        const metrics = await scrape(metricsPort);
        expect(performance.now() - started).toBeLessThan(6_000);
        expect(metrics.value('filestatus_backlog_read_ok', { table: 'job' })).toBe(0);
        expect(metrics.value('filestatus_jobs', { state: 'ready' })).toBeUndefined();
      }
      if (kind === 'postgres') {
        // A server shows what waits: one backlog read of the job table, not one per scrape.
        const [{ waiting }] = await prisma.$queryRaw<{ waiting: number }[]>`
          SELECT count(*)::int AS waiting FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%AS leased FROM job%'`;
        expect(waiting).toBe(1);
      }
    } finally {
      release();
      await holding;
    }
    await expect.poll(async () => (await scrape(metricsPort)).value('filestatus_backlog_read_ok', { table: 'job' }), { timeout: 10_000 }).toBe(1);
  }, 30_000);
});

describe('without METRICS_PORT', () => {
  it('opens no metrics listener', async () => {
    const plain = await startTestServer();
    try {
      expect(plain.service.metricsPort).toBeNull();
      expect((await fetch(`${plain.url}/metrics`)).status).toBe(404);
    } finally {
      await plain.stop();
    }
  });
});

describe('stop()', () => {
  it('closes the metrics listener, a keep-alive connection to it included', async () => {
    const port = await freePort();
    const stopped = await startTestServer({ METRICS_PORT: String(port) });
    await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await stopped.stop();
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});

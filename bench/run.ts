// `npm run bench [-- upload status subscriptions webhooks]`: each benchmark beside a baseline measured in the same run.
import { markdownSummary, machineDescription, type ResultRow } from './report.js';
import { cleanUpSync } from './server.js';
import { benchStatusReads } from './status-reads.js';
import { benchSubscriptions } from './subscriptions.js';
import { benchUpload } from './upload.js';
import { benchWebhooks } from './webhooks.js';

function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

const benchmarks: Record<string, () => Promise<ResultRow[]>> = {
  upload: () =>
    benchUpload({ bytes: Math.round(setting('BENCH_UPLOAD_MIB', 1024) * 1024 * 1024), rounds: setting('BENCH_UPLOAD_ROUNDS', 5) }),
  status: () =>
    benchStatusReads({
      connections: setting('BENCH_CONNECTIONS', 50),
      warmupMs: setting('BENCH_WARMUP_S', 1) * 1000,
      durationMs: setting('BENCH_DURATION_S', 5) * 1000,
    }),
  // Eight uploads in flight outpace the two default workers, so that most subscriptions are open at once.
  subscriptions: () => benchSubscriptions({ subscribers: setting('BENCH_SUBSCRIBERS', 500), uploadConcurrency: 8 }),
  webhooks: () =>
    benchWebhooks({
      events: setting('BENCH_WEBHOOK_EVENTS', 10_000),
      receivers: setting('BENCH_WEBHOOK_RECEIVERS', 100),
      hangingFiles: 10,
      producers: setting('BENCH_WEBHOOK_PRODUCERS', 2),
      databaseUrl: process.env.BENCH_DATABASE_URL,
      backlog: setting('BENCH_WEBHOOK_BACKLOG', 5_000),
    }),
};

process.on('exit', cleanUpSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the servers`);
    process.exit(130);
  });
}
// The whole run is bounded, whatever hangs.
const deadlineSeconds = setting('BENCH_TIMEOUT_S', 1800);
setTimeout(() => {
  console.error(`\nThe bench did not finish within ${deadlineSeconds} s: stopping the servers`);
  process.exit(1);
}, deadlineSeconds * 1000).unref();

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(name in benchmarks));
if (unknown.length) {
  console.error(`Unknown benchmark(s): ${unknown.join(', ')}. Choose from: ${Object.keys(benchmarks).join(', ')}.`);
  process.exit(2);
}
const selected = requested.length ? requested : Object.keys(benchmarks);
const startedAt = new Date();
console.log(`# filestatus benchmarks\n${startedAt.toISOString()}\n${machineDescription()}`);

const rows: ResultRow[] = [];
const failures: string[] = [];
for (const name of selected) {
  try {
    rows.push(...(await benchmarks[name]()));
  } catch (error) {
    failures.push(`${name}: ${(error as Error).stack ?? error}`);
    console.error(`\n${name} failed: ${(error as Error).message}`);
  }
}

const overrides = Object.entries(process.env)
  .filter(([name]) => name.startsWith('BENCH_'))
  .map(([name, value]) => `${name}=${value}`);
const command = [...overrides, 'npm run bench', ...(requested.length ? ['--', ...requested] : [])].join(' ');
console.log(`\n${markdownSummary(rows, command, startedAt)}`);
if (failures.length) {
  console.error(`\n${failures.length} benchmark(s) failed:\n${failures.join('\n\n')}`);
  process.exit(1);
}
process.exit(0);

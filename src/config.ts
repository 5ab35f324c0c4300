import path from 'node:path';
import ipaddr from 'ipaddr.js';

export type Role = 'api' | 'worker' | 'all';

/** Every setting of the service. This module is the only reader of process.env. */
export interface Config {
  port: number;
  host: string;
  role: Role;
  /** Embedded database, blobs and in-flight uploads live here. */
  dataDir: string;
  /** A PostgreSQL URL; unset means the embedded PGlite database under dataDir. */
  databaseUrl: string | undefined;
  maxUploadBytes: number;
  /** Sniffed MIME types the pipeline accepts; `type/*` matches a whole family. */
  allowedTypes: string[];
  workerConcurrency: number;
  jobLeaseMs: number;
  jobMaxAttempts: number;
  /** First retry delay of a failed job; each later one doubles it. */
  jobRetryBaseMs: number;
  jobPollMs: number;
  /** How long a verified API key is trusted before it is checked again: a revoked key, and the streams it opened, stop within it. */
  apiKeyTrustMs: number;
  /** Embedded database only: how often its hot tables are vacuumed (PGlite has no autovacuum). */
  embeddedVacuumIntervalMs: number;
  /** How long a recorded status change is kept, unless a delivery in the log names it; 0 keeps it forever. */
  statusEventRetentionMs: number;
  logLevel: string;
  /** Operators' metrics, on a listener of their own: never on the public API port. */
  metrics: MetricsConfig;
  webhooks: WebhookConfig;
}

export interface MetricsConfig {
  /** Port of the Prometheus listener (`GET /metrics`); null: no listener, no metrics. @default null */
  port: number | null;
  /** Address of that listener. @default 127.0.0.1 */
  host: string;
}

export interface WebhookConfig {
  /** Plain http receivers; https only unless set. */
  allowHttp: boolean;
  /** Ranges opened despite the SSRF guard, for development and tests (e.g. 127.0.0.0/8). */
  allowedCidrs: string[];
  /** Delay before each attempt, the first included; its length is the number of attempts. */
  retryScheduleMs: number[];
  timeoutMs: number;
  connectTimeoutMs: number;
  concurrency: number;
  concurrencyPerHost: number;
  /** Bounds one tenant whatever its hosts: a host is a URL's host[:port], which a tenant can vary at will. */
  concurrencyPerTenant: number;
  pollMs: number;
  /** How long the delivery log keeps a settled delivery, from its event; 0 keeps it forever. */
  logRetentionMs: number;
}

export class ConfigError extends Error {}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `0,5s,5m,30m,2h,30d` → milliseconds; a bare number is milliseconds. */
export function parseDurations(name: string, raw: string): number[] {
  const values = raw.split(',').map((part) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(part);
    if (!match) throw new ConfigError(`${name}: "${part.trim()}" is not a duration like 500ms, 5s, 5m, 2h or 30d`);
    return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']);
  });
  if (values.length === 0) throw new ConfigError(`${name} needs at least one duration`);
  return values;
}

/**
 * The webhook retry schedule: a delay before each attempt. A status change's delivery goes out as
 * it is committed, so the first delay can only be 0; any other would be silently ignored.
 */
function retrySchedule(raw: string): number[] {
  const schedule = parseDurations('WEBHOOK_RETRY_SCHEDULE', raw);
  if (schedule[0] !== 0) {
    throw new ConfigError(`WEBHOOK_RETRY_SCHEDULE: the first attempt goes out at once, so the schedule starts with 0 (got "${raw.split(',')[0].trim()}")`);
  }
  return schedule;
}

const DEFAULT_ALLOWED_TYPES =
  'text/*,application/json,application/xml,application/pdf,image/png,image/jpeg,image/gif,image/webp';

/** Digits only: Number() would also take `1e3`, `0x10` or ` 12 `, which nobody means for a count. */
function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`${name} must be a whole number ${range}, got "${raw}"`);
  }
  return value;
}

/** `true` or `false`, in any case; anything else is a mistake, not a quiet false. */
function boolean(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = (env[name] ?? '').toLowerCase();
  if (raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
}

/** One duration, 0 or at least `minMs`: a bare number is milliseconds, which a days' setting must not become by mistake. */
function duration(env: NodeJS.ProcessEnv, name: string, fallback: string, minMs: number): number {
  const raw = env[name] || fallback;
  if (raw.includes(',')) throw new ConfigError(`${name} is one duration like 2h or 30d, got "${raw}"`);
  const value = parseDurations(name, raw)[0];
  if (value !== 0 && value < minMs) throw new ConfigError(`${name} must be 0 or at least ${minMs / 3_600_000}h, got "${raw}"`);
  return value;
}

/**
 * METRICS_PORT: unset or empty turns metrics off. Unlike PORT it has no 0 (a port picked at
 * random is one a scraper cannot find), and it may not be the API's, where tenants would reach it.
 */
function metricsPort(env: NodeJS.ProcessEnv, apiPort: number, role: Role): number | null {
  const raw = env.METRICS_PORT;
  if (raw === undefined || raw.trim() === '') return null;
  const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= 65535)) throw new ConfigError(`METRICS_PORT must be a port from 1 to 65535, got "${raw}"`);
  if (role !== 'worker' && value === apiPort) {
    throw new ConfigError(`METRICS_PORT must differ from PORT (${apiPort}): metrics are for operators, not on the public API port`);
  }
  return value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function logLevel(raw: string | undefined): string {
  const value = raw || 'info';
  if (!LOG_LEVELS.includes(value)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value;
}

function role(raw: string | undefined): Role {
  const value = raw || 'all';
  if (value !== 'api' && value !== 'worker' && value !== 'all') {
    throw new ConfigError(`ROLE must be api, worker or all, got "${value}"`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgresql:// URL');
  }
  const webhookConcurrency = integer(env, 'WEBHOOK_CONCURRENCY', 64, 1);
  const port = integer(env, 'PORT', 4000, 0, 65_535);
  const processRole = role(env.ROLE);
  const config: Config = {
    port,
    host: env.HOST || '0.0.0.0',
    role: processRole,
    dataDir: path.resolve(env.DATA_DIR || './data'),
    databaseUrl,
    maxUploadBytes: integer(env, 'MAX_UPLOAD_BYTES', 1024 ** 3, 1),
    allowedTypes: (env.ALLOWED_TYPES || DEFAULT_ALLOWED_TYPES)
      .split(',')
      .map((type) => type.trim().toLowerCase())
      .filter(Boolean),
    workerConcurrency: integer(env, 'WORKER_CONCURRENCY', 2, 1),
    jobLeaseMs: integer(env, 'JOB_LEASE_MS', 30_000, 100),
    jobMaxAttempts: integer(env, 'JOB_MAX_ATTEMPTS', 5, 1),
    jobRetryBaseMs: integer(env, 'JOB_RETRY_BASE_MS', 1_000, 0),
    jobPollMs: integer(env, 'JOB_POLL_MS', 1_000, 10),
    apiKeyTrustMs: integer(env, 'API_KEY_TRUST_MS', 30_000, 100),
    embeddedVacuumIntervalMs: integer(env, 'EMBEDDED_VACUUM_INTERVAL_MS', 10_000, 100),
    statusEventRetentionMs: duration(env, 'STATUS_EVENT_RETENTION', '30d', 3_600_000),
    logLevel: logLevel(env.LOG_LEVEL),
    metrics: {
      port: metricsPort(env, port, processRole),
      host: env.METRICS_HOST || '127.0.0.1',
    },
    webhooks: {
      allowHttp: boolean(env, 'WEBHOOK_ALLOW_HTTP'),
      allowedCidrs: (env.WEBHOOK_ALLOWED_CIDRS ?? '').split(',').map((cidr) => cidr.trim()).filter(Boolean),
      retryScheduleMs: retrySchedule(env.WEBHOOK_RETRY_SCHEDULE || '0,5s,5m,30m,2h,5h,10h,10h'),
      timeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 15_000, 1),
      connectTimeoutMs: integer(env, 'WEBHOOK_CONNECT_TIMEOUT_MS', 5_000, 1),
      concurrency: webhookConcurrency,
      concurrencyPerHost: integer(env, 'WEBHOOK_CONCURRENCY_PER_HOST', 8, 1),
      concurrencyPerTenant: integer(env, 'WEBHOOK_CONCURRENCY_PER_TENANT', Math.ceil(webhookConcurrency / 2), 1),
      pollMs: integer(env, 'WEBHOOK_POLL_MS', 1_000, 10),
      logRetentionMs: duration(env, 'WEBHOOK_LOG_RETENTION', '30d', 3_600_000),
    },
  };
  for (const cidr of config.webhooks.allowedCidrs) {
    if (!ipaddr.isValidCIDR(cidr)) throw new ConfigError(`WEBHOOK_ALLOWED_CIDRS: "${cidr}" is not a CIDR range like 127.0.0.0/8`);
  }
  if (config.role !== 'all' && !config.databaseUrl) {
    throw new ConfigError(
      `ROLE=${config.role} splits the service across processes, and only one process can open the embedded database: set DATABASE_URL`,
    );
  }
  return config;
}

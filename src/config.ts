import path from 'node:path';

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
  logLevel: string;
}

export class ConfigError extends Error {}

const DEFAULT_ALLOWED_TYPES =
  'text/*,application/json,application/xml,application/pdf,image/png,image/jpeg,image/gif,image/webp';

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be a whole number >= ${min}, got "${raw}"`);
  }
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
  const config: Config = {
    port: integer(env, 'PORT', 4000),
    host: env.HOST || '0.0.0.0',
    role: role(env.ROLE),
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
    logLevel: env.LOG_LEVEL || 'info',
  };
  if (config.role !== 'all' && !config.databaseUrl) {
    throw new ConfigError(
      `ROLE=${config.role} splits the service across processes, and only one process can open the embedded database: set DATABASE_URL`,
    );
  }
  return config;
}

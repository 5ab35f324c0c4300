import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 40;

/** Settings of src/config.ts: none may leak from the caller's shell, so every run measures the defaults. */
const SERVICE_SETTINGS = [
  'PORT', 'HOST', 'ROLE', 'DATA_DIR', 'DATABASE_URL', 'MAX_UPLOAD_BYTES', 'ALLOWED_TYPES', 'WORKER_CONCURRENCY',
  'JOB_LEASE_MS', 'JOB_MAX_ATTEMPTS', 'JOB_RETRY_BASE_MS', 'JOB_POLL_MS', 'LOG_LEVEL', 'API_KEY_TRUST_MS',
];

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Last resort on any exit of the bench: no server and no gigabyte of upload may outlive it. */
export function cleanUpSync(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export interface ChildServer {
  name: string;
  pid: number;
  port: number;
  /** Parsed JSON lines the process printed on stdout, in order. */
  logLines: Record<string, unknown>[];
  stop(): Promise<void>;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Runs `node --import tsx <entry>` (node itself, not the tsx CLI, so that the pid is the server's
 * and its RSS can be read) and waits for a JSON line `{"msg":"listening","port":N}` on stdout.
 */
export async function spawnServer(options: {
  name: string;
  entry: string;
  env: Record<string, string>;
  nodeArgs?: string[];
}): Promise<ChildServer> {
  const baseEnv = { ...process.env };
  for (const name of SERVICE_SETTINGS) delete baseEnv[name];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', options.entry], {
    cwd: projectRoot,
    env: { ...baseEnv, ...options.env },
    // stdin stays a pipe: the bench's own baseline servers exit when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));

  const logLines: Record<string, unknown>[] = [];
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
  };
  // Both pipes are read to the end: a full pipe would block the server mid-benchmark.
  readline.createInterface({ input: child.stderr! }).on('line', remember);
  const stdout = readline.createInterface({ input: child.stdout! });

  const port = await new Promise<number>((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} did not start: ${reason}\n${tail.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`no "listening" line within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code, signal) => fail(`exited with ${signal ?? code}`));
    stdout.on('line', (line) => {
      remember(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logLines.push(parsed);
      if (parsed.msg === 'listening' && typeof parsed.port === 'number') {
        clearTimeout(timer);
        resolve(parsed.port);
      }
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await waitForExit(child, STOP_TIMEOUT_MS);
    throw error;
  });

  return {
    name: options.name,
    pid: child.pid!,
    port,
    logLines,
    async stop() {
      child.kill('SIGTERM');
      if (await waitForExit(child, STOP_TIMEOUT_MS)) return;
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    },
  };
}

export interface ServiceUnderTest extends ChildServer {
  apiKey: string;
  dataDir: string;
}

/** pino's level for `error`: a figure measured while the server logged errors deserves a second look. */
const PINO_ERROR_LEVEL = 50;

function warnOfLoggedErrors(server: ChildServer): void {
  const errors = server.logLines.filter((line) => typeof line.level === 'number' && line.level >= PINO_ERROR_LEVEL);
  if (errors.length === 0) return;
  console.warn(`  warning: the ${server.name} logged ${errors.length} error(s); the first: ${JSON.stringify(errors[0]).slice(0, 500)}`);
}

/**
 * Our service on a fresh embedded database in a temp dir, which stop() removes. With
 * BENCH_CPU_PROFILE_DIR set, the service writes a V8 CPU profile there when it stops.
 */
export async function startService(settings: Record<string, string> = {}): Promise<ServiceUnderTest> {
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [];
  const dataDir = makeTempDir('filestatus-bench-service-');
  try {
    const server = await spawnServer({
      name: 'service',
      entry: 'src/main.ts',
      env: { DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', ...settings },
      nodeArgs,
    });
    const apiKey = server.logLines.map((line) => line.apiKey).find((key) => typeof key === 'string');
    if (!apiKey) {
      await server.stop();
      throw new Error('the service printed no first API key (was DATA_DIR not empty?)');
    }
    return {
      ...server,
      apiKey: apiKey as string,
      dataDir,
      async stop() {
        await server.stop();
        removeTempDir(dataDir);
        warnOfLoggedErrors(server);
      },
    };
  } catch (error) {
    removeTempDir(dataDir);
    throw error;
  }
}

/** A server written for the bench, under bench/baselines/. */
export function startBaseline(script: string, env: Record<string, string> = {}): Promise<ChildServer> {
  return spawnServer({
    name: `baseline ${script}`,
    entry: path.join('bench', 'baselines', script),
    env: { PORT: '0', HOST: '127.0.0.1', ...env },
  });
}

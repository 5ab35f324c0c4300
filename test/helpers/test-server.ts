import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApiKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService, type RunningService } from '../../src/service.js';
import { createTestDatabase } from './test-database.js';

export interface TestServer {
  url: string;
  wsUrl: string;
  dataDir: string;
  service: RunningService;
  /** Creates a tenant with a key; returns `Bearer <key>`. */
  tenant(name: string): Promise<string>;
  /** Partial uploads, and stored uploads that no file row owns: what a failed upload must not leave behind. */
  leftoverUploads(): Promise<string[]>;
  stop(): Promise<void>;
}

/** The settings of a test's service: loopback, a free port, quick job polls and retries, and `env` over them. */
export function testConfig(dataDir: string, databaseUrl: string | undefined, env: Record<string, string> = {}) {
  return loadConfig({
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    JOB_POLL_MS: '100',
    JOB_RETRY_BASE_MS: '50',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...env,
  });
}

/** The real service on a loopback port, with its own data directory and database. */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-test-'));
  const database = await createTestDatabase();
  const config = testConfig(dataDir, database.url, env);
  const service = await startService(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  const url = `http://127.0.0.1:${service.port}`;
  return {
    url,
    wsUrl: url.replace('http', 'ws') + '/graphql',
    dataDir,
    service,
    async tenant(name) {
      const { key } = await createApiKey(service.db.prisma, name);
      return `Bearer ${key}`;
    },
    async leftoverUploads() {
      const names = fs.readdirSync(path.join(dataDir, 'incoming'));
      const partial = names.filter((name) => name.endsWith('.part')).map((name) => `incoming/${name}`);
      const incoming = names.filter((name) => !name.endsWith('.part'));
      const owned = new Set(
        (await service.db.prisma.file.findMany({ where: { id: { in: incoming } }, select: { id: true } })).map((file) => file.id),
      );
      return [...partial, ...incoming.filter((id) => !owned.has(id)).map((id) => `incoming/${id}`)];
    },
    async stop() {
      await service.stop();
      await database.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

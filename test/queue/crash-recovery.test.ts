import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { createTestDatabase } from '../helpers/test-database.js';

let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;
let running: ServerProcess | undefined;
let key: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-crash-'));
  database = await createTestDatabase();
  env = {
    DATA_DIR: dataDir,
    WORKER_CONCURRENCY: '2',
    // Short leases: on PostgreSQL a dead worker's jobs come back when their lease lapses.
    JOB_LEASE_MS: '1500',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  };
  // The CLI's way to a key, before any server holds the database.
  const db = await openDatabase({ dataDir, databaseUrl: database.url });
  try {
    await applyMigrations(db);
    key = `Bearer ${(await createApiKey(db.prisma, 'crash')).key}`;
  } finally {
    await db.close();
  }
});
afterAll(async () => {
  running?.child.kill('SIGKILL');
  await database.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function statusOf(server: ServerProcess, key: string, fileId: string) {
  const response = await fetch(`${server.url}/api/file/status?file_id=${fileId}`, { headers: { authorization: key } });
  return response.json();
}

describe('a worker killed with kill -9', () => {
  it('loses no file: after a restart every file reaches a terminal status with a gap-free sequence', async () => {
    running = await spawnServer(env);
    const fileIds: string[] = [];
    for (let index = 0; index < 4; index++) {
      const { body } = await uploadFile(running.url, key, `crash test ${index} `.repeat(1_500_000));
      fileIds.push(body.data.uploadFile.file.id);
    }
    // Kill it while a file is being converted.
    const deadline = Date.now() + 15_000;
    while (!(await Promise.all(fileIds.map((id) => statusOf(running!, key, id)))).some((s) => s.stage === 'converting')) {
      if (Date.now() > deadline) throw new Error('no file reached CONVERTING');
      await sleep(5);
    }
    running.child.kill('SIGKILL');
    expect(await running.exited).toBeNull();
    const statusesAtCrash = await (async () => {
      const db = await openDatabase({ dataDir, databaseUrl: database.url });
      try {
        return await db.prisma.fileStatus.findMany({ where: { fileId: { in: fileIds } } });
      } finally {
        await db.close();
      }
    })();
    expect(statusesAtCrash.some((status) => status.status === 'PROCESSING')).toBe(true);

    running = await spawnServer(env);
    for (const id of fileIds) {
      expect(await waitForTerminal(running.url, key, id, 30_000)).toMatchObject({ status: 'COMPLETED', progress: 100 });
    }

    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    running = undefined;

    const db = await openDatabase({ dataDir, databaseUrl: database.url });
    try {
      for (const fileId of fileIds) {
        const events = await db.prisma.fileStatusEvent.findMany({ where: { fileId }, orderBy: { sequence: 'asc' } });
        expect(events.map((event) => event.sequence)).toEqual(events.map((_, index) => index + 1));
        expect(events.filter((event) => event.status !== 'PROCESSING')).toHaveLength(1);
        events.slice(1).forEach((event, index) => expect(event.progress).toBeGreaterThanOrEqual(events[index].progress));
      }
      expect(await db.prisma.job.count()).toBe(0);
    } finally {
      await db.close();
    }
  }, 90_000);
});

describe('SIGTERM', () => {
  it('stops taking requests, gives its jobs back and exits cleanly; the next start finishes them', async () => {
    running = await spawnServer(env);
    const { body } = await uploadFile(running.url, key, 'graceful '.repeat(3_000_000));
    const fileId = body.data.uploadFile.file.id;
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();

    running = await spawnServer(env);
    expect(await waitForTerminal(running.url, key, fileId, 30_000)).toMatchObject({ status: 'COMPLETED' });
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    running = undefined;
  }, 60_000);
});

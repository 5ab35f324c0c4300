import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import type { StatusEvent } from '../../src/status/model.js';
import { createPostgresEventTarget } from '../../src/status/postgres-event-target.js';
import { readStatusesChangedSince } from '../../src/status/read-status.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus, type StatusBus } from '../../src/status/status-bus.js';
import { watchFileStatus } from '../../src/status/watch-status.js';
import { createTestDatabase } from '../helpers/test-database.js';

const log = createLogger('silent');
let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let tenantId: string;
const closers: (() => Promise<void>)[] = [];

/** Two processes' buses on one database: `publisher` records changes, `listener` serves a watcher. */
async function twoBuses(): Promise<{ publisher: StatusRecorder; listener: StatusBus }> {
  const publishing = await createPostgresEventTarget(database.url!, log);
  const listening = await createPostgresEventTarget(database.url!, log);
  closers.push(publishing.close, listening.close);
  const listener = createStatusBus(listening.target, { changedSince: (since) => readStatusesChangedSince(db.prisma, since), log });
  return { publisher: new StatusRecorder(db.prisma, createStatusBus(publishing.target)), listener };
}

/** Terminates a bus connection on the server, as a restart or a network cut would: the oldest one, or the newest. */
async function cutBusConnection(which: 'oldest' | 'newest'): Promise<void> {
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const { rows } = await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE application_name = 'filestatus-bus' AND datname = current_database()
      ORDER BY backend_start ${which === 'oldest' ? 'ASC' : 'DESC'} LIMIT 1`,
  );
  await admin.end();
  expect(rows).toEqual([{ pg_terminate_backend: true }]);
}

async function newFile(recorder: StatusRecorder): Promise<string> {
  const queued = await db.prisma.$transaction(async (tx) => {
    const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x' } });
    return recorder.recordQueued(tx, file, {});
  });
  recorder.publish(queued);
  return queued.fileId;
}

async function rest(stream: AsyncIterable<StatusEvent>): Promise<StatusEvent[]> {
  const seen: StatusEvent[] = [];
  for await (const event of stream) seen.push(event);
  return seen;
}

describe.skipIf(!process.env.TEST_DATABASE_URL)('the PostgreSQL bus', () => {
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-bus-'));
    database = await createTestDatabase();
    db = await openDatabase({ dataDir, databaseUrl: database.url });
    await applyMigrations(db);
    tenantId = (await db.prisma.tenant.create({ data: { name: 'bus' } })).id;
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await db?.close();
    await database?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps a change published while the publisher's connection is down, and sends it once it is back", async () => {
    const { publisher, listener } = await twoBuses();
    const fileId = await newFile(publisher);
    const stream = await watchFileStatus({ prisma: db.prisma, bus: listener }, tenantId, fileId);
    expect((await stream.next()).value).toMatchObject({ sequence: 1 });
    await cutBusConnection('oldest');
    await publisher.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect((await rest(stream)).map((event) => [event.sequence, event.status])).toEqual([[2, 'COMPLETED']]);
  }, 15_000);

  it("catches a watcher up on the changes sent while the listener's connection was down", async () => {
    const { publisher, listener } = await twoBuses();
    const fileId = await newFile(publisher);
    const stream = await watchFileStatus({ prisma: db.prisma, bus: listener }, tenantId, fileId);
    expect((await stream.next()).value).toMatchObject({ sequence: 1 });
    await cutBusConnection('newest');
    // Both notifications go out while nobody listens for them.
    await publisher.record({ fileId, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await publisher.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect((await rest(stream)).map((event) => [event.sequence, event.stage])).toEqual([
      [2, 'VALIDATING'],
      [3, 'DONE'],
    ]);
  }, 15_000);
});

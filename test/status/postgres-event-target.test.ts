import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import type { StatusEvent } from '../../src/status/model.js';
import { createPostgresEventTarget } from '../../src/status/postgres-event-target.js';
import { readStatusesChangedSince } from '../../src/status/read-status.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus, type StatusBus } from '../../src/status/status-bus.js';
import { watchFileStatus, watchTenantStatus } from '../../src/status/watch-status.js';
import { createTestDatabase } from '../helpers/test-database.js';

const log = createLogger('silent');
let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let tenantId: string;
const closers: (() => Promise<void>)[] = [];

/**
 * Two processes' buses on one database: `publisher` records changes, `listener` serves a watcher.
 * The listener may connect through another URL (a proxy).
 */
async function twoBuses(listenerUrl = database.url!): Promise<{ publisher: StatusRecorder; listener: StatusBus }> {
  const publishing = await createPostgresEventTarget(database.url!, log);
  const listening = await createPostgresEventTarget(listenerUrl, log, { heartbeatMs: 300 });
  closers.push(publishing.close, listening.close);
  const listener = createStatusBus(listening.target, { changedSince: (since) => readStatusesChangedSince(db.prisma, since), log });
  return { publisher: new StatusRecorder(db.prisma, createStatusBus(publishing.target)), listener };
}

/**
 * Terminates a bus connection on the server, as a restart or a network cut would: a listening one
 * (`filestatus-bus`) or a publishing one, the oldest or the newest.
 */
async function cutBusConnection(applicationName: 'filestatus-bus' | 'filestatus-bus-publisher', which: 'oldest' | 'newest'): Promise<void> {
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  // The publishing pool opens its connection with its first NOTIFY, which follows the commit it
  // announces by a moment: wait for the connection to be there.
  const deadline = Date.now() + 5_000;
  let rows: unknown[] = [];
  for (;;) {
    ({ rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = $1 AND datname = current_database()
        ORDER BY backend_start ${which === 'oldest' ? 'ASC' : 'DESC'} LIMIT 1`,
      [applicationName],
    ));
    if (rows.length > 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await admin.end();
  expect(rows).toEqual([{ pg_terminate_backend: true }]);
}

/**
 * A TCP proxy to PostgreSQL whose open connections can go silent, as when a NAT or firewall forgets
 * a flow: no error, no data. New connections go through.
 */
async function silencingProxy(): Promise<{ url: string; silence(): void; close(): void }> {
  const silenced = new Set<net.Socket>();
  const open = new Set<net.Socket>();
  // Half-open allowed: a silenced connection does not answer a FIN either.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect(Number(new URL(database.url!).port || 5432), '127.0.0.1');
    open.add(client);
    client.on('data', (data) => silenced.has(client) || upstream.write(data));
    upstream.on('data', (data) => silenced.has(client) || client.write(data));
    client.on('end', () => silenced.has(client) || upstream.end());
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(database.url!);
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    silence: () => open.forEach((socket) => silenced.add(socket)),
    close: () => {
      open.forEach((socket) => socket.destroy());
      server.close();
    },
  };
}

async function newFile(recorder: StatusRecorder): Promise<string> {
  const queued = await db.prisma.$transaction(async (tx) => {
    const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x' } });
    return recorder.recordQueued(tx, file, {});
  });
  recorder.publish(queued);
  return queued.fileId;
}

/** A new file watched through the listener's bus, its snapshot already read. */
async function watchNewFile(listenerUrl?: string) {
  const { publisher, listener } = await twoBuses(listenerUrl);
  const fileId = await newFile(publisher);
  const stream = await watchFileStatus({ prisma: db.prisma, bus: listener }, tenantId, fileId);
  expect((await stream.next()).value).toMatchObject({ sequence: 1 });
  return { publisher, fileId, stream };
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

  it('hears each change from the transaction that recorded it: in commit order, and though the recording process sends nothing', async () => {
    const listening = await createPostgresEventTarget(database.url!, log);
    closers.push(listening.close);
    const resync = { changedSince: (since: Date) => readStatusesChangedSince(db.prisma, since), log };
    const apiBus = createStatusBus(listening.target, resync, { announcedByDatabase: true });
    const api = new StatusRecorder(db.prisma, apiBus);
    // A worker process whose bus reaches no one: had it to announce its changes, none would arrive.
    const worker = new StatusRecorder(db.prisma, createStatusBus(new EventTarget(), undefined, { announcedByDatabase: true }));
    // The API's own publications wait behind a backlog: its changes must not arrive after the worker's.
    for (let index = 0; index < 300; index++) apiBus.publishJobsQueued();
    const tenantStream = await watchTenantStatus({ prisma: db.prisma, bus: apiBus }, tenantId);

    const fileId = await newFile(api);
    const fileStream = await watchFileStatus({ prisma: db.prisma, bus: apiBus }, tenantId, fileId);
    await worker.record({ fileId, attempt: 1, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await worker.record({ fileId, attempt: 1, status: 'COMPLETED', stage: 'DONE', progress: 100 });

    // The current status, then each change; it completes after COMPLETED.
    expect((await rest(fileStream)).map((event) => event.sequence)).toEqual([1, 2, 3]);
    const ofFile: number[] = [];
    for await (const event of tenantStream) {
      if (event.fileId === fileId) ofFile.push(event.sequence);
      if (event.fileId === fileId && event.status === 'COMPLETED') break;
    }
    expect(ofFile).toEqual([1, 2, 3]);
  });

  it("keeps a change published while the publisher's connection is down, and sends it once it is back", async () => {
    const { publisher, fileId, stream } = await watchNewFile();
    await cutBusConnection('filestatus-bus-publisher', 'oldest');
    await publisher.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect((await rest(stream)).map((event) => [event.sequence, event.status])).toEqual([[2, 'COMPLETED']]);
  }, 15_000);

  it('drops a publication the server refuses, and sends the ones after it', async () => {
    const publishing = await createPostgresEventTarget(database.url!, log);
    const listening = await createPostgresEventTarget(database.url!, log);
    closers.push(publishing.close, listening.close);
    const heard: unknown[] = [];
    listening.target.addEventListener('probe', (event) => heard.push((event as CustomEvent).detail));
    // NOTIFY takes at most 8000 bytes.
    publishing.target.dispatchEvent(new CustomEvent('probe', { detail: 'x'.repeat(10_000) }));
    publishing.target.dispatchEvent(new CustomEvent('probe', { detail: 'after it' }));
    await vi.waitFor(() => expect(heard).toEqual(['after it']), { timeout: 5_000 });
  });

  it("finds a listener's connection that went silent, and catches its watcher up on what it missed", async () => {
    const proxy = await silencingProxy();
    closers.push(async () => proxy.close());
    const { publisher, fileId, stream } = await watchNewFile(proxy.url);
    proxy.silence();
    await publisher.record({ fileId, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await publisher.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect((await rest(stream)).map((event) => [event.sequence, event.stage])).toEqual([
      [2, 'VALIDATING'],
      [3, 'DONE'],
    ]);
  }, 15_000);

  it('closes at once when its connection has gone silent', async () => {
    const proxy = await silencingProxy();
    closers.push(async () => proxy.close());
    const bus = await createPostgresEventTarget(proxy.url, log);
    proxy.silence();
    const started = Date.now();
    await bus.close();
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  it("catches a watcher up on the changes sent while the listener's connection was down", async () => {
    const { publisher, fileId, stream } = await watchNewFile();
    await cutBusConnection('filestatus-bus', 'newest');
    // Both notifications go out while nobody listens for them.
    await publisher.record({ fileId, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await publisher.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect((await rest(stream)).map((event) => [event.sequence, event.stage])).toEqual([
      [2, 'VALIDATING'],
      [3, 'DONE'],
    ]);
  }, 15_000);
});

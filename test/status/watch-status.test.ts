import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/log.js';
import type { StatusEvent } from '../../src/status/model.js';
import { RECONNECTED } from '../../src/status/postgres-event-target.js';
import { readStatusesChangedSince } from '../../src/status/read-status.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus, type StatusBus } from '../../src/status/status-bus.js';
import { HistoryExpiredError, NotFoundError, watchFileStatus, watchTenantStatus } from '../../src/status/watch-status.js';
import { deleteExpiredStatusEvents } from '../../src/status/status-event-retention.js';
import { age } from '../helpers/settled-files.js';
import { openTestDatabase } from '../helpers/test-database.js';

let db: Database;
let closeDatabase: () => Promise<void>;
let bus: StatusBus;
let recorder: StatusRecorder;
let tenantId: string;

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('watch-status'));
  bus = createStatusBus();
  recorder = new StatusRecorder(db.prisma, bus);
  tenantId = (await db.prisma.tenant.create({ data: { name: 'watchers' } })).id;
});
afterAll(async () => {
  await closeDatabase();
});

async function newFile(): Promise<string> {
  return db.prisma
    .$transaction(async (tx) => {
    const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x' } });
    return recorder.recordQueued(tx, file, {});
  }).then((queued) => {
    recorder.publish(queued);
    return queued.fileId;
  });
}

/** 300 progress changes, then COMPLETED: far more than a subscriber's live queue holds. */
async function manyChanges(fileId: string): Promise<number> {
  const count = 300;
  for (let index = 0; index < count; index++) {
    await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: Math.floor(index / 3) });
  }
  await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
  return count + 2;
}

async function drain(events: AsyncIterable<StatusEvent>, until: (event: StatusEvent) => boolean = () => false) {
  const seen: StatusEvent[] = [];
  for await (const event of events) {
    seen.push(event);
    if (until(event)) break;
  }
  return seen;
}

describe('watchFileStatus', () => {
  it('catches a subscriber that fell far behind up from the table: every change, in order, once', async () => {
    const fileId = await newFile();
    const stream = await watchFileStatus({ prisma: db.prisma, bus }, tenantId, fileId);
    const last = await manyChanges(fileId); // nobody reads while these are published
    const seen = await drain(stream);
    expect(seen.map((event) => event.sequence)).toEqual(Array.from({ length: last }, (_, index) => index + 1));
    expect(seen.at(-1)!.status).toBe('COMPLETED');
  });

  it("rejects another tenant's file as not found", async () => {
    const fileId = await newFile();
    await expect(watchFileStatus({ prisma: db.prisma, bus }, '00000000-0000-4000-8000-000000000000', fileId)).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('fills a gap left by a lost live event from the table', async () => {
    const fileId = await newFile();
    const stream = await watchFileStatus({ prisma: db.prisma, bus }, tenantId, fileId);
    expect((await stream.next()).value.sequence).toBe(1);
    // A change that reached the table but whose publication was lost (a dropped bus connection):
    await db.prisma.$transaction(async (tx) => {
      await tx.fileStatus.update({ where: { fileId }, data: { sequence: 2, stage: 'VALIDATING', progress: 5 } });
      await tx.fileStatusEvent.create({
        data: { fileId, tenantId, sequence: 2, status: 'PROCESSING', stage: 'VALIDATING', progress: 5, attempt: 1, createdAt: new Date() },
      });
    });
    await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    const rest = await drain(stream);
    expect(rest.map((event) => [event.sequence, event.stage])).toEqual([
      [2, 'VALIDATING'],
      [3, 'DONE'],
    ]);
  });

  it('lets go of its live subscription once it has delivered the terminal status', async () => {
    const fileId = await newFile();
    const topic = `file:${fileId}`;
    const listening = new Map<string, number>();
    const { addEventListener, removeEventListener } = EventTarget.prototype;
    // Counts the listeners on this file's topic, in every pub-sub of this process.
    EventTarget.prototype.addEventListener = function (type, ...rest) {
      listening.set(type, (listening.get(type) ?? 0) + 1);
      return addEventListener.call(this, type, ...rest);
    };
    EventTarget.prototype.removeEventListener = function (type, ...rest) {
      listening.set(type, (listening.get(type) ?? 0) - 1);
      return removeEventListener.call(this, type, ...rest);
    };
    try {
      const stream = await watchFileStatus({ prisma: db.prisma, bus }, tenantId, fileId);
      expect(listening.get(topic)).toBe(1);
      await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
      const seen = await drain(stream);
      expect(seen.map((event) => event.status)).toEqual(['PROCESSING', 'COMPLETED']);
      await vi.waitFor(() => expect(listening.get(topic)).toBe(0));
    } finally {
      Object.assign(EventTarget.prototype, { addEventListener, removeEventListener });
    }
  });

  it('ends a waiting stream when the subscriber leaves', async () => {
    const fileId = await newFile();
    const stream = await watchFileStatus({ prisma: db.prisma, bus }, tenantId, fileId);
    await stream.next();
    const pending = stream.next();
    await stream.return(undefined);
    expect(await pending).toMatchObject({ done: true });
  });
});

describe('a subscriber behind by more than the history keeps', () => {
  it('ends its stream with HistoryExpiredError at the hole, not skipping over it', async () => {
    const fileId = await newFile();
    const stream = await watchFileStatus({ prisma: db.prisma, bus }, tenantId, fileId);
    expect((await stream.next()).value.sequence).toBe(1);
    // Not read meanwhile: 64 stay in its live queue, the rest are to be read from the table…
    for (let index = 0; index < 100; index++) await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: index });
    // …where the retention has deleted them by the time it reads on.
    await age(db.prisma, 'file_status_event', fileId, 1);
    await deleteExpiredStatusEvents(db.prisma, 3_600_000);
    await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });

    const read: number[] = [];
    const ended = (async () => {
      for await (const event of stream) read.push(event.sequence);
    })();
    await expect(ended).rejects.toThrow(HistoryExpiredError);
    await expect(ended).rejects.toThrow(`The changes 66 to 101 of file ${fileId} were deleted`);
    expect(read).toEqual(Array.from({ length: 64 }, (_, index) => index + 2));
  });
});

describe('watchTenantStatus', () => {
  it('keeps every change of every file in order per file, however far behind the subscriber is', async () => {
    const stream = await watchTenantStatus({ prisma: db.prisma, bus }, tenantId);
    const files = [await newFile(), await newFile()];
    const totals = await Promise.all(files.map(manyChanges));
    let completed = 0;
    const seen = await drain(stream, (event) => event.status === 'COMPLETED' && ++completed === files.length);
    files.forEach((fileId, index) => {
      const sequences = seen.filter((event) => event.fileId === fileId).map((event) => event.sequence);
      expect(sequences).toEqual(Array.from({ length: totals[index] }, (_, i) => i + 1));
    });
  });

  it('takes a reconnected bus re-announcing thousands of changes at once, and delivers each', async () => {
    // A tenant of its own, whose 1,500 files all changed while the bus was down.
    const crowd = (await db.prisma.tenant.create({ data: { name: 'crowd' } })).id;
    const count = 1_500;
    await db.prisma.$executeRaw`
      WITH files AS (
        INSERT INTO file (id, tenant_id, filename, mime_type, size, sha256)
        SELECT gen_random_uuid(), ${crowd}::uuid, 'f', 'text/plain', 1, 'x' FROM generate_series(1, ${count}::int) RETURNING id),
      statuses AS (
        INSERT INTO file_status (file_id, tenant_id, status, stage, progress, metadata, sequence, attempt, attempt_started_at, updated_at)
        SELECT id, ${crowd}::uuid, 'PROCESSING', 'QUEUED', 0, '{}', 1, 1, now(), now() FROM files)
      INSERT INTO file_status_event (file_id, tenant_id, sequence, status, stage, progress, metadata, attempt, created_at)
      SELECT id, ${crowd}::uuid, 1, 'PROCESSING', 'QUEUED', 0, '{}', 1, now() FROM files`;
    const wire = new EventTarget();
    const reconnectedBus = createStatusBus(wire, { changedSince: (since) => readStatusesChangedSince(db.prisma, since), log: createLogger('silent') });
    const stream = await watchTenantStatus({ prisma: db.prisma, bus: reconnectedBus }, crowd);
    wire.dispatchEvent(new CustomEvent(RECONNECTED, { detail: { downSince: new Date(Date.now() - 60_000) } }));
    let heard = 0;
    const seen = await drain(stream, () => ++heard === count);
    expect(new Set(seen.map((event) => event.fileId)).size).toBe(count);
    expect(seen.every((event) => event.sequence === 1 && event.tenantId === crowd)).toBe(true);
  });
});


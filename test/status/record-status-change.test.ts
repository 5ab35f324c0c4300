import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import type { StatusEvent } from '../../src/status/model.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { toStatusEvent } from '../../src/status/status-rows.js';
import { openTestDatabase } from '../helpers/test-database.js';

let db: Database;
let closeDatabase: () => Promise<void>;
let recorder: StatusRecorder;
let tenantId: string;
const published: StatusEvent[] = [];

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('record-status'));
  const bus = createStatusBus();
  bus.onStatus((event) => published.push(event));
  recorder = new StatusRecorder(db.prisma, bus);
  tenantId = (await db.prisma.tenant.create({ data: { name: 'recorder' } })).id;
});
afterAll(async () => {
  await closeDatabase();
});

async function newFile(): Promise<string> {
  const queued = await db.prisma.$transaction(async (tx) => {
    const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x' } });
    return recorder.recordQueued(tx, file, { sniffed: false });
  });
  recorder.publish(queued);
  return queued.fileId;
}

async function storedEvents(fileId: string): Promise<StatusEvent[]> {
  const rows = await db.prisma.fileStatusEvent.findMany({ where: { fileId }, orderBy: { sequence: 'asc' } });
  return rows.map(toStatusEvent);
}

describe('StatusRecorder', () => {
  it('writes the row and the event alike, publishes what it stored, and merges metadata', async () => {
    const fileId = await newFile();
    const event = await recorder.record({ fileId, status: 'PROCESSING', stage: 'VALIDATING', progress: 10.4, metadata: { type: 'text/plain' } });
    expect(event).toMatchObject({ fileId, tenantId, sequence: 2, status: 'PROCESSING', stage: 'VALIDATING', progress: 10, attempt: 1 });
    expect(event!.metadata).toEqual({ sniffed: false, type: 'text/plain' });
    expect(published.at(-1)).toEqual(event);
    expect((await storedEvents(fileId)).at(-1)).toEqual(event);
    const row = await db.prisma.fileStatus.findUniqueOrThrow({ where: { fileId } });
    expect(toStatusEvent(row)).toEqual(event);
  });

  it('keeps the stage when a change names none, and estimates the time left from the rate so far', async () => {
    const fileId = await newFile();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const event = await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 50 });
    expect(event!.etaSeconds).toBeGreaterThanOrEqual(0.1);
    expect(event!.etaSeconds).toBeLessThan(5);
    const failed = await recorder.record({ fileId, status: 'FAILED', progress: 0, message: 'could not convert' });
    expect(failed).toMatchObject({ status: 'FAILED', stage: 'CONVERTING', progress: 50, message: 'could not convert', etaSeconds: null });
  });

  it('never moves progress back within an attempt', async () => {
    const fileId = await newFile();
    await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 60 });
    const resumed = await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 20 });
    expect(resumed!.progress).toBe(60);
    const over = await recorder.record({ fileId, status: 'PROCESSING', progress: 250 });
    expect(over!.progress).toBe(100);
  });

  it('never moves the stage back within an attempt, as a worker that lost its lease would', async () => {
    const fileId = await newFile();
    await recorder.record({ fileId, status: 'PROCESSING', stage: 'STORING', progress: 90 });
    const late = await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 40 });
    expect(late).toMatchObject({ stage: 'STORING', progress: 90 });
    expect(await db.prisma.fileStatus.findUniqueOrThrow({ where: { fileId } })).toMatchObject({ stage: 'STORING' });
    const done = await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect(done).toMatchObject({ stage: 'DONE' });
  });

  it("drops a change of an attempt the file has moved on from, as a late write of a retried attempt's worker", async () => {
    const fileId = await newFile();
    await recorder.record({ fileId, attempt: 1, status: 'FAILED', progress: 0, message: 'broke' });
    const retried = await db.prisma.$transaction((tx) => recorder.recordRetry(tx, fileId));
    expect(retried).toMatchObject({ attempt: 2, status: 'PROCESSING', stage: 'QUEUED' });
    expect(await recorder.record({ fileId, attempt: 1, status: 'FAILED', progress: 0, message: 'late' })).toBeNull();
    expect(await recorder.record({ fileId, attempt: 1, status: 'COMPLETED', stage: 'DONE', progress: 100 })).toBeNull();
    expect(await recorder.record({ fileId, attempt: 2, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 })).toMatchObject({ attempt: 2 });
    expect((await storedEvents(fileId)).map((event) => [event.attempt, event.status, event.stage])).toEqual([
      [1, 'PROCESSING', 'QUEUED'],
      [1, 'FAILED', 'QUEUED'],
      [2, 'PROCESSING', 'QUEUED'],
      [2, 'PROCESSING', 'VALIDATING'],
    ]);
  });

  it('still answers the previous release, which calls without an attempt, during a rolling deploy', async () => {
    const fileId = await newFile();
    const rows = await db.prisma.$queryRaw<{ sequence: number; stage: string }[]>`
      SELECT sequence, stage FROM record_status_change(${fileId}::uuid, 'PROCESSING', 'VALIDATING', 5, NULL, '{}'::jsonb)`;
    expect(rows).toEqual([{ sequence: 2, stage: 'VALIDATING' }]);
  });

  it('still answers the release before, which reads every column of the event from the nine-argument form and its batch', async () => {
    const [one, two] = [await newFile(), await newFile()];
    const columns = Prisma.sql`id, file_id AS "fileId", tenant_id AS "tenantId", sequence, status, stage, progress, message, metadata,
      attempt, eta_seconds AS "etaSeconds", created_at AS "createdAt", handed`;
    const single = await db.prisma.$queryRaw<Record<string, unknown>[]>`
      SELECT ${columns} FROM record_status_change(${one}::uuid, 'PROCESSING', 'CONVERTING', 40, 'half', '{"pages":3}'::jsonb, 1, NULL, NULL)`;
    const batch = await db.prisma.$queryRaw<Record<string, unknown>[]>`
      SELECT ${columns} FROM record_status_changes(${[two]}::uuid[], ${['COMPLETED']}::text[], ${['DONE']}::text[], ${[100]}::int[],
                                                   ${[null]}::text[], ${['{}']}::text[]::jsonb[], ${[1]}::int[], NULL, NULL)`;
    for (const [fileId, rows] of [[one, single], [two, batch]] as const) {
      const stored = await db.prisma.fileStatusEvent.findFirstOrThrow({ where: { fileId }, orderBy: { sequence: 'desc' } });
      expect(rows).toEqual([{ ...stored, handed: null }]);
    }
    expect(single[0]).toMatchObject({ stage: 'CONVERTING', progress: 40, message: 'half', metadata: { sniffed: false, pages: 3 }, sequence: 2 });
    expect(batch[0]).toMatchObject({ status: 'COMPLETED', stage: 'DONE', progress: 100, sequence: 2 });
  });

  it('drops a change after a terminal status, and a change of an unknown file, and stores nothing for them', async () => {
    const fileId = await newFile();
    await recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    const before = published.length;
    expect(await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 10 })).toBeNull();
    expect(await recorder.record({ fileId: '00000000-0000-4000-8000-000000000000', status: 'PROCESSING', progress: 10 })).toBeNull();
    expect(published.length).toBe(before);
    expect((await storedEvents(fileId)).map((event) => event.status)).toEqual(['PROCESSING', 'COMPLETED']);
  });

  it('gives every one of many concurrent changes of one file its own sequence, with no gap', async () => {
    const fileId = await newFile();
    const events = await Promise.all(Array.from({ length: 40 }, (_, step) => recorder.record({ fileId, status: 'PROCESSING', progress: step })));
    expect(events.map((event) => event!.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, step) => step + 2));
    expect((await storedEvents(fileId)).map((event) => event.sequence)).toEqual(Array.from({ length: 41 }, (_, step) => step + 1));
  });
});

/** In the order first heard: the bus hears a change at least once (the process's own copy, then the wire's). */
const publishedSequences = (fileId: string) => [...new Set(published.filter((event) => event.fileId === fileId).map((event) => event.sequence))];

describe('StatusRecorder, group commit', () => {
  it('writes the changes that callers make at once in batches, each one committed as a whole', async () => {
    const files = await Promise.all(Array.from({ length: 40 }, () => newFile()));
    const events = await Promise.all(files.map((fileId) => recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 30 })));
    expect(events.map((event) => event!.fileId)).toEqual(files);
    expect(events.every((event) => event!.sequence === 2 && event!.progress === 30)).toBe(true);
    // A batch is one transaction, so its changes share the transaction's clock: the first change
    // goes alone, the 39 that wait for it go in two batches (32 at most in one).
    const stamps = new Set(events.map((event) => event!.updatedAt.getTime()));
    expect(stamps.size).toBeLessThanOrEqual(3);
    expect(stamps.size).toBeGreaterThanOrEqual(2);
  });

  it("keeps one file's changes in the order they were made when they share a batch", async () => {
    const [other, fileId] = await Promise.all([newFile(), newFile()]);
    const made = [
      recorder.record({ fileId: other, status: 'PROCESSING', progress: 1 }),
      recorder.record({ fileId, status: 'PROCESSING', stage: 'VALIDATING', progress: 10, message: 'first' }),
      recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 20, message: 'second' }),
      recorder.record({ fileId, status: 'COMPLETED', stage: 'DONE', progress: 100, message: 'third' }),
      recorder.record({ fileId, status: 'PROCESSING', stage: 'STORING', progress: 90, message: 'after the end' }),
    ];
    const [, ...ofFile] = await Promise.all(made);
    expect(ofFile.map((event) => event && [event.sequence, event.message])).toEqual([[2, 'first'], [3, 'second'], [4, 'third'], null]);
    expect(publishedSequences(fileId)).toEqual([1, 2, 3, 4]);
  });

  it('fails only the bad change of a batch: the others are recorded and published', async () => {
    const files = await Promise.all(Array.from({ length: 5 }, () => newFile()));
    const settled = await Promise.allSettled([
      ...files.map((fileId) => recorder.record({ fileId, status: 'PROCESSING', progress: 40 })),
      recorder.record({ fileId: 'not-a-uuid', status: 'PROCESSING', progress: 40 }),
      ...files.map((fileId) => recorder.record({ fileId, status: 'PROCESSING', progress: 50 })),
    ]);
    expect(settled.map((result) => result.status)).toEqual([...files.map(() => 'fulfilled'), 'rejected', ...files.map(() => 'fulfilled')]);
    for (const fileId of files) {
      expect((await storedEvents(fileId)).map((event) => event.progress)).toEqual([0, 40, 50]);
      expect(publishedSequences(fileId)).toEqual([1, 2, 3]);
    }
  });

  it('records every change when several recorders, as several processes would, write the same files in opposite orders', async () => {
    const files = await Promise.all(Array.from({ length: 20 }, () => newFile()));
    const recorders = [new StatusRecorder(db.prisma, createStatusBus(), 4), new StatusRecorder(db.prisma, createStatusBus(), 4)];
    await Promise.all(
      recorders.flatMap((each, which) =>
        Array.from({ length: 5 }, (_, round) =>
          Promise.all((which === 0 ? files : [...files].reverse()).map((fileId) => each.record({ fileId, status: 'PROCESSING', progress: round }))),
        ),
      ),
    );
    for (const fileId of files) {
      expect((await storedEvents(fileId)).map((event) => event.sequence)).toEqual(Array.from({ length: 11 }, (_, index) => index + 1));
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
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

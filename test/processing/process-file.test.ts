import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { PROCESS_FILE_TASK, RejectedFileError, processFileTask } from '../../src/processing/process-file.js';
import { addJob } from '../../src/queue/job-sql.js';
import type { Stage } from '../../src/status/model.js';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let key: string;

beforeAll(async () => {
  // One attempt, so that a failure is final at once.
  server = await startTestServer({ JOB_MAX_ATTEMPTS: '1' });
  key = await server.tenant('processing');
});
afterAll(() => server?.stop());

const RETRY = 'mutation($id: ID!) { retryFile(fileId: $id) { attempt } }';
const sha256 = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');
const blobPath = (sha: string) => path.join(server.dataDir, 'blobs', sha.slice(0, 2), sha);
const incomingPath = (fileId: string) => path.join(server.dataDir, 'incoming', fileId);

async function upload(content: string | Buffer, type = 'text/plain'): Promise<string> {
  const { body } = await uploadFile(server.url, key, typeof content === 'string' ? content : new Uint8Array(content), { type });
  return body.data.uploadFile.file.id;
}

async function processed(content: string | Buffer, type?: string) {
  const fileId = await upload(content, type);
  return { fileId, status: await waitForTerminal(server.url, key, fileId) };
}

/**
 * What a worker killed at `stage` leaves behind: the status as it was then, the bytes wherever the
 * finished run put them, and the job back in the queue. Returns the sequence it was rewound to.
 */
async function rewindTo(fileId: string, stage: Stage): Promise<number> {
  const prisma = server.service.db.prisma;
  const event = await prisma.fileStatusEvent.findFirstOrThrow({ where: { fileId, stage }, orderBy: { sequence: 'desc' } });
  await prisma.$transaction(async (tx) => {
    await tx.fileStatusEvent.deleteMany({ where: { fileId, sequence: { gt: event.sequence } } });
    await tx.fileStatus.update({
      where: { fileId },
      data: { status: event.status, stage: event.stage, progress: event.progress, message: null, sequence: event.sequence },
    });
    await addJob(tx, { task: PROCESS_FILE_TASK, payload: { fileId, attempt: event.attempt }, key: `file:${fileId}`, maxAttempts: 1 });
  });
  return event.sequence;
}

/** Read from the table, not the API: the rewind went around the status cache. */
async function settled(fileId: string) {
  const prisma = server.service.db.prisma;
  const deadline = Date.now() + 20_000;
  while ((await prisma.job.count({ where: { key: `file:${fileId}` } })) > 0) {
    if (Date.now() > deadline) throw new Error(`the job of ${fileId} is still queued`);
    await sleep(20);
  }
  return prisma.fileStatus.findUniqueOrThrow({ where: { fileId } });
}

describe('a job resumed at STORING, after the bytes were moved into blobs/', () => {
  // CRLF line ends make the text differ from the original, so each has its own blob.
  const content = 'résumé\r\n'.repeat(400_000);

  it('keeps the stored blobs and completes the file', async () => {
    const { fileId, status } = await processed(content);
    expect(status.status).toBe('COMPLETED');
    const textSha = status.metadata.textSha256;
    expect(fs.existsSync(incomingPath(fileId))).toBe(false);

    await rewindTo(fileId, 'STORING');
    expect(await settled(fileId)).toMatchObject({ status: 'COMPLETED', stage: 'DONE', progress: 100 });
    expect(fs.readFileSync(blobPath(sha256(content)), 'utf8')).toBe(content);
    expect(fs.readFileSync(blobPath(textSha), 'utf8')).toBe(content.replaceAll('\r\n', '\n'));
  });

  it('is read from there by a retry of an attempt that failed after storing them', async () => {
    const { fileId } = await processed('stored, then failed\n');
    const prisma = server.service.db.prisma;
    // As an attempt whose COMPLETED could not be written leaves the file: FAILED at STORING, its
    // bytes already moved out of incoming/.
    const storing = await prisma.fileStatusEvent.findFirstOrThrow({ where: { fileId, stage: 'STORING' }, orderBy: { sequence: 'desc' } });
    await prisma.$transaction(async (tx) => {
      await tx.fileStatusEvent.deleteMany({ where: { fileId, sequence: { gt: storing.sequence } } });
      await tx.fileStatus.update({ where: { fileId }, data: { status: 'FAILED', stage: 'STORING', progress: storing.progress, sequence: storing.sequence } });
    });
    expect(fs.existsSync(incomingPath(fileId))).toBe(false);

    const { body } = await graphql(server.url, key, RETRY, { id: fileId });
    expect(body.data.retryFile.attempt).toBe(2);
    expect(await settled(fileId)).toMatchObject({ status: 'COMPLETED', attempt: 2 });
  });

  it('never records an earlier stage, though its converter runs again', async () => {
    const { fileId } = await processed(content);
    const resumedAt = await rewindTo(fileId, 'STORING');
    await settled(fileId);
    const events = await server.service.db.prisma.fileStatusEvent.findMany({
      where: { fileId, sequence: { gt: resumedAt } },
      orderBy: { sequence: 'asc' },
    });
    expect(events.map((event) => event.stage)).toEqual(['STORING', 'DONE']);
  });
});

describe('the incoming upload of a file that ends without being stored', () => {
  it('is removed when the file is rejected, and a retry asks for a new upload', async () => {
    const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0]);
    const { fileId, status } = await processed(binary, 'text/plain');
    expect(status).toMatchObject({ status: 'FAILED', message: 'Files of type application/octet-stream are not accepted.' });
    // The bytes go once FAILED is recorded, which a watcher can see first: wait for the job's end.
    await settled(fileId);
    expect(fs.existsSync(incomingPath(fileId))).toBe(false);
    expect(fs.existsSync(blobPath(sha256(binary)))).toBe(false);

    await graphql(server.url, key, RETRY, { id: fileId });
    expect(await waitForTerminal(server.url, key, fileId)).toMatchObject({
      status: 'FAILED',
      attempt: 2,
      message: 'The uploaded bytes are no longer available. Upload the file again.',
    });
  });

  it("asks for a new upload on a retry even when another tenant stored the same bytes: the store's copy is not the file's", async () => {
    const other = await server.tenant('other');
    const nonce = `"nonce": "${Math.random()}"`;
    // application/ld+json is believed of text that begins like JSON, and is not allowed.
    const rejectThenRetry = async (content: string) => {
      const { body } = await uploadFile(server.url, key, content, { type: 'application/ld+json' });
      const fileId = body.data.uploadFile.file.id;
      expect(await waitForTerminal(server.url, key, fileId)).toMatchObject({ status: 'FAILED', message: 'Files of type application/ld+json are not accepted.' });
      await settled(fileId);
      await graphql(server.url, key, RETRY, { id: fileId });
      return waitForTerminal(server.url, key, fileId);
    };
    const theirs = `{"salary": 1, ${nonce}}`;
    const stored = await uploadFile(server.url, other, theirs, { type: 'application/json' });
    expect(await waitForTerminal(server.url, other, stored.body.data.uploadFile.file.id)).toMatchObject({ status: 'COMPLETED' });
    expect(fs.existsSync(blobPath(sha256(theirs)))).toBe(true);

    const noticed = { attempt: 2, status: 'FAILED', message: 'The uploaded bytes are no longer available. Upload the file again.' };
    expect(await rejectThenRetry(`{"salary": 2, ${nonce}}`)).toMatchObject(noticed);
    expect(await rejectThenRetry(theirs)).toMatchObject(noticed);
  });

  it('is kept when processing failed for another reason, so that retryFile can finish it', async () => {
    const content = 'kept for a retry\n';
    // A file where the blob directory belongs: storing fails.
    const blobs = path.join(server.dataDir, 'blobs');
    fs.renameSync(blobs, `${blobs}.aside`);
    fs.writeFileSync(blobs, 'in the way');
    try {
      const { fileId, status } = await processed(content);
      expect(status.status).toBe('FAILED');
      expect(fs.readFileSync(incomingPath(fileId), 'utf8')).toBe(content);

      fs.rmSync(blobs);
      fs.renameSync(`${blobs}.aside`, blobs);
      // Named in upper case, as ids may be: the worker must still find the file's bytes.
      const { body } = await graphql(server.url, key, RETRY, { id: fileId.toUpperCase() });
      expect(body.data.retryFile.attempt).toBe(2);
      expect(await waitForTerminal(server.url, key, fileId)).toMatchObject({ status: 'COMPLETED', attempt: 2 });
      expect(fs.existsSync(incomingPath(fileId))).toBe(false);
      expect(fs.readFileSync(blobPath(sha256(content)), 'utf8')).toBe(content);
    } finally {
      if (fs.existsSync(`${blobs}.aside`)) {
        fs.rmSync(blobs, { force: true });
        fs.renameSync(`${blobs}.aside`, blobs);
      }
    }
  });

  it('is kept when a late give-up of an earlier attempt refuses it: the retry may be reading it', async () => {
    const content = 'read by the retry\n';
    const blobs = path.join(server.dataDir, 'blobs');
    fs.renameSync(blobs, `${blobs}.aside`);
    fs.writeFileSync(blobs, 'in the way');
    try {
      const { fileId } = await processed(content);
      await graphql(server.url, key, RETRY, { id: fileId });
      const { prisma, status, blobs: store } = server.service.services;
      const task = processFileTask({ prisma, status, blobs: store, allowedTypes: ['text/*'], log: createLogger('silent') });
      await task.onGiveUp({ fileId, attempt: 1 }, new RejectedFileError('late verdict of attempt 1'));
      const after = await waitForTerminal(server.url, key, fileId);
      expect(after).toMatchObject({ attempt: 2 });
      expect(after.message).not.toMatch(/late verdict/);
      expect(fs.readFileSync(incomingPath(fileId), 'utf8')).toBe(content);
    } finally {
      fs.rmSync(blobs, { force: true });
      fs.renameSync(`${blobs}.aside`, blobs);
    }
  });
});

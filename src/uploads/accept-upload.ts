import { randomUUID } from 'node:crypto';
import type { FileUpload } from 'graphql-upload-minimal';
import type { PrismaClient } from '../db/database.js';
import { addJob } from '../queue/job-sql.js';
import { PROCESS_FILE_TASK } from '../processing/process-file.js';
import type { StatusEvent } from '../status/model.js';
import type { StatusRecorder } from '../status/record-status-change.js';
import type { StatusBus } from '../status/status-bus.js';
import type { BlobStore } from '../storage/blob-store.js';
import { FileTooLargeError, IncompleteUploadError, MissingFileError, tooManyFilesRefusal } from './errors.js';
import type { WebhookTarget } from './webhook-target.js';

export interface UploadDeps {
  prisma: PrismaClient;
  status: StatusRecorder;
  bus: StatusBus;
  blobs: BlobStore;
  maxUploadBytes: number;
  jobMaxAttempts: number;
  /** Refuses a webhook URL that may not be called (see webhooks/url-guard). */
  checkWebhookUrl(url: string): Promise<unknown>;
}

export interface AcceptedFile {
  id: string;
  tenantId: string;
  filename: string;
  mimeType: string;
  size: bigint;
  sha256: string;
  createdAt: Date;
  /** Set when the receiver answered 410 Gone: a new file's is null. */
  webhookDisabledAt: Date | null;
  status: StatusEvent;
}

/**
 * What is kept of a name the client gave: no control characters (PostgreSQL text cannot hold a
 * NUL, which a multipart `filename*` can carry), and at most 255 characters, never half of one.
 */
function storableText(given: string | undefined, fallback: string): string {
  const cleaned = (given ?? '').replace(/[\u0000-\u001f\u007f]/g, '');
  return Array.from(cleaned || fallback).slice(0, 255).join('');
}

/** The limit a refusal of graphql-upload-minimal's says was broken, or null for another failure. */
function limitBroken(error: unknown, maxUploadBytes: number): Error | null {
  return tooManyFilesRefusal(error) ?? ((error as { status?: number }).status === 413 ? new FileTooLargeError(maxUploadBytes) : null);
}

/**
 * Streams an upload to disk while hashing it, then creates the file, its first status and its
 * processing job in one transaction. On any failure — too large, aborted, database down — no
 * bytes and no rows are left behind.
 */
export async function acceptUpload(
  deps: UploadDeps,
  tenantId: string,
  upload: Promise<FileUpload>,
  webhook: WebhookTarget | null,
): Promise<AcceptedFile> {
  const file = await upload.catch((error: Error) => {
    throw limitBroken(error, deps.maxUploadBytes) ?? new MissingFileError(error.message);
  });
  let source;
  try {
    source = file.createReadStream();
  } catch (error) {
    // The whole body may have been parsed before the resolver ran: a limit was hit, or the body
    // ended, already.
    throw limitBroken(error, deps.maxUploadBytes) ?? new IncompleteUploadError((error as Error).message);
  }
  // graphql-upload-minimal ends a stream that hits the limit as if it were complete.
  source.once('limit', () => source.destroy(new FileTooLargeError(deps.maxUploadBytes)));
  let sourceFailure: unknown;
  source.once('error', (error) => (sourceFailure = error));
  const stored = await deps.blobs.writeStream(source).catch((error: unknown) => {
    // The request's own failure (cut short, or malformed after the file began), not the disk's.
    if (error === sourceFailure && !(error instanceof FileTooLargeError)) throw new IncompleteUploadError((error as Error).message);
    throw error;
  });

  const id = randomUUID();
  const incoming = deps.blobs.incomingPath(id);
  const filename = storableText(file.filename, 'upload');
  const mimeType = storableText(file.mimetype, 'application/octet-stream');
  try {
    await deps.blobs.moveInto(stored.path, incoming);
    const status = await deps.prisma.$transaction(async (tx) => {
      const row = await tx.file.create({
        data: {
          id,
          tenantId,
          filename,
          mimeType,
          size: BigInt(stored.size),
          sha256: stored.sha256,
          webhookUrl: webhook?.url ?? null,
          webhookEvents: webhook?.events ?? [],
        },
      });
      const queued = await deps.status.recordQueued(tx, row, {});
      await addJob(tx, { task: PROCESS_FILE_TASK, payload: { fileId: id, attempt: 1 }, key: `file:${id}`, maxAttempts: deps.jobMaxAttempts });
      return { row, queued };
    });
    deps.status.publish(status.queued);
    deps.bus.publishJobsQueued();
    return { ...status.row, status: status.queued };
  } catch (error) {
    await deps.blobs.remove(stored.path);
    await deps.blobs.remove(incoming);
    throw error;
  }
}

/** Queues a FAILED file again as its next attempt; null when the tenant has no such FAILED file. */
export async function retryFile(deps: UploadDeps, tenantId: string, fileId: string): Promise<StatusEvent | null> {
  const event = await deps.prisma.$transaction(async (tx) => {
    const file = await tx.file.findUnique({ where: { id: fileId }, select: { tenantId: true } });
    if (!file || file.tenantId !== tenantId) return null;
    const retried = await deps.status.recordRetry(tx, fileId);
    if (retried) {
      await addJob(tx, { task: PROCESS_FILE_TASK, payload: { fileId, attempt: retried.attempt }, key: `file:${fileId}`, maxAttempts: deps.jobMaxAttempts });
    }
    return retried;
  });
  if (!event) return null;
  deps.status.publish(event);
  deps.bus.publishJobsQueued();
  return event;
}

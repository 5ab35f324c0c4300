import fs from 'node:fs';
import type { PrismaClient } from '../db/database.js';
import type { Logger } from '../log.js';
import { PermanentJobError, type TaskContext, type TaskHandler } from '../queue/worker.js';
import { STAGES, isTerminal, type FileState, type Stage } from '../status/model.js';
import type { StatusChange, StatusRecorder } from '../status/record-status-change.js';
import type { BlobStore } from '../storage/blob-store.js';
import { converterFor } from './converters.js';
import { isAllowedType, sniffType } from './sniff-type.js';

export const PROCESS_FILE_TASK = 'process-file';

export interface ProcessFilePayload {
  fileId: string;
  /** The attempt the job runs: its status changes are dropped once the file is on another. */
  attempt: number;
}

/** Progress at the start of each stage; CONVERTING fills the span up to STORING as it reads. */
const STAGE_PROGRESS: Record<Stage, number> = { QUEUED: 0, VALIDATING: 5, CONVERTING: 10, STORING: 80, DONE: 100 };

/** A frequent progress update costs a transaction and an event per subscriber: send fewer. */
const PROGRESS_STEP = 5;
const PROGRESS_INTERVAL_MS = 500;

/** Ends processing for good, with a message that is safe to show the file's owner. */
export class RejectedFileError extends PermanentJobError {}

/** Records a PROCESSING change in a stage, unless the job resumed past it: a stage never goes back within an attempt. */
type Announce = (stage: Stage, change?: Partial<StatusChange>) => Promise<void>;

interface ProcessFileDeps {
  prisma: PrismaClient;
  status: StatusRecorder;
  blobs: BlobStore;
  allowedTypes: string[];
  log: Logger;
}

export function processFileTask(deps: ProcessFileDeps): TaskHandler {
  return {
    run: (payload, context) => processFile(deps, payload as ProcessFilePayload, context),

    async onGiveUp(payload, error) {
      const { fileId, attempt } = payload as ProcessFilePayload;
      const rejected = error instanceof RejectedFileError;
      const message = rejected
        ? error.message
        : 'Processing failed after several attempts because of an internal error. Retry the file later.';
      const failed = await deps.status.record({ fileId, attempt, status: 'FAILED', progress: 0, message });
      // A retry would give rejected bytes the same verdict; any other failure keeps them for retryFile.
      // Not recorded: the file is on another attempt, which may be reading them.
      if (rejected && failed) await deps.blobs.remove(deps.blobs.incomingPath(fileId));
    },
  };
}

/**
 * Runs the stages of one file. Every stage is idempotent: a job taken over after a crash runs them
 * all again, and only the stages from the one already reported on are announced again, so the
 * stage never goes back within an attempt.
 */
async function processFile(deps: ProcessFileDeps, { fileId, attempt }: ProcessFilePayload, { signal }: TaskContext): Promise<void> {
  const file = await deps.prisma.file.findUnique({ where: { id: fileId }, include: { status: true } });
  if (!file?.status || isTerminal(file.status.status as FileState)) return;
  const reached = STAGES.indexOf(file.status.stage as Stage);
  const announce: Announce = async (stage, change = {}) => {
    if (STAGES.indexOf(stage) < reached) return;
    await deps.status.record({ fileId, attempt, status: 'PROCESSING', stage, progress: STAGE_PROGRESS[stage], ...change });
  };

  const incoming = deps.blobs.incomingPath(fileId);
  const original = fs.existsSync(incoming)
    ? incoming
    : reached >= STAGES.indexOf('STORING') || (await reachedStoring(deps.prisma, fileId))
      ? deps.blobs.blobPath(file.sha256)
      : null;
  if (!original || !fs.existsSync(original)) throw new RejectedFileError('The uploaded bytes are no longer available. Upload the file again.');

  await announce('VALIDATING');
  const mimeType = await sniffType(original, file.mimeType);
  if (!isAllowedType(mimeType, deps.allowedTypes)) {
    throw new RejectedFileError(`Files of type ${mimeType} are not accepted.`);
  }
  await announce('VALIDATING', { metadata: { mimeType, size: Number(file.size), sha256: file.sha256 } });

  await announce('CONVERTING');
  const converter = converterFor(mimeType);
  if (converter) {
    const output = deps.blobs.tmpPath();
    const reporter = progressReporter(announce, 'CONVERTING', STAGE_PROGRESS.STORING);
    try {
      const text = await converter.convert(original, output, { signal, onProgress: reporter.report });
      await reporter.flush();
      await deps.blobs.storeBlob(output, text.sha256);
      await announce('CONVERTING', {
        progress: STAGE_PROGRESS.STORING - 1,
        metadata: { textLength: text.textLength, words: text.words, textSha256: text.sha256 },
      });
    } finally {
      await deps.blobs.remove(output);
    }
  }

  await announce('STORING');
  await deps.blobs.storeBlob(original, file.sha256);
  await deps.status.record({ fileId, attempt, status: 'COMPLETED', stage: 'DONE', progress: 100 });
}

/**
 * Whether an attempt of the file reached STORING, which moves its bytes into the blob store: a job
 * resumed after that, or a retry of an attempt that failed after it, reads them there. Only then:
 * before, a blob of the same content is another file's, maybe another tenant's, and a retry that
 * read it would tell whether someone else holds these bytes.
 */
async function reachedStoring(prisma: PrismaClient, fileId: string): Promise<boolean> {
  return (await prisma.fileStatusEvent.findFirst({ where: { fileId, stage: 'STORING' }, select: { id: true } })) !== null;
}

/** Reports a stage's progress in steps, never more than one write at a time. */
function progressReporter(announce: Announce, stage: Stage, to: number) {
  const from = STAGE_PROGRESS[stage];
  let reported = from;
  let lastAt = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  let busy = false;
  return {
    report(fraction: number) {
      const progress = Math.floor(from + (to - from - 1) * Math.min(1, fraction));
      const due = progress - reported >= PROGRESS_STEP || (progress > reported && Date.now() - lastAt >= PROGRESS_INTERVAL_MS);
      if (!due || busy) return;
      busy = true;
      reported = progress;
      lastAt = Date.now();
      inFlight = announce(stage, { progress })
        // A lost progress update is harmless: the next one, or the stage's end, supersedes it.
        .catch(() => {})
        .finally(() => (busy = false));
    },
    flush: () => inFlight,
  };
}

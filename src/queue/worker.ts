import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../db/database.js';
import { LostClaimRecovery } from '../db/lost-claim-recovery.js';
import { retryWrite } from '../db/retry-write.js';
import type { Logger } from '../log.js';
import { WakeSignal } from '../wake-signal.js';
import {
  abandonJob,
  claimJobs,
  completeJob,
  releaseJobs,
  releaseJobsNotRunning,
  renewLeases,
  retryJobLater,
  type ClaimedJob,
} from './job-sql.js';

/** Thrown by a task when trying again cannot help (bad input): the job fails at once. */
export class PermanentJobError extends Error {}

export interface TaskContext {
  /** Aborted when the worker stops: the task should give up quickly, its job is released. */
  signal: AbortSignal;
  attempt: number;
}

export interface TaskHandler {
  run(payload: unknown, context: TaskContext): Promise<void>;
  /** Called once when the job fails for good: a permanent error, or its last attempt. */
  onGiveUp(payload: unknown, error: unknown): Promise<void>;
}

export interface WorkerOptions {
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  retryBaseMs: number;
}

/** Claims jobs and runs them with the task handlers it is given; it knows no task itself. */
export class Worker {
  readonly id = `worker-${randomUUID()}`;
  private running = new Map<bigint, AbortController>();
  private lostClaims = new LostClaimRecovery(() => releaseJobsNotRunning(this.prisma, this.id, [...this.running.keys()]));
  private stopping = false;
  private signal = new WakeSignal();
  private loop: Promise<void> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private idle: (() => void) | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly tasks: Record<string, TaskHandler>,
    private readonly options: WorkerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.leaseTimer = setInterval(() => {
      renewLeases(this.prisma, this.id, [...this.running.keys()], this.options.leaseMs).catch((error) =>
        this.log.error({ err: error }, 'could not renew job leases'),
      );
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    this.loop = this.claimLoop();
  }

  /** New work was queued: claim now instead of at the next poll. */
  wake(): void {
    this.signal.wake();
  }

  private async claimLoop(): Promise<void> {
    while (!this.stopping) {
      await this.lostClaims.settle();
      const free = this.options.concurrency - this.running.size;
      let claimed: ClaimedJob[] = [];
      if (free > 0) {
        try {
          claimed = await this.lostClaims.claim(() => claimJobs(this.prisma, this.id, free, this.options.leaseMs));
        } catch (error) {
          if (!this.stopping) this.log.error({ err: error }, 'could not claim jobs');
        }
      }
      for (const job of claimed) this.runJob(job);
      if (claimed.length === free && free > 0) continue;
      await this.signal.pause(this.options.pollMs);
    }
  }

  private runJob(job: ClaimedJob): void {
    const controller = new AbortController();
    this.running.set(job.id, controller);
    void this.execute(job, controller.signal).finally(() => {
      // A run still writing its outcome again after a lost connection may end after a later run of the job began here.
      if (this.running.get(job.id) === controller) this.running.delete(job.id);
      if (this.running.size === 0) this.idle?.();
      this.wake();
    });
  }

  // Whatever the task does, the job is always completed, retried, failed or released here.
  private async execute(job: ClaimedJob, signal: AbortSignal): Promise<void> {
    const handler = this.tasks[job.task];
    const { leaseMs } = this.options;
    try {
      if (!handler) throw new PermanentJobError(`no handler for task "${job.task}"`);
      await handler.run(job.payload, { signal, attempt: job.attempts });
      await retryWrite(() => completeJob(this.prisma, this.id, job), leaseMs, signal);
    } catch (error) {
      if (signal.aborted) {
        await releaseJobs(this.prisma, this.id, [job.id]).catch(() => {});
        return;
      }
      const final = error instanceof PermanentJobError || job.attempts >= job.maxAttempts;
      this.log.warn({ err: error, jobId: String(job.id), task: job.task, attempt: job.attempts, final }, 'job failed');
      try {
        if (final) {
          if (handler) await retryWrite(() => handler.onGiveUp(job.payload, error), leaseMs, signal);
          await retryWrite(() => abandonJob(this.prisma, this.id, job), leaseMs, signal);
        } else {
          await retryWrite(() => retryJobLater(this.prisma, this.id, job, String(error), this.options.retryBaseMs), leaseMs, signal);
        }
      } catch (bookkeepingError) {
        // The lease lapses and another attempt picks the job up.
        this.log.error({ err: bookkeepingError, jobId: String(job.id) }, 'could not record job failure');
      }
    }
  }

  /** Stops claiming, gives running jobs `graceMs` to finish, then aborts and releases the rest. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    if (this.running.size > 0) {
      const idle = new Promise<void>((resolve) => (this.idle = resolve));
      const timer = setTimeout(() => {
        for (const controller of this.running.values()) controller.abort();
      }, graceMs);
      await idle;
      clearTimeout(timer);
    }
    clearInterval(this.leaseTimer);
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/log.js';
import { addJob, claimJobs, completeJob } from '../../src/queue/job-sql.js';
import { PermanentJobError, Worker, type TaskHandler } from '../../src/queue/worker.js';
import { openTestDatabase } from '../helpers/test-database.js';

let db: Database;
let closeDatabase: () => Promise<void>;
const log = createLogger('silent');
const workers: Worker[] = [];

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('worker'));
});
beforeEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop(0)));
  await db.prisma.job.deleteMany();
});
afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop(0)));
  await closeDatabase();
});

const options = { concurrency: 4, leaseMs: 2_000, pollMs: 20, retryBaseMs: 20 };

function startWorker(tasks: Record<string, TaskHandler>, overrides: Partial<typeof options> = {}): Worker {
  const worker = new Worker(db.prisma, tasks, { ...options, ...overrides }, log);
  worker.start();
  workers.push(worker);
  return worker;
}

async function queue(task: string, key: string, maxAttempts = 3) {
  await db.prisma.$transaction((tx) => addJob(tx, { task, payload: { key }, key, maxAttempts }));
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('Worker', () => {
  it('runs a job queued again while its last attempt was being given up, with retries of its own', async () => {
    let runs = 0;
    const worker = startWorker({
      once: {
        run: async () => {
          runs++;
          if (runs === 1) throw new PermanentJobError('refused');
          // The second job fails once: it must still be in the table to be retried.
          if (runs === 2) {
            await sleep(200);
            throw new Error('transient');
          }
        },
        // As retryFile does after the FAILED that giving up records, before the job is removed;
        // the same worker takes the new job before its old one is abandoned.
        onGiveUp: async () => {
          await queue('once', 'given-up');
          worker.wake();
          await sleep(100);
        },
      },
    });
    await queue('once', 'given-up');
    await until(() => runs === 3);
    await until(async () => (await db.prisma.job.count()) === 0);
  });

  it('retries a failing task with growing delays, then gives up once', async () => {
    const attempts: number[] = [];
    const givenUp: unknown[] = [];
    startWorker({
      flaky: {
        run: async (_payload, { attempt }) => {
          attempts.push(Date.now());
          throw new Error(`transient ${attempt}`);
        },
        onGiveUp: async (_payload, error) => void givenUp.push(error),
      },
    });
    await queue('flaky', 'a', 3);
    // The job row goes once onGiveUp has returned.
    await until(async () => givenUp.length === 1 && (await db.prisma.job.count()) === 0);
    expect(attempts).toHaveLength(3);
    // 20 ms, then 40 ms: each wait at least the doubled base.
    expect(attempts[1] - attempts[0]).toBeGreaterThanOrEqual(15);
    expect(attempts[2] - attempts[1]).toBeGreaterThanOrEqual(35);
    expect(String(givenUp[0])).toMatch(/transient 3/);
  });

  it('succeeds on a later attempt without giving up', async () => {
    let runs = 0;
    const givenUp: unknown[] = [];
    startWorker({
      once: {
        run: async () => {
          if (++runs === 1) throw new Error('first time fails');
        },
        onGiveUp: async (_payload, error) => void givenUp.push(error),
      },
    });
    await queue('once', 'b');
    await until(async () => runs === 2 && (await db.prisma.job.count()) === 0);
    expect(givenUp).toEqual([]);
  });

  it('gives up at once on a permanent error', async () => {
    let runs = 0;
    const givenUp: unknown[] = [];
    startWorker({
      bad: {
        run: async () => {
          runs++;
          throw new PermanentJobError('bad input');
        },
        onGiveUp: async (_payload, error) => void givenUp.push(error),
      },
    });
    await queue('bad', 'c', 5);
    await until(() => givenUp.length === 1);
    expect(runs).toBe(1);
  });

  it('never runs one job in two workers at once', async () => {
    const running = new Set<string>();
    const ran: string[] = [];
    let overlap = false;
    const task: TaskHandler = {
      run: async (payload) => {
        const key = (payload as { key: string }).key;
        if (running.has(key)) overlap = true;
        running.add(key);
        await sleep(5);
        running.delete(key);
        ran.push(key);
      },
      onGiveUp: async () => {},
    };
    startWorker({ work: task });
    startWorker({ work: task });
    for (let index = 0; index < 40; index++) await queue('work', `k${index}`);
    await until(() => ran.length === 40);
    expect(overlap).toBe(false);
    expect(new Set(ran).size).toBe(40);
  });

  it("takes over a dead worker's job once its lease lapses", async () => {
    await queue('work', 'orphan');
    // A worker that claimed the job and died: it will never renew the lease.
    const [claimed] = await claimJobs(db.prisma, 'dead-worker', 1, 300);
    expect(claimed).toBeDefined();
    const ran: number[] = [];
    startWorker({ work: { run: async () => void ran.push(Date.now()), onGiveUp: async () => {} } });
    const start = Date.now();
    await until(() => ran.length === 1);
    expect(ran[0] - start).toBeGreaterThanOrEqual(200);
  });

  it('renews the lease of a long task, so nobody else takes it', async () => {
    let runs = 0;
    const slow: TaskHandler = {
      run: async () => {
        runs++;
        await sleep(900);
      },
      onGiveUp: async () => {},
    };
    startWorker({ slow }, { leaseMs: 300 });
    await queue('slow', 'long');
    await until(() => runs === 1);
    startWorker({ slow }, { leaseMs: 300 });
    await until(async () => (await db.prisma.job.count()) === 0, 5_000);
    expect(runs).toBe(1);
  });

  it('completes a job whose task finished after the stop gave up waiting, instead of running it again', async () => {
    let runs = 0;
    const stubborn: TaskHandler = {
      // Pays no heed to the stop's abort, and succeeds.
      run: async () => {
        runs++;
        await sleep(300);
      },
      onGiveUp: async () => {},
    };
    const worker = startWorker({ stubborn });
    await queue('stubborn', 'late');
    await until(() => runs === 1);
    await worker.stop(50);
    expect(await db.prisma.job.count()).toBe(0);
  });

  it("writes a job's outcome only to the claim it names, not to a later claim of the same job", async () => {
    await queue('work', 'reclaimed');
    const [first] = await claimJobs(db.prisma, 'worker-a', 1, 60_000);
    // Worker A's retry was committed but its answer lost; A claimed the job again since.
    await db.prisma.job.update({ where: { id: first.id }, data: { lockedBy: null, lockedUntil: null } });
    const [second] = await claimJobs(db.prisma, 'worker-a', 1, 60_000);
    expect(second.attempts).toBe(first.attempts + 1);

    await completeJob(db.prisma, 'worker-a', first);
    expect(await db.prisma.job.count()).toBe(1);
    await completeJob(db.prisma, 'worker-a', second);
    expect(await db.prisma.job.count()).toBe(0);
  });

  it('takes back at once the jobs a claim leased although its answer was lost', async () => {
    await queue('work', 'lost-answer');
    const ran: number[] = [];
    const worker = new Worker(db.prisma, { work: { run: async () => void ran.push(Date.now()), onGiveUp: async () => {} } }, { ...options, leaseMs: 60_000 }, log);
    workers.push(worker);
    // The claim was committed and its answer lost with the connection: the job is leased for a
    // minute to a worker that does not know it.
    const [lost] = await claimJobs(db.prisma, worker.id, 1, 60_000);
    expect(lost).toBeDefined();
    // The worker's own claims fail for a moment, as they would while the connection is down.
    await db.prisma.$executeRawUnsafe('ALTER TABLE job RENAME TO job_away');
    worker.start();
    await sleep(150);
    await db.prisma.$executeRawUnsafe('ALTER TABLE job_away RENAME TO job');
    await until(() => ran.length === 1, 3_000);
    await until(async () => (await db.prisma.job.count()) === 0, 3_000);
  });
});

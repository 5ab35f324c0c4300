import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { redeliverFailed } from '../../src/webhooks/delivery-sql.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { newDispatcher } from '../helpers/webhook-dispatcher.js';
import { receiversClosedAfterEach } from '../helpers/webhook-receiver.js';

// Two processes on one server: only PostgreSQL has them.
describe.skipIf(!process.env.TEST_DATABASE_URL)('a status change committed by another process while an attempt is recorded', () => {
  let db: Database;
  let url: string;
  let closeDatabase: () => Promise<void>;
  const startReceiver = receiversClosedAfterEach();

  beforeAll(async () => {
    const opened = await openTestDatabase('concurrent-status-change');
    ({ db, close: closeDatabase } = opened);
    url = opened.url!;
  });
  afterAll(async () => {
    await closeDatabase();
  });

  const deliveriesOf = (fileId: string) => db.prisma.webhookDelivery.findMany({ where: { fileId }, orderBy: { sequence: 'asc' } });

  /** Whether a session waits for the transaction of `other` (the attempt's record, for its file's row). */
  async function waitedFor(other: pg.Client): Promise<boolean> {
    const { rows } = await other.query('SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))');
    return rows[0].waiting > 0;
  }

  it('supersedes the failed attempt it was sending, and the newer change goes out at once, not after the retry', async () => {
    // The first request fails after 300 ms; the rest succeed.
    const receiver = await startReceiver((_request, index, res) => void setTimeout(() => res.writeHead(index === 0 ? 500 : 204).end(), index === 0 ? 300 : 0));
    const tenant = await db.prisma.tenant.create({ data: { name: 'concurrent' } });
    const recorder = new StatusRecorder(db.prisma, createStatusBus());
    const fileId = await db.prisma.$transaction(async (tx) => {
      const file = await tx.file.create({
        data: { tenantId: tenant.id, filename: 'f.txt', mimeType: 'text/plain', size: 1n, sha256: '0'.repeat(64), webhookUrl: receiver.url, webhookEvents: ['file.processing', 'file.completed'] },
      });
      await recorder.recordQueued(tx, file, {});
      return file.id;
    });
    await db.prisma.webhookDelivery.updateMany({ where: { fileId }, data: { state: 'DELIVERED', nextAttemptAt: null } });
    // A retry 5 s away: the newer change must not wait for it.
    const { dispatcher, close } = newDispatcher(db, { WEBHOOK_RETRY_SCHEDULE: '0,5s' });
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await recorder.record({ fileId, status: 'PROCESSING', stage: 'CONVERTING', progress: 10 });
      dispatcher.start();
      await receiver.until((received) => received.length === 1);
      // Another process completes the file while the attempt is under way, and commits only once
      // the attempt's failure is being recorded.
      await other.query('BEGIN');
      await other.query(`SELECT * FROM record_status_event($1::uuid, 'COMPLETED', 'DONE', 100, NULL, '{}'::jsonb, NULL, NULL, NULL)`, [fileId]);
      await expect.poll(() => waitedFor(other), { timeout: 5_000 }).toBe(true);
      await other.query('COMMIT');

      await receiver.until((received) => received.length === 2, 3_000);
      expect(receiver.payloads().map((payload) => `${payload.type}#${payload.data.sequence}`)).toEqual(['file.processing#2', 'file.completed#3']);
      await expect.poll(async () => (await deliveriesOf(fileId)).map((delivery) => [delivery.sequence, delivery.state, delivery.discardReason]), { timeout: 3_000 }).toEqual([
        [1, 'DELIVERED', null],
        [2, 'DISCARDED', 'superseded'],
        [3, 'DELIVERED', null],
      ]);
    } finally {
      await other.end();
      await close();
    }
  });

  it('redelivering what failed waits for a change under way, and leaves the failure that change follows', async () => {
    const tenant = await db.prisma.tenant.create({ data: { name: 'redeliver-concurrent' } });
    const recorder = new StatusRecorder(db.prisma, createStatusBus());
    const since = new Date(Date.now() - 1_000);
    const fileId = await db.prisma.$transaction(async (tx) => {
      const file = await tx.file.create({
        data: { tenantId: tenant.id, filename: 'f.txt', mimeType: 'text/plain', size: 1n, sha256: '0'.repeat(64), webhookUrl: 'http://127.0.0.1:9/hooks', webhookEvents: ['file.processing'] },
      });
      await recorder.recordQueued(tx, file, {});
      return file.id;
    });
    // Its first state failed for good while the receiver was away.
    await db.prisma.webhookDelivery.updateMany({ where: { fileId }, data: { state: 'FAILED', nextAttemptAt: null } });
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // Another process records the file's next state, and commits only once the redelivery runs.
      await other.query('BEGIN');
      await other.query(`SELECT * FROM record_status_event($1::uuid, 'PROCESSING', 'CONVERTING', 20, NULL, '{}'::jsonb, NULL, NULL, NULL)`, [fileId]);
      const redelivered = redeliverFailed(db.prisma, tenant.id, since);
      await expect.poll(() => waitedFor(other), { timeout: 5_000 }).toBe(true);
      await other.query('COMMIT');

      // Queued again, the first state would have gone out after the newer one.
      expect(await redelivered).toBe(0);
      expect((await deliveriesOf(fileId)).map((delivery) => [delivery.sequence, delivery.state])).toEqual([
        [1, 'FAILED'],
        [2, 'PENDING'],
      ]);
    } finally {
      await other.end();
    }
  });
});


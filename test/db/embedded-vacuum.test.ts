import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { startEmbeddedVacuum } from '../../src/db/embedded-vacuum.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';

// PostgreSQL servers vacuum themselves; this is the embedded database's stand-in for that.
describe.skipIf(process.env.TEST_DATABASE_URL)('embedded vacuum', () => {
  let dataDir: string;
  let db: Database;
  let stopVacuum = async () => {};
  let recorder: StatusRecorder;
  let fileId: string;
  let progress = 0;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'embedded-vacuum-'));
    db = await openDatabase({ dataDir, databaseUrl: undefined });
    await applyMigrations(db);
    recorder = new StatusRecorder(db.prisma, createStatusBus());
    const tenantId = (await db.prisma.tenant.create({ data: { name: 'vacuum' } })).id;
    fileId = await db.prisma.$transaction(async (tx) => {
      const file = await tx.file.create({
        data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x', webhookUrl: 'https://receiver.example/hook', webhookEvents: ['file.processing'] },
      });
      return (await recorder.recordQueued(tx, file, {})).fileId;
    });
  });
  afterAll(async () => {
    await stopVacuum();
    await db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const changes = async (count: number) => {
    for (let i = 0; i < count; i++) await recorder.record({ fileId, status: 'PROCESSING', progress: Math.min(99, ++progress / 10) });
  };
  /** Dead row versions in the outbox table: each change's supersede step leaves one behind. */
  const deadDeliveryRows = async () => {
    // The statistics of this session's last writes reach the view only once flushed.
    await db.prisma.$queryRaw`SELECT pg_stat_force_next_flush()::text`;
    const [row] = await db.prisma.$queryRaw<{ dead: bigint }[]>`
      SELECT n_dead_tup AS dead FROM pg_stat_user_tables WHERE relname = 'webhook_delivery'`;
    return Number(row.dead);
  };

  const cleared = async (what: string) => {
    const deadline = Date.now() + 10_000;
    while ((await deadDeliveryRows()) > 10) {
      if (Date.now() > deadline) throw new Error(`${what}: dead rows still there after 10 s`);
      await sleep(50);
    }
  };

  it('clears the dead row versions that status changes leave in the outbox, again and again', async () => {
    await changes(300);
    expect(await deadDeliveryRows()).toBeGreaterThanOrEqual(290);
    stopVacuum = startEmbeddedVacuum(db, 200, createLogger('silent'));
    await cleared('first round');
    for (let round = 1; round < 3; round++) {
      await changes(300);
      await cleared(`round ${round}`);
    }
  });
});

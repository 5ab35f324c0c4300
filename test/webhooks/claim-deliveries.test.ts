import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { claimDeliveries, recordAttempts } from '../../src/webhooks/delivery-sql.js';
import { createTestDatabase } from '../helpers/test-database.js';

let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let recorder: StatusRecorder;
const files: string[] = [];

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'claim-deliveries-'));
  database = await createTestDatabase();
  db = await openDatabase({ dataDir, databaseUrl: database.url });
  await applyMigrations(db);
  recorder = new StatusRecorder(db.prisma, createStatusBus());
  const tenantId = (await db.prisma.tenant.create({ data: { name: 'claims' } })).id;
  for (let i = 0; i < 20; i++) {
    files.push(
      await db.prisma.$transaction(async (tx) => {
        const file = await tx.file.create({
          data: {
            tenantId,
            filename: 'f',
            mimeType: 'text/plain',
            size: 1n,
            sha256: 'x',
            webhookUrl: `https://receiver-${i}.example/hook`,
            webhookEvents: ['file.processing', 'file.completed', 'file.failed'],
          },
        });
        return (await recorder.recordQueued(tx, file, {})).fileId;
      }),
    );
  }
});
afterAll(async () => {
  await db.close();
  await database.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('claimDeliveries', () => {
  it('hands over every delivery it leases, while status changes commit at the same time', async () => {
    const dispatcherId = 'test-dispatcher';
    const log = createLogger('silent');
    let producing = true;
    const produce = async (offset: number) => {
      for (let step = 1; step <= 40; step++) {
        for (let i = offset; i < files.length; i += 2) await recorder.record({ fileId: files[i], status: 'PROCESSING', progress: step });
      }
    };
    const producers = Promise.all([produce(0), produce(1)]).finally(() => (producing = false));
    let handedOver = 0;
    const claimRound = async () => {
      const claimed = await claimDeliveries(db.prisma, dispatcherId, 64, 60_000, []);
      handedOver += claimed.length;
      await recordAttempts(
        db.prisma,
        dispatcherId,
        claimed.map((delivery) => ({
          delivery,
          attempt: { attemptedAt: new Date(), durationMs: 1, responseStatus: 204, responseBody: null, error: null },
          resolution: { state: 'DELIVERED' },
        })),
        log,
      );
      return claimed.length;
    };
    while (producing) await claimRound();
    await producers;
    while ((await claimRound()) > 0);

    // A delivery leased but not handed over would sit in SENDING until its lease lapsed.
    const states = await db.prisma.webhookDelivery.groupBy({ by: ['state'], _count: true });
    expect(states.filter((row) => row.state === 'SENDING' || row.state === 'PENDING')).toEqual([]);
    const leased = await db.prisma.webhookDelivery.aggregate({ _sum: { attemptCount: true } });
    expect(handedOver).toBe(leased._sum.attemptCount);
    expect(handedOver).toBeGreaterThan(0);
  });
});

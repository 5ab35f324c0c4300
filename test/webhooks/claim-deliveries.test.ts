import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { claimDeliveries, recordAttempts } from '../../src/webhooks/delivery-sql.js';
import { openTestDatabase } from '../helpers/test-database.js';

let db: Database;
let closeDatabase: () => Promise<void>;
let recorder: StatusRecorder;
const files: string[] = [];

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('claim-deliveries'));
  recorder = new StatusRecorder(db.prisma, createStatusBus());
  const tenantId = (await db.prisma.tenant.create({ data: { name: 'claims' } })).id;
  for (let i = 0; i < 20; i++) files.push(await fileWithWebhook(tenantId, `https://receiver-${i}.example/hook`));
});
/** A file with a webhook, and its first status: one delivery due now. */
async function fileWithWebhook(tenantId: string, webhookUrl: string): Promise<string> {
  return db.prisma.$transaction(async (tx) => {
    const file = await tx.file.create({
      data: {
        tenantId,
        filename: 'f',
        mimeType: 'text/plain',
        size: 1n,
        sha256: 'x',
        webhookUrl,
        webhookEvents: ['file.processing', 'file.completed', 'file.failed'],
      },
    });
    return (await recorder.recordQueued(tx, file, {})).fileId;
  });
}

const unlimited = { limit: 64, perHost: 64, perTenant: 64, hostsInFlight: new Map(), tenantsInFlight: new Map() };

/** Settles whatever an earlier test left open, so that a claim sees only what the test makes. */
async function settleOpenDeliveries(): Promise<void> {
  await db.prisma.webhookDelivery.updateMany({ where: { state: { in: ['PENDING', 'SENDING'] } }, data: { state: 'DELIVERED', lockedBy: null } });
}

const tenant = async (name: string) => (await db.prisma.tenant.create({ data: { name } })).id;

const countBy = (keys: string[]) => keys.reduce((counts, key) => counts.set(key, (counts.get(key) ?? 0) + 1), new Map<string, number>());

afterAll(async () => {
  await closeDatabase();
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
      const claimed = await claimDeliveries(db.prisma, dispatcherId, 60_000, unlimited);
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

  it("hands over no more than each host's and each tenant's free slots, and nothing of a full one", async () => {
    await settleOpenDeliveries();
    const [crowd, quiet, full] = [await tenant('crowd'), await tenant('quiet'), await tenant('full')];
    // One tenant, many hosts: ports and subdomains are hosts of their own, the tenant is not.
    for (let i = 0; i < 6; i++) await fileWithWebhook(crowd, `https://a.example/hook-${i}`);
    for (let i = 0; i < 6; i++) await fileWithWebhook(crowd, `https://b.example:${8000 + i}/hook`);
    for (let i = 0; i < 6; i++) await fileWithWebhook(crowd, `https://c${i}.example/hook`);
    for (let i = 0; i < 3; i++) await fileWithWebhook(quiet, `https://e.example/quiet-${i}`);
    await fileWithWebhook(full, 'https://d.example/hook');

    const claimed = await claimDeliveries(db.prisma, 'limits', 60_000, {
      limit: 64,
      perHost: 4,
      perTenant: 7,
      hostsInFlight: new Map([['a.example', 1]]),
      tenantsInFlight: new Map([
        [crowd, 2],
        [full, 7],
      ]),
    });

    const hosts = countBy(claimed.map((delivery) => delivery.host));
    const tenants = countBy(claimed.map((delivery) => delivery.tenantId));
    expect(hosts.get('a.example')).toBe(3); // 4 per host, 1 in flight
    expect(tenants.get(crowd)).toBe(5); // 7 per tenant, 2 in flight
    expect(tenants.get(quiet)).toBe(3); // the crowd's load leaves it alone
    expect(tenants.has(full)).toBe(false);
    expect([...hosts.values()].every((count) => count <= 4)).toBe(true);
    // What was left out is still due, not leased: the next claim, with room, takes it.
    const rest = await claimDeliveries(db.prisma, 'limits', 60_000, unlimited);
    expect(claimed.length + rest.length).toBe(22);
    expect(new Set([...claimed, ...rest].map((delivery) => delivery.id)).size).toBe(22);
  });

  it("looks past one tenant's backlog for the others' deliveries while it has slots to give", async () => {
    await settleOpenDeliveries();
    const [backlog, behind] = [await tenant('backlog'), await tenant('behind')];
    for (let i = 0; i < 10; i++) await fileWithWebhook(backlog, `https://backlog-${i}.example/hook`);
    await fileWithWebhook(behind, 'https://behind.example/hook');

    // Six slots, three per tenant: the six oldest due are all the backlog's.
    const claimed = await claimDeliveries(db.prisma, 'rounds', 60_000, {
      limit: 6,
      perHost: 8,
      perTenant: 3,
      hostsInFlight: new Map(),
      tenantsInFlight: new Map(),
    });

    const tenants = countBy(claimed.map((delivery) => delivery.tenantId));
    expect(tenants.get(backlog)).toBe(3);
    expect(tenants.get(behind)).toBe(1);
    expect(new Set(claimed.map((delivery) => delivery.id)).size).toBe(4);
    const leased = await db.prisma.webhookDelivery.count({ where: { state: 'SENDING', lockedBy: 'rounds' } });
    expect(leased).toBe(4);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { claimDeliveries } from '../../src/webhooks/delivery-sql.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { createWebhookSender } from '../../src/webhooks/send-webhook.js';
import { createUrlGuard } from '../../src/webhooks/url-guard.js';
import { createTestDatabase } from '../helpers/test-database.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const log = createLogger('silent');
const CLAIM_FUNCTION = 'claim_webhook_deliveries(text, integer, integer, integer, text[], integer[], integer, uuid[], integer[])';
let dataDir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lost-claim-'));
  database = await createTestDatabase();
  db = await openDatabase({ dataDir, databaseUrl: database.url });
  await applyMigrations(db);
});
afterAll(async () => {
  await db.close();
  await database.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('a webhook claim whose answer was lost', () => {
  it('gives back what it leased at once, instead of when the lease lapses', async () => {
    const receiver = await startReceiver();
    const tenantId = (await db.prisma.tenant.create({ data: { name: 'lost' } })).id;
    const recorder = new StatusRecorder(db.prisma, createStatusBus());
    await db.prisma.$transaction(async (tx) => {
      const file = await tx.file.create({
        data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x', webhookUrl: receiver.url, webhookEvents: ['file.processing'] },
      });
      await recorder.recordQueued(tx, file, {});
    });
    const config = loadConfig({ WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_POLL_MS: '50' }).webhooks;
    const sender = createWebhookSender({
      guard: createUrlGuard(config, log),
      timeoutMs: config.timeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      maxSocketsPerHost: config.concurrencyPerHost,
    });
    const dispatcher = new WebhookDispatcher(db.prisma, sender, config, log);
    try {
      // The claim was committed and its answer lost with the connection: the delivery is leased
      // for a minute to a dispatcher that does not know it.
      const limits = { limit: 1, perHost: 8, perTenant: 8, hostsInFlight: new Map(), tenantsInFlight: new Map() };
      const [lost] = await claimDeliveries(db.prisma, dispatcher.id, 60_000, limits);
      if (!lost) throw new Error('nothing to claim');
      // The dispatcher's own claims fail for a moment, as they would while the connection is down.
      await db.prisma.$executeRawUnsafe(`ALTER FUNCTION ${CLAIM_FUNCTION} RENAME TO claim_away`);
      dispatcher.start();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await db.prisma.$executeRawUnsafe(`ALTER FUNCTION claim_away(text, integer, integer, integer, text[], integer[], integer, uuid[], integer[]) RENAME TO claim_webhook_deliveries`);
      await receiver.until((received) => received.length === 1, 3_000);
    } finally {
      await dispatcher.stop();
      sender.close();
      await receiver.close();
    }
  });
});

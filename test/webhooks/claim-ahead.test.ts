import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { createWebhookSender } from '../../src/webhooks/send-webhook.js';
import { createUrlGuard } from '../../src/webhooks/url-guard.js';
import { openTestDatabase } from '../helpers/test-database.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const log = createLogger('silent');
let db: Database;
let closeDatabase: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDatabase } = await openTestDatabase('claim-ahead'));
});
afterAll(async () => {
  await closeDatabase();
});

/** Files of one new tenant, each with its first status due to `webhookUrl`. */
async function filesWithWebhook(count: number, webhookUrl: string): Promise<string[]> {
  const tenantId = (await db.prisma.tenant.create({ data: { name: `ahead-${Math.random()}` } })).id;
  const recorder = new StatusRecorder(db.prisma, createStatusBus());
  const files: string[] = [];
  for (let index = 0; index < count; index++) {
    files.push(
      await db.prisma.$transaction(async (tx) => {
        const file = await tx.file.create({
          data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x', webhookUrl, webhookEvents: ['file.processing'] },
        });
        await recorder.recordQueued(tx, file, {});
        return file.id;
      }),
    );
  }
  return files;
}

function startDispatcher(settings: Record<string, string>) {
  const config = loadConfig({ WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', WEBHOOK_POLL_MS: '50', ...settings }).webhooks;
  const sender = createWebhookSender({
    guard: createUrlGuard(config, log),
    timeoutMs: config.timeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    maxSocketsPerHost: config.concurrencyPerHost,
  });
  const dispatcher = new WebhookDispatcher(db.prisma, sender, config, log);
  dispatcher.start();
  return {
    dispatcher,
    async stop(graceMs?: number) {
      await dispatcher.stop(graceMs);
      sender.close();
    },
  };
}

async function deliveryStates(files: string[]) {
  return db.prisma.webhookDelivery.findMany({ where: { fileId: { in: files } }, select: { state: true, attemptCount: true, lockedBy: true } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('deliveries claimed ahead of a free slot', () => {
  it('never sends more at once than the limits allow, and sends every one', async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    const receiver = await startReceiver((_request, _index, res: http.ServerResponse) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(204).end();
      }, 60);
    });
    const files = await filesWithWebhook(12, receiver.url);
    const { dispatcher, stop } = startDispatcher({ WEBHOOK_CONCURRENCY: '8', WEBHOOK_CONCURRENCY_PER_HOST: '2' });
    try {
      await receiver.until((received) => received.length >= 1, 5_000);
      // Claimed: the host's limit of 2 and as many again waiting; sending: 2.
      const held = (await deliveryStates(files)).filter((delivery) => delivery.state === 'SENDING' && delivery.lockedBy === dispatcher.id);
      expect(held.length).toBeGreaterThan(2);
      await receiver.until((received) => received.length === 12, 10_000);
      expect(mostInFlight).toBe(2);
    } finally {
      await stop();
      await receiver.close();
    }
  });

  it('gives back, when it stops, the deliveries still waiting for a slot', async () => {
    const receiver = await startReceiver(() => {}); // never answers
    const files = await filesWithWebhook(3, receiver.url);
    const { dispatcher, stop } = startDispatcher({ WEBHOOK_CONCURRENCY_PER_HOST: '1', WEBHOOK_TIMEOUT_MS: '5000' });
    try {
      await receiver.until((received) => received.length === 1, 5_000);
      await sleep(100);
      expect((await deliveryStates(files)).filter((delivery) => delivery.lockedBy === dispatcher.id)).toHaveLength(2);
    } finally {
      await stop(100);
      await receiver.close();
    }
    const states = await deliveryStates(files);
    // The one being sent keeps its lease (its attempt may still be running); the one waiting is
    // due again at once, never attempted.
    expect(states.filter((delivery) => delivery.state === 'SENDING')).toHaveLength(1);
    expect(states.filter((delivery) => delivery.state === 'PENDING')).toEqual([{ state: 'PENDING', attemptCount: 0, lockedBy: null }, { state: 'PENDING', attemptCount: 0, lockedBy: null }]);
  });
});

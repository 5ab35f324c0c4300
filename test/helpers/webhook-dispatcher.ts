import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { createLogger } from '../../src/log.js';
import { StatusRecorder } from '../../src/status/record-status-change.js';
import { createStatusBus } from '../../src/status/status-bus.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { createWebhookSender } from '../../src/webhooks/send-webhook.js';
import { createUrlGuard } from '../../src/webhooks/url-guard.js';
import { LOOPBACK_WEBHOOKS } from './webhook-receiver.js';

/** Files of one new tenant, each with its first status due to `webhookUrl`. */
export async function filesWithWebhook(db: Database, count: number, webhookUrl: string): Promise<string[]> {
  const tenantId = (await db.prisma.tenant.create({ data: { name: `webhooks-${Math.random()}` } })).id;
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

/**
 * A dispatcher on `db`, not started, sending to loopback, with `settings` over the defaults;
 * `announceQueued` as the service's tells the other dispatchers of deliveries due again.
 */
export function newDispatcher(db: Database, settings: Record<string, string> = {}, announceQueued?: () => void) {
  const log = createLogger('silent');
  const config = loadConfig({ ...LOOPBACK_WEBHOOKS, WEBHOOK_POLL_MS: '50', ...settings }).webhooks;
  const sender = createWebhookSender({
    guard: createUrlGuard(config, log),
    timeoutMs: config.timeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    maxSocketsPerHost: config.concurrencyPerHost,
  });
  const dispatcher = new WebhookDispatcher(db.prisma, sender, config, log, announceQueued);
  return {
    dispatcher,
    async close(graceMs?: number) {
      await dispatcher.stop(graceMs);
      sender.close();
    },
  };
}

/**
 * `db`, with each of its raw queries (`$queryRaw`) passed through `intercept`, which is given the
 * statement's text and runs it with `run`.
 */
export function interceptingQueryRaw(db: Database, intercept: (sql: string, run: () => Promise<unknown>) => Promise<unknown>): Database {
  const prisma = new Proxy(db.prisma, {
    get(target, property, receiver) {
      if (property !== '$queryRaw') return Reflect.get(target, property, receiver);
      return (sql: TemplateStringsArray, ...values: unknown[]) => intercept(sql.join(''), () => target.$queryRaw(sql, ...values));
    },
  });
  return { ...db, prisma };
}

/** `db`, with a count of the claims of webhook deliveries made through it (claim_webhook_deliveries). */
export function countingClaims(db: Database): { database: Database; claims: () => number } {
  let claims = 0;
  const database = interceptingQueryRaw(db, (sql, run) => {
    if (sql.includes('claim_webhook_deliveries')) claims++;
    return run();
  });
  return { database, claims: () => claims };
}

/** Status changes recorded as a worker's are, handing their deliveries to `dispatcher`, which hears every change, as the service wires them. */
export function recorderHandingTo(db: Database, dispatcher: WebhookDispatcher): StatusRecorder {
  const bus = createStatusBus();
  const recorder = new StatusRecorder(db.prisma, bus);
  recorder.handWebhooksTo(dispatcher);
  bus.onStatus((event) => dispatcher.statusChanged(event));
  return recorder;
}

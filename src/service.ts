import type { Config } from './config.js';
import { ApiKeyAuthenticator } from './auth/api-keys.js';
import { createFirstKeyIfNone } from './auth/first-key.js';
import { openDatabase, type Database } from './db/database.js';
import { startEmbeddedVacuum } from './db/embedded-vacuum.js';
import { applyMigrations } from './db/migrate.js';
import type { Services } from './graphql/context.js';
import { createHttpServer } from './http-server.js';
import { withoutStackTraces, type Logger } from './log.js';
import { createMetricsServer } from './metrics/metrics-server.js';
import { createServiceMetrics } from './metrics/service-metrics.js';
import { PROCESS_FILE_TASK, processFileTask } from './processing/process-file.js';
import { releaseOrphanedLeases } from './queue/job-sql.js';
import { Worker } from './queue/worker.js';
import { createPostgresEventTarget } from './status/postgres-event-target.js';
import { readStatusesChangedSince } from './status/read-status.js';
import { StatusRecorder } from './status/record-status-change.js';
import { createStatusBus, topics } from './status/status-bus.js';
import { StatusCache } from './status/status-cache.js';
import { startStatusEventRetention } from './status/status-event-retention.js';
import { BlobStore } from './storage/blob-store.js';
import { startLeftoverSweeps } from './storage/leftover-sweeps.js';
import { startDeliveryLogRetention } from './webhooks/delivery-log-retention.js';
import { releaseOrphanedDeliveries } from './webhooks/delivery-sql.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { WebhookIds } from './webhooks/webhook-ids.js';
import { createWebhookSender } from './webhooks/send-webhook.js';
import { createUrlGuard } from './webhooks/url-guard.js';

export interface RunningService {
  /** The port the API listens on; null for ROLE=worker. */
  port: number | null;
  /** The port the metrics listen on; null when METRICS_PORT is unset. */
  metricsPort: number | null;
  db: Database;
  services: Services;
  stop(): Promise<void>;
}

/** config → database → bus → worker and API. stop() undoes it in reverse. */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const db = await openDatabase(config);
  const stops: (() => Promise<void>)[] = [() => db.close()];
  const stop = async () => {
    for (const step of [...stops].reverse()) await step();
  };
  try {
    const applied = await applyMigrations(db);
    if (applied.length) log.info({ migrations: applied }, 'applied migrations');
    if (db.kind === 'embedded') {
      const released = await releaseOrphanedLeases(db.prisma);
      const resend = await releaseOrphanedDeliveries(db.prisma);
      if (released || resend) log.info({ jobs: released, webhookDeliveries: resend }, 'took back the work of a process that died');
      const firstKey = await createFirstKeyIfNone(db.prisma);
      if (firstKey) {
        log.warn({ tenant: 'default', apiKey: firstKey }, 'created the first API key; it is shown only this once');
      }
    }

    stops.push(startEmbeddedVacuum(db, config.embeddedVacuumIntervalMs, log));

    const busTarget = db.kind === 'postgres' ? await createPostgresEventTarget(config.databaseUrl!, log) : undefined;
    if (busTarget) stops.push(() => busTarget.close());
    // Only the API has watchers to catch up after a bus outage; a worker's dispatcher polls anyway.
    const resync = config.role === 'worker' ? undefined : { changedSince: (since: Date) => readStatusesChangedSince(db.prisma, since), log };
    const bus = createStatusBus(busTarget?.target, resync, { announcedByDatabase: db.kind === 'postgres' });
    const metrics = config.metrics.port === null ? null : createServiceMetrics(db.prisma, log);
    const blobs = new BlobStore(config.dataDir);
    const stopSweeps = await startLeftoverSweeps(db, blobs, log);
    stops.push(async () => stopSweeps());
    // PostgreSQL runs statements side by side, on a pool of 10 connections that the worker, the
    // dispatcher and the API share; the embedded database runs one at a time.
    const status = new StatusRecorder(db.prisma, bus, db.kind === 'postgres' ? 4 : 1, metrics?.statusRecorded);
    // The webhook engine's logs hold no stack trace (the promise: no server paths).
    const webhookLog = withoutStackTraces(log);
    const guard = createUrlGuard(config.webhooks, webhookLog);
    const services: Services = {
      prisma: db.prisma,
      bus,
      status,
      blobs,
      authenticator: new ApiKeyAuthenticator(db.prisma, config.apiKeyTrustMs),
      maxUploadBytes: config.maxUploadBytes,
      jobMaxAttempts: config.jobMaxAttempts,
      checkWebhookUrl: guard.check,
      statusCache: new StatusCache(db.prisma, bus),
      webhookIds: new WebhookIds(db.prisma),
      watchObserver: metrics?.watches,
    };
    stops.push(async () => {
      services.statusCache.close();
      services.authenticator.close();
    });

    if (config.role !== 'api') {
      const worker = new Worker(
        db.prisma,
        { [PROCESS_FILE_TASK]: processFileTask({ prisma: db.prisma, status, blobs, allowedTypes: config.allowedTypes, log }) },
        {
          concurrency: config.workerConcurrency,
          leaseMs: config.jobLeaseMs,
          pollMs: config.jobPollMs,
          retryBaseMs: config.jobRetryBaseMs,
        },
        log,
      );
      const stopJobSignals = bus.onSignal(topics.jobs, () => worker.wake());
      worker.start();
      stops.push(async () => {
        await stopJobSignals();
        await worker.stop();
      });

      const sender = createWebhookSender({
        guard,
        timeoutMs: config.webhooks.timeoutMs,
        connectTimeoutMs: config.webhooks.connectTimeoutMs,
        maxSocketsPerHost: config.webhooks.concurrencyPerHost,
      });
      const dispatcher = new WebhookDispatcher(
        db.prisma,
        sender,
        config.webhooks,
        webhookLog,
        () => bus.publishWebhooksQueued(),
        metrics?.deliveries,
      );
      status.handWebhooksTo(dispatcher);
      // Any status change may have queued a delivery (the database's outbox trigger decides), and
      // not every one is handed over: this process's when the dispatcher is full, other processes'.
      const stopStatusWakes = bus.onStatus((event) => dispatcher.statusChanged(event));
      const stopWebhookSignals = bus.onSignal(topics.webhooks, () => dispatcher.wake());
      dispatcher.start();
      stops.push(async () => {
        status.handWebhooksTo(null);
        stopStatusWakes();
        await stopWebhookSignals();
        await dispatcher.stop();
        sender.close();
      });
      stops.push(startDeliveryLogRetention(db, config.webhooks.logRetentionMs, webhookLog));
      stops.push(startStatusEventRetention(db, config.statusEventRetentionMs, log));
      log.info({ workerId: worker.id, concurrency: config.workerConcurrency }, 'worker started');
    }

    let port: number | null = null;
    if (config.role !== 'worker') {
      const server = createHttpServer(db, services, log);
      port = await server.listen(config.port, config.host);
      stops.push(() => server.close());
      log.info({ port, role: config.role, database: db.kind }, 'listening');
    }

    let metricsPort: number | null = null;
    if (metrics && config.metrics.port !== null) {
      const metricsServer = createMetricsServer(metrics.registry, log);
      metricsPort = await metricsServer.listen(config.metrics.port, config.metrics.host);
      stops.push(() => metricsServer.close());
      log.info({ metricsPort, host: config.metrics.host }, 'metrics listening');
    }
    return { port, metricsPort, db, services, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

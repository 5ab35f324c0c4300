import { collectDefaultMetrics, Registry } from 'prom-client';
import type { PrismaClient } from '../db/database.js';
import type { Logger } from '../log.js';
import type { StatusEvent } from '../status/model.js';
import type { WatchObserver } from '../status/watch-status.js';
import type { DeliveryObserver } from '../webhooks/dispatcher.js';
import { backlogGauges } from './backlog-gauges.js';
import { statusChangeMetrics, subscriptionMetrics } from './status-metrics.js';
import { webhookMetrics } from './webhook-metrics.js';

/**
 * Every metric of one service, in a registry of its own (not prom-client's global one, which a
 * second service in the same process, as in the tests, would collide with). The modules that
 * emit get the observers; the metrics watch them and the database, and are called by neither.
 */
export interface ServiceMetrics {
  registry: Registry;
  deliveries: DeliveryObserver;
  statusRecorded: (event: StatusEvent) => void;
  watches: WatchObserver;
}

export function createServiceMetrics(prisma: PrismaClient, log: Logger): ServiceMetrics {
  const registry = new Registry();
  // Event-loop lag, heap, GC, CPU, file descriptors: prom-client's own, under our prefix.
  collectDefaultMetrics({ register: registry, prefix: 'filestatus_' });
  backlogGauges(registry, prisma, log);
  return {
    registry,
    deliveries: webhookMetrics(registry),
    statusRecorded: statusChangeMetrics(registry),
    watches: subscriptionMetrics(registry),
  };
}

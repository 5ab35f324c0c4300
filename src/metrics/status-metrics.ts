import { Counter, Gauge, type Registry } from 'prom-client';
import type { StatusEvent } from '../status/model.js';
import type { WatchObserver } from '../status/watch-status.js';

/** Status changes recorded by this process, by status. */
export function statusChangeMetrics(registry: Registry): (event: StatusEvent) => void {
  const changes = new Counter({
    name: 'filestatus_status_changes_total',
    help: 'Status changes recorded by this process, by status (processing, completed, failed).',
    labelNames: ['status'],
    registers: [registry],
  });
  return (event) => changes.inc({ status: event.status.toLowerCase() });
}

/** Subscriptions open on this process, over WebSocket and SSE alike. */
export function subscriptionMetrics(registry: Registry): WatchObserver {
  const open = new Gauge({
    name: 'filestatus_subscriptions_open',
    help: 'fileStatusChanged subscriptions open on this process, over WebSocket and SSE.',
    registers: [registry],
  });
  return { opened: () => open.inc(), closed: () => open.dec() };
}

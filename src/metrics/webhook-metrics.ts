import { Counter, Histogram, type Registry } from 'prom-client';
import type { DeliveryObserver } from '../webhooks/dispatcher.js';
import type { SendOutcome } from '../webhooks/send-webhook.js';

/**
 * An attempt's outcome as a label: the response's class, or why there was none. Never the URL,
 * host or tenant: each would make a series per receiver, and name one tenant's receivers to
 * whoever reads the metrics.
 */
export function attemptOutcome(outcome: SendOutcome): string {
  const status = outcome.responseStatus;
  if (status === null) return outcome.failure ?? 'network';
  return status >= 200 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/**
 * Seconds, from a loopback receiver's milliseconds to WEBHOOK_TIMEOUT_MS's default of 15 s, where
 * a hanging receiver's attempts end.
 */
const ATTEMPT_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

/** The dispatcher's attempts and ended deliveries, counted in this process. */
export function webhookMetrics(registry: Registry): DeliveryObserver {
  const attempts = new Counter({
    name: 'filestatus_webhook_attempts_total',
    help: 'Webhook attempts made by this process, by outcome: the response class (2xx, 3xx, 4xx, 5xx, other), or timeout, network, blocked (the URL guard refused to send).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'filestatus_webhook_attempt_duration_seconds',
    help: 'Time of a webhook attempt, DNS lookup included, by outcome as in filestatus_webhook_attempts_total.',
    labelNames: ['outcome'],
    buckets: ATTEMPT_SECONDS_BUCKETS,
    registers: [registry],
  });
  const ended = new Counter({
    name: 'filestatus_webhook_deliveries_ended_total',
    help: 'Webhook deliveries that this process ended with an attempt, by final state: delivered, or failed (its last attempt, or 410 Gone).',
    labelNames: ['state'],
    registers: [registry],
  });
  return {
    attempted(outcome) {
      const labels = { outcome: attemptOutcome(outcome) };
      attempts.inc(labels);
      duration.observe(labels, outcome.durationMs / 1000);
    },
    ended(state) {
      ended.inc({ state: state === 'DELIVERED' ? 'delivered' : 'failed' });
    },
  };
}

import { describe, expect, it } from 'vitest';
import { attemptOutcome } from '../../src/metrics/webhook-metrics.js';
import type { SendOutcome } from '../../src/webhooks/send-webhook.js';

const outcome = (fields: Partial<SendOutcome>): SendOutcome => ({
  attemptedAt: new Date(),
  durationMs: 1,
  responseStatus: null,
  responseBody: null,
  error: null,
  retryAfter: undefined,
  failure: null,
  ...fields,
});

describe('attemptOutcome', () => {
  it.each([
    [200, '2xx'],
    [204, '2xx'],
    [301, '3xx'],
    [410, '4xx'],
    [429, '4xx'],
    [503, '5xx'],
    [599, '5xx'],
    [999, 'other'],
    [101, 'other'],
  ])('labels HTTP %i as %s', (responseStatus, label) => {
    expect(attemptOutcome(outcome({ responseStatus }))).toBe(label);
  });

  it.each(['timeout', 'network', 'blocked'] as const)('labels an attempt with no answer by why: %s', (failure) => {
    expect(attemptOutcome(outcome({ failure, error: 'x' }))).toBe(failure);
  });
});

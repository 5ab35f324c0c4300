const JITTER = 0.2;

/**
 * Delay before the given attempt (1-based) by the schedule, ±20% so that receivers that failed
 * together are not retried together; null when the schedule is used up.
 */
export function scheduledDelayMs(schedule: number[], attempt: number, random = Math.random): number | null {
  const base = schedule[attempt - 1];
  if (base === undefined) return null;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/** A receiver's Retry-After (seconds or an HTTP date) in milliseconds, or null if unreadable. */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | null {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** Retry-After is honoured, but kept between the scheduled delay and twice it. */
export function clampRetryAfter(requestedMs: number, scheduledMs: number): number {
  return Math.min(2 * scheduledMs, Math.max(scheduledMs, requestedMs));
}

import pRetry from 'p-retry';

/**
 * Writes again, with backoff, what a lost connection refused, for up to `withinMs`. A failover, a
 * restart of the server or a cut connection would otherwise cost the work the write records: a
 * job's or a delivery's outcome goes unwritten, and only its lease lapsing, tens of seconds later,
 * hands it to another attempt. Once `signal` aborts, no further try is scheduled (one already
 * waiting still runs); the first try is always made. The write must be harmless to repeat: a
 * write whose answer was lost may have been committed.
 */
export function retryWrite<T>(write: () => Promise<T>, withinMs: number, signal?: AbortSignal): Promise<T> {
  return pRetry(write, {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 50,
    factor: 2,
    maxTimeout: 2_000,
    maxRetryTime: Math.max(0, withinMs),
    shouldRetry: () => !signal?.aborted,
    unref: true,
  });
}

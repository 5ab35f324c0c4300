import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadTarget {
  port: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  expectedStatus: number;
}

export interface LoadOptions {
  connections: number;
  warmupMs: number;
  durationMs: number;
  requestTimeoutMs?: number;
}

export interface LoadResult {
  /** Answers with the expected status that ended inside the measured window. */
  requests: number;
  /** Other statuses and failed requests inside the window. */
  errors: number;
  firstError: string | null;
  requestsPerSecond: number;
}

/**
 * Closed-loop load: `connections` loops, each sending its next request as soon as the last
 * answer has been read, over a keep-alive pool of as many sockets. Answers count only if they end
 * inside the window after the warm-up; no request starts after the window closes.
 */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  const headers = target.body ? { ...target.headers, 'content-length': String(target.body.length) } : target.headers;
  const timeoutMs = options.requestTimeoutMs ?? 5_000;
  const send = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: target.port, method: target.method, path: target.path, headers, agent },
        (res) => {
          res.on('end', () => resolve(res.statusCode!));
          res.on('error', reject);
          res.resume();
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(target.body);
    });

  const windowStart = performance.now() + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  const loop = async () => {
    while (performance.now() < windowEnd) {
      let outcome: string | null;
      try {
        const status = await send();
        outcome = status === target.expectedStatus ? null : `status ${status}`;
      } catch (error) {
        outcome = (error as Error).message;
      }
      const now = performance.now();
      if (now < windowStart || now > windowEnd) continue;
      if (outcome === null) requests++;
      else {
        errors++;
        firstError ??= outcome;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.connections }, loop));
  } finally {
    agent.destroy();
  }
  return { requests, errors, firstError, requestsPerSecond: requests / (options.durationMs / 1000) };
}

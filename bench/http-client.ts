import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { MultipartBody } from './multipart.js';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function collect(res: http.IncomingMessage): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('error', reject);
    res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
  });
}

/** One request on a fresh connection; `body` is sent whole. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? (body ? 'POST' : 'GET'),
      headers: { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      agent: false,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    req.once('error', reject);
    req.once('response', (res) => collect(res).then(resolve, reject));
    req.end(body);
  });
}

export async function postJson(url: string, headers: Record<string, string>, payload: unknown, timeoutMs?: number) {
  const response = await request(url, {
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
    timeoutMs,
  });
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}

export interface StreamedUpload {
  response: HttpResponse;
  /** From the first byte sent to the last byte of the response. */
  elapsedMs: number;
}

/**
 * Streams a multipart body with backpressure, on a fresh connection. The clock stops when the
 * response has been read in full.
 */
export async function sendMultipart(
  url: string,
  headers: Record<string, string>,
  body: MultipartBody,
  timeoutMs: number,
): Promise<StreamedUpload> {
  const started = performance.now();
  const req = http.request(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': body.contentType, 'content-length': String(body.contentLength) },
    agent: false,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const response = new Promise<HttpResponse>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => collect(res).then(resolve, reject));
  });
  // An early answer (an error) ends the writing; the response then says what went wrong.
  let answered = false;
  void response.finally(() => (answered = true)).catch(() => {});
  for (const chunk of body.chunks()) {
    if (answered || req.destroyed) break;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  if (!answered && !req.destroyed) req.end();
  const result = await response;
  return { response: result, elapsedMs: performance.now() - started };
}

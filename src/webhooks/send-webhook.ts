import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { LookupFunction } from 'node:net';
import got, { TimeoutError, type RequestError } from 'got';
import type { AttemptRecord } from './delivery-sql.js';
import { signWebhook } from './sign-webhook.js';
import { UnsafeWebhookUrlError, type UrlGuard } from './url-guard.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
export const USER_AGENT = `filestatus-webhooks/${version}`;

/** Of a receiver's answer, only this much is kept. */
const RESPONSE_BODY_LIMIT = 4096;

export interface WebhookRequest {
  /** The `webhook-id`: the status event's, the same on every attempt. */
  id: string;
  url: string;
  body: string;
  secrets: string[];
}

/**
 * Why an attempt got no answer: the URL guard refused to send (its address is not allowed, or the
 * host did not resolve), a time limit passed, or the connection failed otherwise.
 */
export type SendFailure = 'blocked' | 'timeout' | 'network';

export interface SendOutcome extends AttemptRecord {
  retryAfter: string | undefined;
  /** Set when there is no response status. */
  failure: SendFailure | null;
}

export interface SenderOptions {
  guard: UrlGuard;
  timeoutMs: number;
  connectTimeoutMs: number;
  maxSocketsPerHost: number;
}

/** PostgreSQL text cannot hold NUL, and a receiver's answer (or an error quoting it) may contain any byte. */
const storable = (text: string | null) => text?.replaceAll('\0', '') ?? null;

/**
 * The kept part of an answer as text. Streaming mode leaves out a character the 4 KB cut split,
 * instead of ending the text with a replacement character.
 */
const bodyText = (body: Buffer) => new TextDecoder().decode(body, { stream: true });

/** got's messages name the failure (timeout, refused…) without stack or secrets; keep them short. */
function describe(error: unknown): string {
  if (error instanceof UnsafeWebhookUrlError) return `blocked: ${error.message}`;
  const { code, message } = error as RequestError;
  return (code && !message.includes(code) ? `${code}: ${message}` : message).slice(0, 500);
}

/**
 * Sends one signed attempt. The host is resolved and checked first, and the connection goes to
 * that very address, so a DNS answer that changes in between (rebinding) cannot redirect it.
 * Redirects are not followed and got does not retry: retries belong to the outbox.
 */
export function createWebhookSender(options: SenderOptions) {
  const agent = {
    http: new http.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost }),
    https: new https.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost }),
  };

  async function send(request: WebhookRequest): Promise<SendOutcome> {
    const attemptedAt = new Date();
    const started = performance.now();
    const outcome = (fields: Partial<SendOutcome>): SendOutcome => ({
      attemptedAt,
      durationMs: Math.round(performance.now() - started),
      responseStatus: null,
      retryAfter: undefined,
      failure: null,
      ...fields,
      responseBody: storable(fields.responseBody ?? null),
      error: storable(fields.error ?? null),
    });

    let checked;
    try {
      // The timeout is for the whole attempt: the lookup takes its share of it.
      checked = await options.guard.check(request.url, options.timeoutMs);
    } catch (error) {
      return outcome({ error: describe(error), failure: 'blocked' });
    }
    const pinnedLookup: LookupFunction = (_hostname, lookupOptions, callback) => {
      if ((lookupOptions as { all?: boolean }).all) {
        (callback as unknown as (error: null, addresses: { address: string; family: number }[]) => void)(null, [
          { address: checked.address, family: checked.family },
        ]);
      } else {
        callback(null, checked.address, checked.family);
      }
    };
    const timestamp = Math.floor(Date.now() / 1000);

    return new Promise<SendOutcome>((resolve) => {
      let status: number | null = null;
      let retryAfter: string | undefined;
      let body = Buffer.alloc(0);
      let settled = false;
      const finish = (fields: Partial<SendOutcome>) => {
        if (settled) return;
        settled = true;
        resolve(outcome({ responseStatus: status, responseBody: status === null ? null : bodyText(body), retryAfter, ...fields }));
      };
      const stream = got.stream.post(checked.url.toString(), {
        body: request.body,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': request.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(request.secrets, request.id, timestamp, request.body),
        },
        dnsLookup: pinnedLookup,
        agent,
        timeout: {
          request: Math.max(1, Math.round(options.timeoutMs - (performance.now() - started))),
          // Connected means ready to send: for https that includes the TLS handshake.
          connect: options.connectTimeoutMs,
          secureConnect: options.connectTimeoutMs,
        },
        retry: { limit: 0 },
        followRedirect: false,
        throwHttpErrors: false,
        decompress: false,
      });
      stream.on('response', (response: http.IncomingMessage) => {
        status = response.statusCode ?? null;
        const header = response.headers['retry-after'];
        retryAfter = Array.isArray(header) ? header[0] : header;
      });
      stream.on('data', (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]).subarray(0, RESPONSE_BODY_LIMIT);
        // The status is what counts: a receiver that answers without end is not read to its end.
        if (body.length >= RESPONSE_BODY_LIMIT) {
          finish({});
          stream.destroy();
        }
      });
      stream.on('end', () => finish({}));
      stream.on('error', (error: Error) =>
        finish(status === null ? { error: describe(error), failure: error instanceof TimeoutError ? 'timeout' : 'network' } : {}),
      );
    });
  }

  return {
    send,
    close() {
      agent.http.destroy();
      agent.https.destroy();
    },
  };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

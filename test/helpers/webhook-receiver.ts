import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/**
 * The settings that let webhooks reach the receivers here: plain http, on loopback, which the URL
 * guard refuses by default.
 */
export const LOOPBACK_WEBHOOKS = { WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' } as const;

export type Reply = (request: ReceivedWebhook, index: number, res: http.ServerResponse) => void;

export const answer = (status: number, headers: Record<string, string> = {}, body = ''): Reply => (_request, _index, res) => {
  res.writeHead(status, headers);
  res.end(body);
};

/** A real HTTP receiver on loopback that records every request and answers as `reply` says. */
export async function startReceiver(reply: Reply = answer(204)) {
  const received: ReceivedWebhook[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const request = { headers: req.headers, body, receivedAt: Date.now() };
      received.push(request);
      waiters.splice(0).forEach((wake) => wake());
      receiver.reply(request, received.length - 1, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    reply,
    /** Resolves once `predicate` holds for what arrived. */
    async until(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs = 15_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met; got ${received.length} requests`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
    payloads: () => received.map((request) => JSON.parse(request.body)),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return receiver;
}

/** Starts receivers as startReceiver does; those it started are closed after each test of the file that calls it. */
export function receiversClosedAfterEach(): typeof startReceiver {
  const open: Awaited<ReturnType<typeof startReceiver>>[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((receiver) => receiver.close()));
  });
  return async (reply) => {
    const receiver = await startReceiver(reply);
    open.push(receiver);
    return receiver;
  };
}

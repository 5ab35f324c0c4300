import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createWebhookSender } from '../../src/webhooks/send-webhook.js';
import { generateWebhookSecret } from '../../src/webhooks/sign-webhook.js';
import { createUrlGuard } from '../../src/webhooks/url-guard.js';

const request = (url: string) => ({ id: 'evt_deadline', url, body: '{"type":"file.processing"}', secrets: [generateWebhookSecret()] });

describe('webhook sender deadlines', () => {
  // Accepts TCP and then says nothing: a TLS handshake with it never ends.
  let silentPort: number;
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  beforeAll(async () => {
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('counts the TLS handshake in the connect timeout', async () => {
    const guard = createUrlGuard({ allowHttp: false, allowedCidrs: ['127.0.0.0/8'] }, createLogger('silent'));
    const sender = createWebhookSender({ guard, timeoutMs: 5_000, connectTimeoutMs: 300, maxSocketsPerHost: 1 });
    const outcome = await sender.send(request(`https://127.0.0.1:${silentPort}/hook`));
    expect(outcome.responseStatus).toBeNull();
    expect(outcome.error).toMatch(/timeout/i);
    expect(outcome.failure).toBe('timeout');
    expect(outcome.durationMs).toBeLessThan(2_000);
  });

  it('counts the DNS lookup in the whole attempt', async () => {
    const guard = createUrlGuard(
      { allowHttp: false, allowedCidrs: [], resolveHost: () => new Promise(() => {}) },
      createLogger('silent'),
    );
    const sender = createWebhookSender({ guard, timeoutMs: 400, connectTimeoutMs: 300, maxSocketsPerHost: 1 });
    const outcome = await sender.send(request('https://hooks.example/hook'));
    expect(outcome.error).toBe('blocked: the webhook host hooks.example could not be resolved: DNS lookup timed out');
    expect(outcome.failure).toBe('blocked');
    expect(outcome.durationMs).toBeLessThan(1_500);
  });
});

describe('why an attempt got no answer', () => {
  const log = createLogger('silent');

  it('is blocked when the URL guard refuses the address at send time', async () => {
    const sender = createWebhookSender({ guard: createUrlGuard({ allowHttp: true, allowedCidrs: [] }, log), timeoutMs: 1_000, connectTimeoutMs: 300, maxSocketsPerHost: 1 });
    const outcome = await sender.send(request('http://127.0.0.1:9/hook'));
    expect(outcome).toMatchObject({ responseStatus: null, failure: 'blocked' });
  });

  it('is network when the connection is refused', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const sender = createWebhookSender({ guard: createUrlGuard({ allowHttp: true, allowedCidrs: ['127.0.0.0/8'] }, log), timeoutMs: 1_000, connectTimeoutMs: 300, maxSocketsPerHost: 1 });
    const outcome = await sender.send(request(`http://127.0.0.1:${port}/hook`));
    expect(outcome).toMatchObject({ responseStatus: null, failure: 'network' });
  });

  it('is none when the receiver answered, whatever the status', async () => {
    const server = http.createServer((_req, res) => res.writeHead(500).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sender = createWebhookSender({ guard: createUrlGuard({ allowHttp: true, allowedCidrs: ['127.0.0.0/8'] }, log), timeoutMs: 1_000, connectTimeoutMs: 300, maxSocketsPerHost: 1 });
    try {
      expect(await sender.send(request(`http://127.0.0.1:${port}/hook`))).toMatchObject({ responseStatus: 500, failure: null });
    } finally {
      sender.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

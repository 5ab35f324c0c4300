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
    expect(outcome.durationMs).toBeLessThan(1_500);
  });
});

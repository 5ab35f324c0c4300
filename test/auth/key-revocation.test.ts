import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { revokeApiKey } from '../../src/auth/api-keys.js';
import { graphql, uploadFile } from '../helpers/graphql-client.js';
import { collect, STATUS_SUBSCRIPTION, wsClient } from '../helpers/subscriptions.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const TRUST_MS = 300;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ API_KEY_TRUST_MS: String(TRUST_MS) });
});
afterAll(() => server?.stop());

const keyOf = (authorization: string) => authorization.replace(/^Bearer /, '');
const whoAmI = (authorization: string) => graphql(server.url, authorization, '{ webhookSecret }');

/** An SSE response read as it comes: `until` reads until the text so far passes a check, or the stream ends, or `ms` pass. */
function sseReader(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    async until(check: (text: string) => boolean, ms = 5_000): Promise<string> {
      const deadline = Date.now() + ms;
      while (!check(text) && Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), deadline - Date.now()))]);
        if (!chunk || chunk.done) break;
        text += decoder.decode(chunk.value);
      }
      return text;
    },
    close: () => reader.cancel().catch(() => {}),
  };
}

describe('a revoked API key', () => {
  it('ends the streams it opened, closes its sockets and is refused, within API_KEY_TRUST_MS; other keys go on', async () => {
    const alice = await server.tenant('alice');
    const aliceAgain = await server.tenant('alice');
    expect((await whoAmI(alice)).body.errors).toBeUndefined();

    const socket = wsClient(server.wsUrl, alice);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('closed', (event) => resolve(event as { code: number; reason: string })));
    const wsStream = collect(socket, {});
    const otherSocket = wsClient(server.wsUrl, aliceAgain);
    const otherStream = collect(otherSocket, {});
    const sse = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: alice },
      body: JSON.stringify({ query: STATUS_SUBSCRIPTION, variables: {} }),
    });
    expect(sse.status).toBe(200);
    const sseText = sseReader(sse);
    // Every stream is live before the revocation: each hears a change of the tenant's.
    await uploadFile(server.url, aliceAgain, 'heard by every stream');
    await sseText.until((text) => text.includes('event: next'));
    await expect.poll(() => Math.min(wsStream.events.length, otherStream.events.length), { timeout: 5_000 }).toBeGreaterThanOrEqual(1);

    const revokedAt = Date.now();
    expect(await revokeApiKey(server.service.db.prisma, keyOf(alice))).toMatchObject({ tenant: 'alice' });

    const ended = await sseText.until((text) => text.includes('event: complete'));
    await sseText.close();
    expect(ended).toMatch(/The API key of this stream was revoked/);
    expect(ended).toMatch(/UNAUTHENTICATED/);
    expect(ended).toMatch(/event: complete/);
    expect(await closed).toMatchObject({ code: 4403, reason: 'Forbidden: the API key was revoked' });
    expect(Date.now() - revokedAt).toBeLessThan(TRUST_MS * 4 + 1_000);
    await wsStream.done.catch(() => {});

    const refused = await whoAmI(alice);
    expect(refused.body.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${server.url}/api/file/status?file_id=00000000-0000-4000-8000-000000000000`, { headers: { authorization: alice } })).status).toBe(401);
    // The tenant's other key, and its stream, are untouched.
    expect((await whoAmI(aliceAgain)).body.errors).toBeUndefined();
    expect(otherStream.errors).toEqual([]);
    otherStream.stop();
    await Promise.all([socket.dispose(), otherSocket.dispose()]);
    // Each stream let go of its watch as it ended.
    await expect.poll(() => server.service.services.authenticator.watchedStreams, { timeout: 5_000 }).toBe(0);
  });

  it('is not watched for a socket that closed while its key was being read', async () => {
    const carol = await server.tenant('carol');
    const { authenticator } = server.service.services;
    const { prisma } = server.service.db;
    await expect.poll(() => authenticator.watchedStreams, { timeout: 5_000 }).toBe(0);
    // The key's read waits behind a lock, as on a busy database; the client hangs up meanwhile.
    const released = prisma.$transaction(async (tx) => {
      await tx.$executeRaw`LOCK TABLE api_key IN ACCESS EXCLUSIVE MODE`;
      await new Promise((resolve) => setTimeout(resolve, TRUST_MS * 2));
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: carol } }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.terminate();
    await released;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(authenticator.watchedStreams).toBe(0);
  });

  it('starts nothing more on a socket opened before it was revoked', async () => {
    const bob = await server.tenant('bob');
    const socket = wsClient(server.wsUrl, bob);
    try {
      const ask = () =>
        new Promise<any>((resolve) => {
          socket.subscribe(
            { query: '{ webhookSecret }' },
            { next: resolve, error: (error: any) => resolve(Array.isArray(error) ? { errors: error } : { code: error.code, reason: error.reason }), complete: () => {} },
          );
        });
      expect(await ask()).toMatchObject({ data: { webhookSecret: expect.stringMatching(/^whsec_/) } });
      await revokeApiKey(server.service.db.prisma, keyOf(bob));
      // Past the key's trust: refused by the operation's own check, or the socket closed by the watch.
      await new Promise((resolve) => setTimeout(resolve, TRUST_MS + 50));
      const answer = await ask();
      expect(JSON.stringify(answer)).toMatch(/UNAUTHENTICATED|4403/);
      expect(JSON.stringify(answer)).not.toMatch(/whsec_/);
    } finally {
      await socket.dispose();
    }
  });
});

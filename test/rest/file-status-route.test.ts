import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let alice: string;
let bob: string;
let aliceFile: string;

beforeAll(async () => {
  server = await startTestServer();
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
  const { body } = await uploadFile(server.url, alice, 'some words to process');
  aliceFile = body.data.uploadFile.file.id;
  await waitForTerminal(server.url, alice, aliceFile);
});
afterAll(() => server.stop());

function poll(fileId: string | null, authorization?: string, headers: Record<string, string> = {}, method = 'GET') {
  const query = fileId === null ? '' : `?file_id=${encodeURIComponent(fileId)}`;
  return fetch(`${server.url}/api/file/status${query}`, {
    method,
    headers: { ...(authorization ? { authorization } : {}), ...headers },
  });
}

describe('GET /api/file/status', () => {
  it('answers the current status in snake_case', async () => {
    const response = await poll(aliceFile, alice);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await response.json();
    expect(body).toMatchObject({
      file_id: aliceFile,
      status: 'completed',
      stage: 'done',
      progress: 100,
      message: null,
      attempt: 1,
      eta_seconds: null,
    });
    expect(body.metadata).toMatchObject({ mimeType: 'text/plain', words: 4 });
    expect(Number.isInteger(body.sequence)).toBe(true);
    expect(new Date(body.updated_at).toISOString()).toBe(body.updated_at);
    expect(response.headers.get('retry-after')).toBeNull();
  });

  it('answers 304 with no body while the ETag still matches, and 200 once it does not', async () => {
    const first = await poll(aliceFile, alice);
    const etag = first.headers.get('etag');
    expect(etag).toBeTruthy();
    const again = await poll(aliceFile, alice, { 'if-none-match': etag! });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    const listed = await poll(aliceFile, alice, { 'if-none-match': `"other", ${etag}` });
    expect(listed.status).toBe(304);
    const stale = await poll(aliceFile, alice, { 'if-none-match': '"stale.1"' });
    expect(stale.status).toBe(200);
  });

  it('sends Retry-After while the file is processing, and a new ETag once it changes', async () => {
    // One worker, busy with a large file: the next file waits in the queue.
    const busy = await startTestServer({ WORKER_CONCURRENCY: '1' });
    try {
      const key = await busy.tenant('carol');
      const large = await uploadFile(busy.url, key, 'lorem ipsum dolor '.repeat(1_500_000));
      const { body } = await uploadFile(busy.url, key, 'waiting');
      const fileId = body.data.uploadFile.file.id;
      const response = await fetch(`${busy.url}/api/file/status?file_id=${fileId}`, { headers: { authorization: key } });
      const queued = await response.json();
      expect(queued).toMatchObject({ status: 'processing', stage: 'queued' });
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(10);
      const etag = response.headers.get('etag')!;

      await waitForTerminal(busy.url, key, fileId);
      const changed = await fetch(`${busy.url}/api/file/status?file_id=${fileId}`, {
        headers: { authorization: key, 'if-none-match': etag },
      });
      expect(changed.status).toBe(200);
      expect(changed.headers.get('etag')).not.toBe(etag);
      expect(changed.headers.get('retry-after')).toBeNull();
      await waitForTerminal(busy.url, key, large.body.data.uploadFile.file.id);
    } finally {
      await busy.stop();
    }
  });

  it.each([
    ['an unknown id', '00000000-0000-4000-8000-000000000000'],
    ['an id that is not a UUID', 'not-a-uuid'],
    ['an injection attempt', "' OR 1=1 --"],
  ])('answers 404 with a JSON error for %s', async (_name, id) => {
    const response = await poll(id, alice);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No file with this id.' } });
  });

  it("answers another tenant's file exactly as an unknown one", async () => {
    const theirs = await poll(aliceFile, bob);
    const unknown = await poll('00000000-0000-4000-8000-000000000000', bob);
    expect(theirs.status).toBe(404);
    expect(await theirs.json()).toEqual(await unknown.json());
    expect(theirs.headers.get('etag')).toBeNull();
  });

  it('reads a file named in upper case as the same file, and hears its changes at once', async () => {
    const { body } = await uploadFile(server.url, alice, Buffer.from([0, 1, 2, 3, 255, 0]), { filename: 'blob.bin' });
    const id: string = body.data.uploadFile.file.id;
    await waitForTerminal(server.url, alice, id);
    const failed = await poll(id.toUpperCase(), alice);
    expect(await failed.json()).toMatchObject({ file_id: id, status: 'failed', attempt: 1 });

    await graphql(server.url, alice, 'mutation($id: ID!) { retryFile(fileId: $id) { attempt } }', { id });
    const retried = await poll(id.toUpperCase(), alice);
    expect(await retried.json()).toMatchObject({ file_id: id, attempt: 2 });
  });

  it('answers 400 without file_id', async () => {
    const response = await poll(null, alice);
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe('BAD_REQUEST');
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer fsk_nope'],
    ['a key without its scheme', 'fsk_nope'],
  ])('answers 401 to %s, without saying whether the file exists', async (_name, authorization) => {
    const response = await poll(aliceFile, authorization);
    expect(response.status).toBe(401);
    expect((await response.json()).error.code).toBe('UNAUTHENTICATED');
  });

  it('answers 405 to other methods', async () => {
    const response = await poll(aliceFile, alice, {}, 'DELETE');
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  });
});

describe('GET /api/file/status from a browser page of another origin', () => {
  const origin = { origin: 'http://127.0.0.2:8080' };

  it('answers the preflight for the key and the ETag, without a key', async () => {
    const response = await poll(aliceFile, undefined, {
      ...origin,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization, if-none-match',
    }, 'OPTIONS');
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-methods')).toBe('GET, HEAD');
    expect(response.headers.get('access-control-allow-headers')).toBe('authorization, if-none-match');
    expect(await response.text()).toBe('');
  });

  it('lets the page read the status, the ETag and Retry-After, the 304 and the errors', async () => {
    const completed = await poll(aliceFile, alice, origin);
    const unchanged = await poll(aliceFile, alice, { ...origin, 'if-none-match': completed.headers.get('etag')! });
    const unknown = await poll(crypto.randomUUID(), alice, origin);
    const keyless = await poll(aliceFile, undefined, origin);
    for (const [response, status] of [[completed, 200], [unchanged, 304], [unknown, 404], [keyless, 401]] as const) {
      expect(response.status).toBe(status);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('access-control-expose-headers')).toBe('etag, retry-after');
    }
  });
});

describe('a malformed request target', () => {
  it('answers 400 and keeps serving', async () => {
    const net = await import('node:net');
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1', () => socket.end('GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('health', () => {
  it('/healthz says the process is up and /readyz that the database is migrated', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});

import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';
import { multipartBody, rawRequest as rawRequestTo, UPLOAD_MAP as MAP, UPLOAD_OPERATIONS as OPERATIONS } from '../helpers/raw-multipart.js';

const LIMIT = 64 * 1024;
let server: TestServer;
let alice: string;

beforeAll(async () => {
  server = await startTestServer({
    MAX_UPLOAD_BYTES: String(LIMIT),
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0',
  });
  alice = await server.tenant('alice');
});
afterAll(() => server.stop());

const rawRequest = (body: string | Buffer, headers: Record<string, string>, options?: { abortAfterBytes?: number }) =>
  rawRequestTo(server.url, body, headers, options);

async function fileCount(): Promise<number> {
  return server.service.db.prisma.file.count();
}

describe('uploadFile', () => {
  it('stores the file, answers at once with its id and first status, then processes it', async () => {
    const content = 'Hello,\r\nworld of files.\n';
    const { status, body } = await uploadFile(server.url, alice, content, { filename: 'hello.txt' });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const { file, status: first } = body.data.uploadFile;
    expect(file.filename).toBe('hello.txt');
    expect(file.size).toBe(Buffer.byteLength(content));
    expect(file.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(first).toMatchObject({ fileId: file.id, status: 'PROCESSING', stage: 'QUEUED', progress: 0, sequence: 1, attempt: 1 });

    const done = await waitForTerminal(server.url, alice, file.id);
    expect(done).toMatchObject({ status: 'COMPLETED', stage: 'DONE', progress: 100, attempt: 1, message: null });
    expect(done.metadata).toMatchObject({ mimeType: 'text/plain', size: file.size, sha256: file.sha256, words: 4 });
    expect(done.metadata.textLength).toBe('Hello,\nworld of files.\n'.length);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('sniffs the type from the bytes, not from the claim, and fails a type that is not allowed', async () => {
    const executable = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200, 0x90), Buffer.from([0, 0, 0])]);
    const { body } = await uploadFile(server.url, alice, executable, { filename: 'cat.png', type: 'image/png' });
    const id = body.data.uploadFile.file.id;
    const failed = await waitForTerminal(server.url, alice, id);
    expect(failed.status).toBe('FAILED');
    expect(failed.stage).toBe('VALIDATING');
    expect(failed.message).toMatch(/not accepted/);
    expect(failed.message).not.toMatch(/Error:|\bat \w|node_modules|\/tmp\/|\/work\//);
  });

  it('retryFile queues a FAILED file again with the next attempt, and refuses other files', async () => {
    const { body } = await uploadFile(server.url, alice, Buffer.from([0, 1, 2, 3, 255, 0]), { filename: 'blob.bin' });
    const id = body.data.uploadFile.file.id;
    await waitForTerminal(server.url, alice, id);
    const retried = await graphql(server.url, alice, 'mutation($id: ID!) { retryFile(fileId: $id) { status stage attempt progress } }', { id });
    expect(retried.body.data.retryFile).toEqual({ status: 'PROCESSING', stage: 'QUEUED', attempt: 2, progress: 0 });
    const readBack = await graphql(server.url, alice, 'query($id: ID!) { fileStatus(fileId: $id) { attempt } }', { id });
    expect(readBack.body.data.fileStatus.attempt).toBe(2);
    const again = await waitForTerminal(server.url, alice, id);
    expect(again).toMatchObject({ status: 'FAILED', attempt: 2 });

    const ok = await uploadFile(server.url, alice, 'fine');
    const okId = ok.body.data.uploadFile.file.id;
    await waitForTerminal(server.url, alice, okId);
    const refused = await graphql(server.url, alice, 'mutation($id: ID!) { retryFile(fileId: $id) { attempt } }', { id: okId });
    expect(refused.body.errors?.[0].extensions?.code).toBe('NOT_FAILED');
  });

  it('stores the webhook it is given, and refuses a URL that is not absolute http(s)', async () => {
    const good = await uploadFile(server.url, alice, 'hook', {
      variables: { webhookUrl: 'http://127.0.0.1:9/hooks', webhookEvents: ['FILE_COMPLETED'] },
    });
    const row = await server.service.db.prisma.file.findUnique({ where: { id: good.body.data.uploadFile.file.id } });
    expect(row).toMatchObject({ webhookUrl: 'http://127.0.0.1:9/hooks', webhookEvents: ['file.completed'] });

    const before = await fileCount();
    for (const webhookUrl of ['not a url', '/relative/path', 'ftp://127.0.0.1/x', 'javascript:alert(1)', `http://127.0.0.1/${'a'.repeat(3000)}`]) {
      const { body } = await uploadFile(server.url, alice, 'hook', { variables: { webhookUrl } });
      expect(body.errors?.[0].extensions?.code, webhookUrl).toBe('INVALID_WEBHOOK_URL');
    }
    const refusals = [
      // 1,000 spaces are 3,000 characters once percent-encoded, which is what would be stored and sent.
      [{ webhookUrl: `http://127.0.0.1/a${' '.repeat(1_000)}b` }, 'The webhook URL is longer than 2048 characters once encoded.'],
    ] as const;
    for (const [variables, message] of refusals) {
      const { body } = await uploadFile(server.url, alice, 'hook', { variables });
      expect(body.errors?.[0]).toMatchObject({ message, extensions: { code: 'INVALID_WEBHOOK_URL' } });
    }
    // Nothing wrong with the URL: the choice of events is what cannot be used.
    const badChoices = [
      // An empty choice used to mean all three.
      [{ webhookUrl: 'http://127.0.0.1:9/hooks', webhookEvents: [] }, 'webhookEvents is empty: name at least one event type, or leave it out for all three.'],
      [{ webhookEvents: [] }, 'webhookEvents is empty: name at least one event type, or leave it out for all three.'],
      [{ webhookEvents: ['FILE_FAILED'] }, 'webhookEvents needs a webhookUrl to deliver to.'],
    ] as const;
    for (const [variables, message] of badChoices) {
      const { body } = await uploadFile(server.url, alice, 'hook', { variables });
      expect(body.errors?.[0]).toMatchObject({ message, extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });
});

describe('uploadFile with bad input', () => {
  it('answers FILE_TOO_LARGE over MAX_UPLOAD_BYTES and keeps nothing', async () => {
    const before = await fileCount();
    const { status, body } = await uploadFile(server.url, alice, Buffer.alloc(LIMIT + 1, 'a'));
    expect(status).toBe(413);
    expect(body.errors?.[0].extensions?.code).toBe('FILE_TOO_LARGE');
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('answers FILE_TOO_LARGE with the limit also when the whole body is parsed before the resolver runs', async () => {
    const tiny = await startTestServer({ MAX_UPLOAD_BYTES: '1000' });
    try {
      const key = await tiny.tenant('tiny');
      const { status, body } = await uploadFile(tiny.url, key, Buffer.alloc(2000, 'a'));
      expect(status).toBe(413);
      expect(body.errors?.[0].extensions?.code).toBe('FILE_TOO_LARGE');
      expect(body.errors?.[0].message).toMatch(/limit of 1000 bytes/);
      expect(await tiny.leftoverUploads()).toEqual([]);
    } finally {
      await tiny.stop();
    }
  });

  it('accepts a file of exactly MAX_UPLOAD_BYTES', async () => {
    const { body } = await uploadFile(server.url, alice, Buffer.alloc(LIMIT, 'a'));
    expect(body.data.uploadFile.file.size).toBe(LIMIT);
  });

  it('leaves no partial file and no row when the client aborts mid-upload, and keeps serving', async () => {
    const before = await fileCount();
    const boundary = 'abort-boundary';
    const body = multipartBody(boundary, [
      { name: 'operations', value: OPERATIONS },
      { name: 'map', value: MAP },
      { name: '0', value: Buffer.alloc(LIMIT / 2, 'x'), filename: 'big.txt' },
    ]);
    const result = await rawRequest(
      body,
      { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length), authorization: alice, 'x-graphql-yoga-csrf': '1' },
      { abortAfterBytes: body.length - LIMIT / 4 },
    );
    expect(result).toBe('aborted');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await server.leftoverUploads()).toEqual([]);
    expect(await fileCount()).toBe(before);
    const next = await uploadFile(server.url, alice, 'still alive');
    expect(next.body.data.uploadFile.file.id).toBeTruthy();
  });

  const boundary = 'bad-boundary';
  const malformed: [string, Buffer, RegExp][] = [
    ['operations that are not JSON', multipartBody(boundary, [{ name: 'operations', value: '{nope' }]), /Invalid JSON/],
    ['no map', multipartBody(boundary, [{ name: 'operations', value: OPERATIONS }]), /Missing multipart field 'map'/],
    [
      'a map naming a file that never comes',
      multipartBody(boundary, [
        { name: 'operations', value: OPERATIONS },
        { name: 'map', value: MAP },
      ]),
      /No file arrived|File missing/,
    ],
    [
      'two files',
      multipartBody(boundary, [
        { name: 'operations', value: OPERATIONS },
        { name: 'map', value: JSON.stringify({ 0: ['variables.file'], 1: ['variables.other'] }) },
        { name: '0', value: 'a', filename: 'a.txt' },
        { name: '1', value: 'b', filename: 'b.txt' },
      ]),
      /one file per request/,
    ],
    ['a body that is not multipart at all', Buffer.from('garbage without boundaries'), /Malformed multipart|Unexpected end/],
    // Each of these made the parser fail twice, and the second failure ended the server's process.
    [
      'a file part whose header is over 16 KB',
      multipartBody(boundary, [
        { name: 'operations', value: OPERATIONS },
        { name: 'map', value: MAP },
        { name: '0', value: 'a', filename: 'a'.repeat(17_000) },
      ]),
      /No file arrived: Malformed part header/,
    ],
    [
      'a NUL byte in a filename',
      multipartBody(boundary, [
        { name: 'operations', value: OPERATIONS },
        { name: 'map', value: MAP },
        { name: '0', value: 'a', filename: 'a\0b.txt' },
      ]),
      /No file arrived: Malformed part header/,
    ],
  ];
  it.each(malformed)('answers %s with a clear error and stores nothing', async (_name, body, message) => {
    const before = await fileCount();
    const result = await rawRequest(body, {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      authorization: alice,
      'x-graphql-yoga-csrf': '1',
    });
    if (result === 'aborted') throw new Error('the server dropped the connection');
    expect(result.status).toBeGreaterThanOrEqual(200);
    expect(result.body).toMatch(message);
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('answers a body cut before its file ends (no closing boundary) with BAD_REQUEST and stores nothing', async () => {
    const before = await fileCount();
    // Read while it streams, and (a small one) parsed whole before the resolver asks for it.
    for (const [content, cutBytes] of [['x'.repeat(10_000), 2_000], ['hello world', `\r\n--${boundary}--\r\n`.length]] as const) {
      const whole = multipartBody(boundary, [
        { name: 'operations', value: OPERATIONS },
        { name: 'map', value: MAP },
        { name: '0', value: content, filename: 'cut.txt' },
      ]);
      const result = await rawRequest(whole.subarray(0, whole.length - cutBytes), {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        authorization: alice,
        'x-graphql-yoga-csrf': '1',
      });
      if (result === 'aborted') throw new Error('the server dropped the connection');
      expect(result.status).toBe(400);
      const { errors } = JSON.parse(result.body);
      expect(errors).toEqual([
        expect.objectContaining({ message: 'The request ended before its file did: Unexpected end of form', extensions: expect.objectContaining({ code: 'BAD_REQUEST' }) }),
      ]);
    }
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('answers TOO_MANY_FILES for a second file part, wherever it comes, and stores nothing', async () => {
    const before = await fileCount();
    const file = (name: string) => ({ name, value: 'hello', filename: `${name}.txt` });
    for (const files of [[file('0'), file('0')], [file('extra'), file('0')], [file('0'), file('extra')]]) {
      const result = await rawRequest(multipartBody(boundary, [{ name: 'operations', value: OPERATIONS }, { name: 'map', value: MAP }, ...files]), {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        authorization: alice,
        'x-graphql-yoga-csrf': '1',
      });
      if (result === 'aborted') throw new Error('the server dropped the connection');
      expect(JSON.parse(result.body).errors, JSON.stringify(files)).toEqual([
        expect.objectContaining({ message: 'Send one file per request.', extensions: expect.objectContaining({ code: 'TOO_MANY_FILES' }) }),
      ]);
    }
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('takes a multipart media type in any case', async () => {
    const result = await rawRequest(
      multipartBody(boundary, [{ name: 'operations', value: OPERATIONS }, { name: 'map', value: MAP }, { name: '0', value: 'hello', filename: 'a.txt' }]),
      { 'content-type': `Multipart/Form-Data; boundary=${boundary}`, authorization: alice, 'x-graphql-yoga-csrf': '1' },
    );
    if (result === 'aborted') throw new Error('the server dropped the connection');
    const { data, errors } = JSON.parse(result.body);
    expect(errors).toBeUndefined();
    expect(data.uploadFile.file.id).toBeTruthy();
  });

  it('reads the rest of a large upload it refused before reading its file, so the client is answered, not reset', async () => {
    const before = await fileCount();
    const operations = JSON.stringify({
      query: 'mutation($file: Upload!, $url: String) { uploadFile(file: $file, webhookUrl: $url) { file { id } } }',
      variables: { file: null, url: 'ftp://example.com/hook' },
    });
    const body = multipartBody(boundary, [
      { name: 'operations', value: operations },
      { name: 'map', value: MAP },
      { name: '0', value: Buffer.alloc(8 * 1024 * 1024, 'x'), filename: 'large.txt' },
    ]);
    // Both ends must finish: the answer, and the sending of every byte, which failed with a reset
    // once the server stopped reading.
    const { answer, sent } = await new Promise<{ answer: string; sent: boolean }>((resolve, reject) => {
      let answer: string | undefined;
      let sent = false;
      const settle = () => answer !== undefined && sent && resolve({ answer, sent });
      const req = http.request(
        `${server.url}/graphql`,
        { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: alice, 'x-graphql-yoga-csrf': '1' } },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => {
            answer = text;
            settle();
          });
        },
      );
      req.on('error', reject);
      req.end(body, () => {
        sent = true;
        settle();
      });
    });
    expect(sent).toBe(true);
    expect(JSON.parse(answer).errors[0].extensions.code).toBe('INVALID_WEBHOOK_URL');
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('refuses uploadFile twice in one document, before storing anything', async () => {
    const before = await fileCount();
    const operations = JSON.stringify({
      query: 'mutation($file: Upload!) { a: uploadFile(file: $file) { file { id } } b: uploadFile(file: $file) { file { id } } }',
      variables: { file: null },
    });
    const result = await rawRequest(
      multipartBody(boundary, [
        { name: 'operations', value: operations },
        { name: 'map', value: MAP },
        { name: '0', value: 'twice', filename: 'twice.txt' },
      ]),
      { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: alice, 'x-graphql-yoga-csrf': '1' },
    );
    if (result === 'aborted') throw new Error('the server dropped the connection');
    const body = JSON.parse(result.body);
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      expect.objectContaining({ message: 'Upload one file per request: uploadFile may appear once in a document.', extensions: { code: 'BAD_USER_INPUT' } }),
    ]);
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('keeps a filename without its control characters, and cuts a long one between characters', async () => {
    const named = async (disposition: string) => {
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${OPERATIONS}\r\n`),
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${MAP}\r\n`),
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="0"; ${disposition}\r\nContent-Type: text/plain\r\n\r\nnamed\r\n--${boundary}--\r\n`),
      ]);
      const result = await rawRequest(body, { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: alice, 'x-graphql-yoga-csrf': '1' });
      if (result === 'aborted') throw new Error('the server dropped the connection');
      const { data, errors } = JSON.parse(result.body);
      expect(errors).toBeUndefined();
      return (await server.service.db.prisma.file.findUniqueOrThrow({ where: { id: data.uploadFile.file.id } })).filename;
    };
    // A NUL arrives percent-encoded in filename*; PostgreSQL refused it, and the client got an internal error.
    expect(await named("filename*=UTF-8''%E2%9C%93%00x%0A.txt")).toBe('✓x.txt');
    const emoji = '😀'.repeat(300);
    expect(await named(`filename*=UTF-8''${encodeURIComponent(emoji)}`)).toBe('😀'.repeat(255));
  });

  it('refuses a multipart request, or a GET, without a CSRF header, with CSRF_HEADER_REQUIRED and before reading it', async () => {
    const before = await fileCount();
    const form = new FormData();
    form.set('operations', OPERATIONS);
    form.set('map', MAP);
    form.set('0', new Blob(['x']), 'x.txt');
    const response = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { authorization: alice }, body: form });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({
      errors: [
        {
          message: 'Required CSRF header(s) not present: send one of x-graphql-yoga-csrf, apollo-require-preflight, graphql-preflight (any value).',
          extensions: { code: 'CSRF_HEADER_REQUIRED' },
        },
      ],
    });
    expect(await fileCount()).toBe(before);
    // A GET is a simple request too: it needs the header as well, and runs with it.
    const get = (headers: Record<string, string>) => fetch(`${server.url}/graphql?query=${encodeURIComponent('{ webhookSecret }')}`, { headers: { authorization: alice, ...headers } });
    const refused = await get({});
    expect(refused.status).toBe(403);
    expect((await refused.json()).errors[0].extensions).toEqual({ code: 'CSRF_HEADER_REQUIRED' });
    const answered = await get({ 'x-graphql-yoga-csrf': '1' });
    expect((await answered.json()).data.webhookSecret).toMatch(/^whsec_/);
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer fsk_wrong'],
    ['a malformed header', 'Basic dXNlcjpwYXNz'],
  ])('answers 401 to an upload with %s and stores nothing', async (_name, authorization) => {
    const before = await fileCount();
    const { status, body } = await uploadFile(server.url, authorization, Buffer.alloc(1024, 'a'));
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(await fileCount()).toBe(before);
    expect(await server.leftoverUploads()).toEqual([]);
  });

  it('refuses a JSON body over its limit, declared or chunked, and closes that connection: the next request is served at once', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(1_100_000) } });
    const post = (chunked: boolean, payload: string) =>
      new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
        const headers: Record<string, string> = { 'content-type': 'application/json', authorization: alice };
        if (!chunked) headers['content-length'] = String(Buffer.byteLength(payload));
        const req = http.request(`${server.url}/graphql`, { method: 'POST', agent, headers }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: text }));
        });
        req.on('error', reject);
        if (chunked) {
          req.write(payload.slice(0, 600_000));
          setTimeout(() => req.end(payload.slice(600_000)), 10);
        } else {
          req.end(payload);
        }
      });
    try {
      for (const chunked of [false, true]) {
        const refused = await post(chunked, body).catch((error: Error) => ({ status: 0, connection: undefined, body: String(error) }));
        expect(refused, `chunked: ${chunked}`).toMatchObject({ status: 413, connection: 'close' });
        expect(JSON.parse(refused.body).errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
        const started = performance.now();
        const next = await post(chunked, JSON.stringify({ query: '{ __typename }' }));
        expect(next.status).toBe(200);
        expect(performance.now() - started).toBeLessThan(1_000);
      }
    } finally {
      agent.destroy();
    }
  });
});

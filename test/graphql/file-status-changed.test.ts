import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { MAX_OPERATIONS_PER_CONNECTION } from '../../src/graphql/websocket-server.js';
import { STATUS_SUBSCRIPTION, collect, wsClient } from '../helpers/subscriptions.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let alice: string;
let bob: string;

beforeAll(async () => {
  server = await startTestServer();
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
});
afterAll(() => server.stop());

function expectGapFreeToTerminal(events: any[], fileId: string) {
  expect(events.length).toBeGreaterThan(1);
  events.forEach((event, index) => {
    expect(event.fileId).toBe(fileId);
    if (index > 0) expect(event.sequence).toBe(events[index - 1].sequence + 1);
    if (index > 0 && event.attempt === events[index - 1].attempt) {
      expect(event.progress).toBeGreaterThanOrEqual(events[index - 1].progress);
    }
  });
  expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', stage: 'DONE', progress: 100 });
  expect(events.slice(0, -1).every((event) => event.status === 'PROCESSING')).toBe(true);
}

describe('fileStatusChanged over graphql-ws', () => {
  it('sends the snapshot first, then every change in order, and completes after the terminal status', async () => {
    const { body } = await uploadFile(server.url, alice, 'word '.repeat(2_000_000));
    const fileId = body.data.uploadFile.file.id;
    const client = wsClient(server.wsUrl, alice);
    try {
      const watch = collect(client, { fileId });
      await watch.done;
      expect(watch.errors).toEqual([]);
      expectGapFreeToTerminal(watch.events, fileId);
      // The stream went through the stages, with progress reports while converting.
      const stages = watch.events.map((event) => event.stage);
      expect(stages).toContain('CONVERTING');
      expect(stages).toContain('STORING');
    } finally {
      await client.dispose();
    }
  });

  it('sends a finished file its terminal status once, then completes', async () => {
    const { body } = await uploadFile(server.url, alice, 'short');
    const fileId = body.data.uploadFile.file.id;
    const final = await waitForTerminal(server.url, alice, fileId);
    const client = wsClient(server.wsUrl, alice);
    try {
      const watch = collect(client, { fileId });
      await watch.done;
      expect(watch.events).toHaveLength(1);
      expect(watch.events[0]).toMatchObject({ status: 'COMPLETED', sequence: final.sequence });
    } finally {
      await client.dispose();
    }
  });

  it('loses nothing for many subscribers watching many files at once', async () => {
    const client = wsClient(server.wsUrl, alice);
    try {
      const uploads = await Promise.all(
        Array.from({ length: 10 }, (_, index) => uploadFile(server.url, alice, `file ${index} `.repeat(200_000))),
      );
      const watches = uploads.flatMap(({ body }) => {
        const fileId = body.data.uploadFile.file.id;
        return [0, 1, 2].map(() => ({ fileId, watch: collect(client, { fileId }) }));
      });
      await Promise.all(watches.map(({ watch }) => watch.done));
      for (const { fileId, watch } of watches) {
        expect(watch.events.length).toBeGreaterThan(0);
        const last = watch.events.at(-1);
        expect(last.status).toBe('COMPLETED');
        const sequences = watch.events.map((event) => event.sequence);
        expect(sequences).toEqual(sequences.map((_, index) => sequences[0] + index));
        expect(watch.events.every((event) => event.fileId === fileId)).toBe(true);
      }
    } finally {
      await client.dispose();
    }
  });

  it("streams every change of the caller's files without a fileId, and none of another tenant's", async () => {
    const aliceClient = wsClient(server.wsUrl, alice);
    const bobClient = wsClient(server.wsUrl, bob);
    try {
      const aliceAll = collect(aliceClient, {});
      const bobAll = collect(bobClient, {});
      await new Promise((resolve) => setTimeout(resolve, 200));
      const { body } = await uploadFile(server.url, alice, 'tenant stream');
      const fileId = body.data.uploadFile.file.id;
      await waitForTerminal(server.url, alice, fileId);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const mine = aliceAll.events.filter((event) => event.fileId === fileId);
      expect(mine[0]).toMatchObject({ sequence: 1, stage: 'QUEUED' });
      expect(mine.map((event) => event.sequence)).toEqual(mine.map((_, index) => index + 1));
      expect(mine.at(-1).status).toBe('COMPLETED');
      expect(bobAll.events.filter((event) => event.fileId === fileId)).toEqual([]);
      aliceAll.stop();
      bobAll.stop();
    } finally {
      await aliceClient.dispose();
      await bobClient.dispose();
    }
  });

  it.each([
    ["another tenant's file", async () => (await uploadFile(server.url, alice, 'private')).body.data.uploadFile.file.id],
    ['an unknown file', async () => '00000000-0000-4000-8000-000000000000'],
    ['an id that is not a UUID', async () => 'nope'],
  ])('answers %s with NOT_FOUND', async (_name, fileIdOf) => {
    const fileId = await fileIdOf();
    const client = wsClient(server.wsUrl, bob);
    try {
      const watch = collect(client, { fileId });
      await watch.done.catch(() => {});
      expect(watch.events).toEqual([]);
      expect(JSON.stringify(watch.errors)).toMatch(/NOT_FOUND/);
    } finally {
      await client.dispose();
    }
  });

  it('follows a file named by its id in upper case', async () => {
    const { body } = await uploadFile(server.url, alice, 'word '.repeat(500_000));
    const fileId = body.data.uploadFile.file.id;
    const client = wsClient(server.wsUrl, alice);
    try {
      const watch = collect(client, { fileId: fileId.toUpperCase() });
      await watch.done;
      expect(watch.errors).toEqual([]);
      expectGapFreeToTerminal(watch.events, fileId);
    } finally {
      await client.dispose();
    }
  });

  it.each([
    ['a query that does not parse', 'subscription { fileStatusChanged(', /Syntax Error/],
    ['a field that does not exist', 'subscription { nothingHere }', /Cannot query field/],
  ])('answers %s with an error for that operation, and keeps the socket open', async (_name, query, message) => {
    const client = wsClient(server.wsUrl, alice);
    try {
      const failure = await new Promise<unknown>((resolve) => {
        client.subscribe({ query }, { next: () => {}, error: resolve, complete: () => resolve(null) });
      });
      expect(JSON.stringify(failure)).toMatch(message);
      // The same socket still serves a good subscription.
      const { body } = await uploadFile(server.url, alice, 'after a bad query');
      const watch = collect(client, { fileId: body.data.uploadFile.file.id });
      await watch.done;
      expect(watch.events.at(-1)).toMatchObject({ status: 'COMPLETED' });
    } finally {
      await client.dispose();
    }
  });

  it(`refuses more than ${MAX_OPERATIONS_PER_CONNECTION} operations at once on one socket, and serves it on`, async () => {
    const client = wsClient(server.wsUrl, alice);
    try {
      const tenantWide = Array.from({ length: MAX_OPERATIONS_PER_CONNECTION }, () => collect(client, {}));
      const oneTooMany = collect(client, {});
      const refusal = await oneTooMany.done.then(() => null, (reason) => reason);
      expect(refusal).toEqual([
        expect.objectContaining({ message: `At most ${MAX_OPERATIONS_PER_CONNECTION} operations at once on one connection: complete one first.`, extensions: { code: 'TOO_MANY_OPERATIONS' } }),
      ]);
      // Once one completes, there is room again, and the streams already open still get every change.
      tenantWide.pop()!.stop();
      const { body } = await uploadFile(server.url, alice, 'watched by many');
      const fileId = body.data.uploadFile.file.id;
      const watch = collect(client, { fileId });
      await watch.done;
      expect(watch.errors).toEqual([]);
      expectGapFreeToTerminal(watch.events, fileId);
      const deadline = Date.now() + 5_000;
      while (!tenantWide.every((stream) => stream.events.some((event) => event.fileId === fileId && event.status === 'COMPLETED'))) {
        if (Date.now() > deadline) throw new Error('an open stream missed the change');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await client.dispose();
    }
  });

  it('closes a socket that sends a message over 1 MB with 1009, printing nothing outside the JSON logs', async () => {
    const printed = vi.spyOn(console, 'error');
    try {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      const closed = new Promise<number>((resolve) => socket.once('close', resolve));
      socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: alice, padding: 'x'.repeat(1_100_000) } }));
      expect(await closed).toBe(1009);
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
  });

  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer fsk_wrong'],
  ])('closes a connection with %s as Forbidden', async (_name, authorization) => {
    const client = wsClient(server.wsUrl, authorization);
    try {
      const watch = collect(client, {});
      const error = await watch.done.then(
        () => null,
        (reason) => reason,
      );
      expect(error?.code).toBe(4403);
      expect(watch.events).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it.each([
    ['as Authorization', (key: string) => ({ Authorization: key }), true],
    ['inside headers', (key: string) => ({ headers: { authorization: key } }), true],
    ['inside headers, a wrong one', () => ({ headers: { Authorization: 'Bearer fsk_wrong' } }), false],
    ['as a number', () => ({ authorization: 42 }), false],
  ])('takes the key sent %s as HTTP would', async (_name, params, accepted) => {
    const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0, connectionParams: params(alice) });
    try {
      const answer = await new Promise<unknown>((resolve) => {
        client.subscribe({ query: '{ webhookSecret }' }, { next: resolve, error: resolve, complete: () => {} });
      });
      if (accepted) expect(answer).toMatchObject({ data: { webhookSecret: expect.stringMatching(/^whsec_/) } });
      else expect(answer).toMatchObject({ code: 4403 });
    } finally {
      await client.dispose();
    }
  });
});

describe('fileStatusChanged over SSE', () => {
  async function readSse(authorization: string | undefined, fileId: string) {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ query: STATUS_SUBSCRIPTION, variables: { fileId } }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('event: next'))
      .map((block) => JSON.parse(block.split('\n').find((line) => line.startsWith('data: '))!.slice(6)));
    return { response, text, events };
  }

  it('sends the snapshot and every change, then ends the stream', async () => {
    const { body } = await uploadFile(server.url, alice, 'sse '.repeat(1_000_000));
    const fileId = body.data.uploadFile.file.id;
    const { response, text, events } = await readSse(alice, fileId);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    expectGapFreeToTerminal(events.map((event) => event.data.fileStatusChanged), fileId);
    expect(text).toMatch(/event: complete/);
  });

  it("refuses another tenant's file and a missing key", async () => {
    const { body } = await uploadFile(server.url, alice, 'mine');
    const fileId = body.data.uploadFile.file.id;
    const foreign = await readSse(bob, fileId);
    expect(foreign.text).toMatch(/NOT_FOUND/);
    expect(foreign.events.every((event) => !event.data)).toBe(true);
    const anonymous = await readSse(undefined, fileId);
    expect(anonymous.text).toMatch(/UNAUTHENTICATED/);
    expect(anonymous.text).not.toMatch(/fileStatusChanged"?:\s*\{/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let alice: string;
let bob: string;
const aliceFiles: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
  for (const name of ['a.txt', 'b.txt', 'c.txt']) {
    const { body } = await uploadFile(server.url, alice, `content of ${name}`, { filename: name });
    aliceFiles.push(body.data.uploadFile.file.id);
  }
  await Promise.all(aliceFiles.map((id) => waitForTerminal(server.url, alice, id)));
});
afterAll(() => server.stop());

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

describe('queries', () => {
  it('file and fileStatus answer the owner', async () => {
    const { body } = await graphql(server.url, alice, 'query($id: ID!) { file(id: $id) { id filename status { status } } fileStatus(fileId: $id) { fileId } }', {
      id: aliceFiles[0],
    });
    expect(body.data).toEqual({
      file: { id: aliceFiles[0], filename: 'a.txt', status: { status: 'COMPLETED' } },
      fileStatus: { fileId: aliceFiles[0] },
    });
  });

  it("answer another tenant's file exactly as an unknown one", async () => {
    const query = 'query($id: ID!) { file(id: $id) { id } fileStatus(fileId: $id) { fileId } }';
    const theirs = await graphql(server.url, bob, query, { id: aliceFiles[0] });
    const unknown = await graphql(server.url, bob, query, { id: UNKNOWN });
    expect(theirs).toEqual(unknown);
    expect(theirs.body).toEqual({ data: { file: null, fileStatus: null } });
  });

  it('files lists only the caller’s files, newest first, page by page', async () => {
    const query = `query($after: String, $status: ProcessingStatus) {
      files(first: 2, after: $after, status: $status) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } }
    }`;
    const first = await graphql(server.url, alice, query);
    expect(first.body.data.files.edges.map((edge: any) => edge.node.id)).toEqual([aliceFiles[2], aliceFiles[1]]);
    expect(first.body.data.files.pageInfo.hasNextPage).toBe(true);
    const second = await graphql(server.url, alice, query, { after: first.body.data.files.pageInfo.endCursor });
    expect(second.body.data.files.edges.map((edge: any) => edge.node.id)).toEqual([aliceFiles[0]]);
    expect(second.body.data.files.pageInfo).toMatchObject({ hasNextPage: false });

    const failedOnly = await graphql(server.url, alice, query, { status: 'FAILED' });
    expect(failedOnly.body.data.files.edges).toEqual([]);
    const bobs = await graphql(server.url, bob, query);
    expect(bobs.body.data.files).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  it.each([
    ['a cursor that is not base64 JSON', { after: '!!!' }],
    ['a cursor with a foreign shape', { after: Buffer.from('{"a":1}').toString('base64url') }],
    [
      // JavaScript reads the year; PostgreSQL refused it, and the client got an internal error.
      'a cursor forged with the year -1000',
      { after: Buffer.from(JSON.stringify(['-001000-01-01T00:00:00.000Z', '869b132a-e442-45c4-9042-aa57bf8dddda'])).toString('base64url') },
    ],
    ['a page too large', { first: 1000 }],
    ['a negative page', { first: -1 }],
  ])('files refuses %s with BAD_USER_INPUT', async (_name, variables) => {
    const { body } = await graphql(server.url, alice, 'query($after: String, $first: Int) { files(first: $first, after: $after) { edges { cursor } } }', variables);
    expect(body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('mutations', () => {
  it("retryFile answers another tenant's file as NOT_FOUND", async () => {
    const { body } = await graphql(server.url, bob, 'mutation($id: ID!) { retryFile(fileId: $id) { attempt } }', { id: aliceFiles[0] });
    expect(body.errors?.[0].extensions?.code).toBe('NOT_FOUND');
  });
});

describe('authentication', () => {
  it.each([
    ['no key', undefined],
    ['a wrong key', 'Bearer fsk_wrong'],
    ['an empty bearer', 'Bearer '],
  ])('refuses a query with %s', async (_name, authorization) => {
    const { status, body } = await graphql(server.url, authorization, '{ files { edges { cursor } } }');
    expect(status).toBe(401);
    expect(body.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(body.data ?? null).toBeNull();
  });
});

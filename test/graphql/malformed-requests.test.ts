import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../helpers/graphql-client.js';
import { wsClient } from '../helpers/subscriptions.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let alice: string;

beforeAll(async () => {
  server = await startTestServer();
  alice = await server.tenant('alice');
});
afterAll(() => server.stop());

function get(params: Record<string, string>, authorization: string | undefined = alice) {
  return fetch(`${server.url}/graphql?${new URLSearchParams(params)}`, {
    headers: { 'x-graphql-yoga-csrf': '1', ...(authorization ? { authorization } : {}) },
  });
}

describe('GraphQL over GET', () => {
  it('answers a query', async () => {
    const response = await get({ query: '{ __typename }' });
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it.each([
    ['variables that are not JSON', { variables: '{bad' }, 'The variables parameter is not JSON.'],
    ['extensions that are not JSON', { extensions: '{bad' }, 'The extensions parameter is not JSON.'],
    ['variables that are not an object', { variables: '[1]' }, 'The variables parameter must be a JSON object.'],
  ])('answers %s with 400, as a POST does, not 500', async (_name, params, message) => {
    for (const authorization of [alice, undefined]) {
      const response = await get({ query: '{ __typename }', ...params }, authorization);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
    }
  });
});

describe('errors that stop an operation before it runs', () => {
  const TWO_OPERATIONS = 'query A { files { edges { cursor } } } query B { webhookSecret }';

  it.each([
    ['a variable of the wrong type', 'query($n: Int) { files(first: $n) { edges { cursor } } }', { n: 1.5 }, 'BAD_USER_INPUT'],
    ['a required variable left out', 'query($id: ID!) { file(id: $id) { id } }', {}, 'BAD_USER_INPUT'],
    ['an enum value that does not exist', 'query($s: ProcessingStatus) { files(status: $s) { edges { cursor } } }', { s: 'NOPE' }, 'BAD_USER_INPUT'],
    ['two operations and no operationName', TWO_OPERATIONS, {}, 'OPERATION_RESOLUTION_FAILURE'],
  ])('carry a code over HTTP and over WebSocket: %s', async (_name, query, variables, code) => {
    const { body } = await graphql(server.url, alice, query, variables);
    expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body.errors)).toBe(code);
    expect(body.data ?? null).toBeNull();

    const client = wsClient(server.wsUrl, alice);
    try {
      const answer = await new Promise<any>((resolve) => {
        client.subscribe({ query, variables }, { next: resolve, error: (errors) => resolve({ errors }), complete: () => {} });
      });
      expect(answer.errors?.[0]?.extensions?.code, JSON.stringify(answer)).toBe(code);
    } finally {
      await client.dispose();
    }
  });

  it.each([
    ['a document that does not parse', '{'],
    ['a document over 1,000 tokens', `{ ${'__typename '.repeat(1200)} }`],
  ])('over WebSocket, refuses %s with GRAPHQL_PARSE_FAILED and keeps the socket', async (_name, query) => {
    const client = wsClient(server.wsUrl, alice);
    try {
      const errors = await new Promise<any[]>((resolve) => {
        client.subscribe({ query }, { next: () => {}, error: (error) => resolve(error as any[]), complete: () => resolve([]) });
      });
      expect(errors[0]?.extensions?.code, JSON.stringify(errors)).toBe('GRAPHQL_PARSE_FAILED');
      const still = await new Promise<any>((resolve) => client.subscribe({ query: '{ __typename }' }, { next: resolve, error: resolve, complete: () => {} }));
      expect(still).toEqual({ data: { __typename: 'Query' } });
    } finally {
      await client.dispose();
    }
  });
});

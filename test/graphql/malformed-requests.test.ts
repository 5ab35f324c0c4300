import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUERY_LIMITS } from '../../src/graphql/yoga.js';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

let server: TestServer;
let alice: string;
let fileId: string;

beforeAll(async () => {
  server = await startTestServer();
  alice = await server.tenant('alice');
  const { body } = await uploadFile(server.url, alice, 'limits');
  fileId = body.data.uploadFile.file.id;
  await waitForTerminal(server.url, alice, fileId);
});
afterAll(() => server.stop());

/** Asks, and says how long /healthz took while the request ran. */
async function askWhileCheckingHealth(query: string) {
  const asked = graphql(server.url, alice, query);
  const started = performance.now();
  await fetch(`${server.url}/healthz`);
  const healthMs = performance.now() - started;
  return { ...(await asked), healthMs };
}

describe('what one GraphQL document may ask for', () => {
  it('refuses at once a small document that would hold the server', async () => {
    // 100 aliases of 100 files each, with their deliveries: 6 KB that held the server for 14 s.
    const aliases = Array.from({ length: 100 }, (_, i) => `f${i}: files(first: 100) { edges { node { id webhookDeliveries { id } } } }`);
    const { body, healthMs } = await askWhileCheckingHealth(`{ ${aliases.join(' ')} }`);
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0].message).toBe(`Syntax Error: Token limit of ${QUERY_LIMITS.tokens} exceeded.`);
    expect(healthMs).toBeLessThan(500);
  });

  it(`refuses more than ${QUERY_LIMITS.aliases} aliases, without running any of them`, async () => {
    const aliases = Array.from({ length: QUERY_LIMITS.aliases + 1 }, (_, i) => `f${i}: files(first: 100) { edges { node { id } } }`);
    const { body } = await graphql(server.url, alice, `{ ${aliases.join(' ')} }`);
    expect(body.data).toBeUndefined();
    // Every limit it breaks is named: these pages also cost more than the limit.
    expect(body.errors).toContainEqual({
      message: `Syntax Error: Aliases limit of ${QUERY_LIMITS.aliases} exceeded, found ${QUERY_LIMITS.aliases + 1}.`,
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
  });

  it('refuses a document of too many tokens before parsing the rest, however deep it nests', async () => {
    // 200,000 levels: parsed whole, it overflowed the stack and answered 500.
    const { status, body } = await graphql(server.url, alice, `${'{a'.repeat(200_000)}${'}'.repeat(200_000)}`);
    expect(status).toBeLessThan(500);
    expect(body.errors).toEqual([{ message: `Syntax Error: Token limit of ${QUERY_LIMITS.tokens} exceeded.`, extensions: { code: 'GRAPHQL_PARSE_FAILED' } }]);
  });

  it('counts a page size given by a variable, or left to a default, as the page it reads', async () => {
    // Each alias: a 100-row page of files with their deliveries. graphql-armor counts a page as
    // one row unless its size is a literal; 15 such pages passed the limit as 15 rows.
    const aliases = (first: string) =>
      Array.from(
        { length: QUERY_LIMITS.aliases },
        (_, i) => `f${i}: files${first} { edges { node { id webhookDeliveries { id state attempts { attemptedAt durationMs responseStatus error } } } } }`,
      ).join(' ');
    const refused = `Syntax Error: Query Cost limit of ${QUERY_LIMITS.cost} exceeded`;
    const byVariable = await graphql(server.url, alice, `query($n: Int) { ${aliases('(first: $n)')} }`, { n: 100 });
    expect(byVariable.body.errors?.[0]).toMatchObject({ message: expect.stringContaining(refused), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    expect(byVariable.body.data ?? null).toBeNull();
    const byVariableDefault = await graphql(server.url, alice, `query($n: Int = 100) { ${aliases('(first: $n)')} }`);
    expect(byVariableDefault.body.errors?.[0].message).toContain(refused);
    // 15 pages of the default 20 cost 21,075: over, where counted as 15 rows they passed.
    const byArgumentDefault = await graphql(server.url, alice, `{ ${aliases('')} }`);
    expect(byArgumentDefault.body.errors?.[0].message).toContain(refused);
    // A literal page size is refused at validation, with the same code.
    const byLiteral = await graphql(server.url, alice, `{ ${aliases('(first: 100)')} }`);
    expect(byLiteral.body.errors?.[0]).toMatchObject({ message: expect.stringContaining(refused), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    // The same documents with small pages run, answered as the variables ask.
    const small = await graphql(server.url, alice, `query($n: Int) { ${aliases('(first: $n)')} }`, { n: 1 });
    expect(small.body.errors).toBeUndefined();
    expect(small.body.data.f14.edges).toHaveLength(1);
  });

  it('keeps counting a variable page size after a request whose value for it was not an integer', async () => {
    const aliases = Array.from({ length: QUERY_LIMITS.aliases }, (_, i) => `f${i}: files(first: $n) { edges { node { id webhookDeliveries { id } } } }`);
    // A text of its own: Yoga shares one parsed document among the requests of the same text.
    const query = `query PoisonedSize($n: Int) { ${aliases.join(' ')} }`;
    for (const bad of ['x', 1.5]) {
      const refusedValue = await graphql(server.url, alice, query, { n: bad });
      expect(refusedValue.body.errors?.[0].message).toContain('Int cannot represent');
    }
    const after = await graphql(server.url, alice, query, { n: 100 });
    expect(after.body.errors?.[0].message).toContain(`Query Cost limit of ${QUERY_LIMITS.cost} exceeded`);
    expect(after.body.data ?? null).toBeNull();
  });

  it(`refuses a selection deeper than ${QUERY_LIMITS.depth}`, async () => {
    const { body } = await graphql(server.url, alice, `{ ${'file(id: "x") { status { '.repeat(5)} sequence ${'} } '.repeat(5)} }`);
    expect(body.data).toBeUndefined();
    expect(body.errors).toContainEqual({
      message: `Syntax Error: Query depth limit of ${QUERY_LIMITS.depth} exceeded, found 11.`,
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
  });

  it("still answers the API's deepest operations, a handful of aliases, and introspection", async () => {
    const deepest = await graphql(
      server.url,
      alice,
      `{ a: files(first: 5) { edges { cursor node { id status { metadata } webhookDeliveries { attempts { attemptedAt error } } } } pageInfo { hasNextPage } }
         b: file(id: "${fileId}") { filename } c: fileStatus(fileId: "${fileId}") { status }
         d: webhookDeliveries(first: 100) { edges { node { state fileId attempts { responseStatus } } } } }`,
    );
    expect(deepest.body.errors).toBeUndefined();
    expect(deepest.body.data.b.filename).toBe('notes.txt');
    const introspection = await graphql(server.url, alice, getIntrospectionQuery());
    expect(introspection.body.errors).toBeUndefined();
    expect(introspection.body.data.__schema.queryType.name).toBe('Query');
  });
});

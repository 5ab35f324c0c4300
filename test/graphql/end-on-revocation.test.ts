import v8 from 'node:v8';
import vm from 'node:vm';
import type { ExecutionResult } from 'graphql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKeyAuthenticator, createApiKey } from '../../src/auth/api-keys.js';
import { useStreamsEndOnRevocation } from '../../src/graphql/end-on-revocation.js';
import { openTestDatabase } from '../helpers/test-database.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let authorization: string;
beforeAll(async () => {
  database = await openTestDatabase('end-on-revocation');
  authorization = `Bearer ${(await createApiKey(database.db.prisma, 'alice')).key}`;
});
afterAll(() => database?.close());

/** The stream the plugin makes of `source` for a subscription opened with `authorization`. */
function watched(authenticator: ApiKeyAuthenticator, source: AsyncIterable<ExecutionResult>): AsyncIterator<ExecutionResult> {
  let result: AsyncIterable<ExecutionResult> | undefined;
  const hooks = (useStreamsEndOnRevocation(authenticator) as any).onSubscribe();
  hooks.onSubscribeResult({ args: { contextValue: { authorization } }, result: source, setResult: (set: AsyncIterable<ExecutionResult>) => (result = set) });
  return result![Symbol.asyncIterator]();
}

it('keeps nothing of the events a long subscription passed on', async () => {
  const authenticator = new ApiKeyAuthenticator(database.db.prisma, 60_000);
  const events = 2_000;
  const sent: WeakRef<object>[] = [];
  async function* changes() {
    for (let i = 0; i < events; i++) {
      const event = { data: { padding: new Array(1_000).fill(i) } };
      sent.push(new WeakRef(event));
      yield event;
    }
    await new Promise(() => {}); // open, waiting for a change that does not come
  }
  const stream = watched(authenticator, changes());
  for (let i = 0; i < events; i++) await stream.next();
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Raced against one promise for the whole stream, all 2,000 stayed reachable.
  expect(sent.filter((event) => event.deref() !== undefined).length).toBeLessThan(10);
  expect(authenticator.watchedStreams).toBe(1);
  await stream.return!();
  expect(authenticator.watchedStreams).toBe(0);
  authenticator.close();
});

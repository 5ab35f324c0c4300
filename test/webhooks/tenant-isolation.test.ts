import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

let server: TestServer;
const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];

beforeAll(async () => {
  server = await startTestServer({
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0',
    WEBHOOK_TIMEOUT_MS: '3000',
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_CONCURRENCY: '6',
    WEBHOOK_CONCURRENCY_PER_HOST: '2',
    // WEBHOOK_CONCURRENCY_PER_TENANT: half of WEBHOOK_CONCURRENCY, 3
  });
});
afterAll(async () => {
  await Promise.all(receivers.map((receiver) => receiver.close()));
  await server.stop();
});

async function upload(key: string, webhookUrl: string): Promise<void> {
  const { body } = await uploadFile(server.url, key, 'isolation', { variables: { webhookUrl, webhookEvents: ['FILE_COMPLETED'] } });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('webhook concurrency per tenant', () => {
  it('keeps a tenant whose many hosts all hang to its share: another tenant is delivered at once', async () => {
    const alice = await server.tenant('alice');
    const bob = await server.tenant('bob');
    // Six receivers on six ports: six hosts to the per-host limit, one tenant to the per-tenant one.
    const hanging = await Promise.all(Array.from({ length: 6 }, () => startReceiver(() => {})));
    const healthy = await startReceiver();
    receivers.push(...hanging, healthy);
    const hangingRequests = () => hanging.reduce((sum, receiver) => sum + receiver.received.length, 0);

    for (const receiver of hanging) await upload(alice, receiver.url);
    const deadline = Date.now() + 10_000;
    while (hangingRequests() < 3 && Date.now() < deadline) await sleep(20);
    await sleep(300);
    expect(hangingRequests()).toBe(3);

    const started = Date.now();
    await upload(bob, healthy.url);
    await healthy.until((received) => received.length === 1, 10_000);
    expect(Date.now() - started).toBeLessThan(1_500);

    // Alice's others are queued, not lost: they go out as her hanging ones time out.
    await Promise.all(hanging.map((receiver) => receiver.until((received) => received.length === 1, 10_000)));
  });
});

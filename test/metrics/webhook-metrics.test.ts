import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { freePort, scrape, scrapeUntil, type Scrape } from '../helpers/metrics-scrape.js';
import { collect, wsClient } from '../helpers/subscriptions.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { answer, receiversClosedAfterEach, startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

let server: TestServer;
let metricsPort: number;
let alice: string;
const receiver = receiversClosedAfterEach();
const fileIds: string[] = [];

beforeAll(async () => {
  server = await startTestServer({
    METRICS_PORT: String(await freePort()),
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0,100ms,100ms,100ms',
    WEBHOOK_TIMEOUT_MS: '10000',
    WEBHOOK_POLL_MS: '50',
  });
  metricsPort = server.service.metricsPort!;
  alice = await server.tenant('alice');
});
afterAll(() => server.stop());

async function upload(webhookUrl: string, webhookEvents?: string[]): Promise<string> {
  const { body } = await uploadFile(server.url, alice, 'metrics test', { variables: { webhookUrl, webhookEvents } });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  const fileId = body.data.uploadFile.file.id;
  fileIds.push(fileId);
  return fileId;
}

/** A counter's sample, 0 while it has none (a labelled counter shows a label once it counted). */
const count = (metrics: Scrape, name: string, labels: Record<string, string>) => metrics.value(name, labels) ?? 0;
const attempts = (metrics: Scrape, outcome: string) => count(metrics, 'filestatus_webhook_attempts_total', { outcome });
const ended = (metrics: Scrape, state: string) => count(metrics, 'filestatus_webhook_deliveries_ended_total', { state });
const attemptDurations = (metrics: Scrape, outcome: string) => count(metrics, 'filestatus_webhook_attempt_duration_seconds_count', { outcome });
const open = (metrics: Scrape, state: string) => metrics.value('filestatus_webhook_deliveries_open', { state });
const oldestDue = (metrics: Scrape) => metrics.value('filestatus_webhook_oldest_due_age_seconds');

describe('webhook attempts and deliveries', () => {
  it('counts a delivered webhook as one 2xx attempt and one delivery, with its duration', async () => {
    const before = await scrape(metricsPort);
    const hook = await receiver();
    await upload(hook.url, ['FILE_COMPLETED']);
    const after = await scrapeUntil(metricsPort, (metrics) => ended(metrics, 'delivered') > ended(before, 'delivered'));
    expect(hook.received).toHaveLength(1);
    expect(attempts(after, '2xx') - attempts(before, '2xx')).toBe(1);
    expect(ended(after, 'delivered') - ended(before, 'delivered')).toBe(1);
    expect(attemptDurations(after, '2xx') - attemptDurations(before, '2xx')).toBe(1);
    for (const outcome of ['3xx', '4xx', '5xx', 'timeout', 'network', 'blocked']) expect(attempts(after, outcome)).toBe(attempts(before, outcome));
    expect(ended(after, 'failed')).toBe(ended(before, 'failed'));
  });

  it('counts a 500 then a 204 as one 5xx attempt, one 2xx attempt and one delivery', async () => {
    const before = await scrape(metricsPort);
    const hook = await receiver((request, index, res) => answer(index === 0 ? 500 : 204)(request, index, res));
    await upload(hook.url, ['FILE_COMPLETED']);
    const after = await scrapeUntil(metricsPort, (metrics) => ended(metrics, 'delivered') > ended(before, 'delivered'));
    expect(hook.received).toHaveLength(2);
    expect(attempts(after, '5xx') - attempts(before, '5xx')).toBe(1);
    expect(attempts(after, '2xx') - attempts(before, '2xx')).toBe(1);
    expect(ended(after, 'delivered') - ended(before, 'delivered')).toBe(1);
  });

  it('counts a delivery that failed every attempt as failed, and a refused connection as network', async () => {
    const before = await scrape(metricsPort);
    const hook = await startReceiver();
    const url = hook.url;
    await hook.close();
    await upload(url, ['FILE_COMPLETED']);
    const after = await scrapeUntil(metricsPort, (metrics) => ended(metrics, 'failed') > ended(before, 'failed'));
    expect(attempts(after, 'network') - attempts(before, 'network')).toBe(4);
    expect(ended(after, 'failed') - ended(before, 'failed')).toBe(1);
  });

  it('shows deliveries held by a receiver that does not answer as open and due, with their age, and 0 once it answers', async () => {
    const held: http.ServerResponse[] = [];
    const hook = await receiver((_request, _index, res) => held.push(res));
    const fileId = await upload(hook.url);
    // The first status's delivery hangs in the receiver; the later ones wait behind it, due.
    await waitForTerminal(server.url, alice, fileId);
    await hook.until((received) => received.length === 1);
    const backlog = await scrapeUntil(metricsPort, (metrics) => (oldestDue(metrics) ?? 0) > 0);
    expect(open(backlog, 'due')).toBeGreaterThanOrEqual(1);
    expect(open(backlog, 'sending')).toBe(1);

    hook.reply = answer(204);
    for (const res of held) res.writeHead(204).end();
    const settled = await scrapeUntil(metricsPort, (metrics) => open(metrics, 'due') === 0 && open(metrics, 'sending') === 0);
    expect(open(settled, 'scheduled')).toBe(0);
    expect(oldestDue(settled)).toBe(0);
    expect(hook.payloads().at(-1).type).toBe('file.completed');
  });
});

describe('status changes and subscriptions', () => {
  it('counts the status changes this process recorded, by status', async () => {
    const before = await scrape(metricsPort);
    const { body } = await uploadFile(server.url, alice, 'no webhook');
    const fileId = body.data.uploadFile.file.id;
    fileIds.push(fileId);
    await waitForTerminal(server.url, alice, fileId);
    const changes = (metrics: Scrape, status: string) => count(metrics, 'filestatus_status_changes_total', { status });
    const after = await scrapeUntil(metricsPort, (metrics) => changes(metrics, 'completed') > changes(before, 'completed'));
    expect(changes(after, 'completed') - changes(before, 'completed')).toBe(1);
    // QUEUED, then each stage as the pipeline reaches it, and its progress.
    expect(changes(after, 'processing') - changes(before, 'processing')).toBeGreaterThanOrEqual(4);
    expect(changes(after, 'failed')).toBe(changes(before, 'failed'));
  });

  it('counts the subscriptions open over WebSocket and SSE, and lets go of each as it ends', async () => {
    const subscriptions = (metrics: Scrape) => metrics.value('filestatus_subscriptions_open');
    expect(subscriptions(await scrape(metricsPort))).toBe(0);

    const client = wsClient(server.wsUrl, alice);
    const tenantWide = collect(client, {});
    await scrapeUntil(metricsPort, (metrics) => subscriptions(metrics) === 1);

    const sse = new AbortController();
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: alice, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { fileStatusChanged { status } }' }),
      signal: sse.signal,
    });
    expect(response.status).toBe(200);
    await scrapeUntil(metricsPort, (metrics) => subscriptions(metrics) === 2);

    sse.abort();
    await scrapeUntil(metricsPort, (metrics) => subscriptions(metrics) === 1);
    tenantWide.stop();
    await client.dispose();
    await scrapeUntil(metricsPort, (metrics) => subscriptions(metrics) === 0);
  });
});

describe('labels', () => {
  it('name no tenant, file, receiver URL or host', async () => {
    const { text } = await scrape(metricsPort);
    const tenants = await server.service.db.prisma.tenant.findMany({ select: { id: true, name: true } });
    expect(fileIds.length).toBeGreaterThan(0);
    const secrets = [...tenants.flatMap((tenant) => [tenant.id, tenant.name]), ...fileIds, '127.0.0.1', 'localhost', '/hooks', 'http://'];
    for (const secret of secrets) expect(text, secret).not.toContain(secret);
    // Every label is one of the bounded few the metrics have.
    const labelNames = new Set([...text.matchAll(/[{,]([a-z_]+)="/g)].map((match) => match[1]));
    for (const name of labelNames) expect(['outcome', 'state', 'status', 'table', 'le', 'space', 'kind', 'type', 'version', 'major', 'minor', 'patch']).toContain(name);
  });
});

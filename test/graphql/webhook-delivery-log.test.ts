import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../helpers/graphql-client.js';
import { settledFile } from '../helpers/settled-files.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { answer, startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const DELIVERIES = `query($state: WebhookDeliveryState, $since: DateTime, $first: Int, $after: String) {
  webhookDeliveries(state: $state, since: $since, first: $first, after: $after) {
    edges { cursor node { id eventId eventType state queuedAt url fileId attempts { responseStatus } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface Page {
  edges: { cursor: string; node: { id: string; eventId: string; eventType: string; state: string; queuedAt: string; fileId: string; attempts: { responseStatus: number | null }[] } }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

let server: TestServer;
let alice: string;
let bob: string;
let up: Awaited<ReturnType<typeof startReceiver>>;
let down: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  server = await startTestServer({
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0,50ms',
    WEBHOOK_POLL_MS: '50',
  });
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
  up = await startReceiver(answer(204));
  down = await startReceiver(answer(500));
});
afterAll(async () => {
  await Promise.all([up?.close(), down?.close()]);
  await server?.stop();
});

async function page(key: string, variables: Record<string, unknown>): Promise<Page> {
  const { body } = await graphql(server.url, key, DELIVERIES, variables);
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.webhookDeliveries;
}

const completedTo = (receiver: { url: string }) => ({ webhookUrl: receiver.url, webhookEvents: ['FILE_COMPLETED'] });

describe('webhookDeliveries', () => {
  it("pages through the caller's deliveries of every file, the latest queued first, and no other tenant's", async () => {
    const { prisma } = server.service.db;
    const since = new Date().toISOString();
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await settledFile(server.url, alice, prisma, completedTo(up)));
    const bobs = await settledFile(server.url, bob, prisma, completedTo(up));

    const first = await page(alice, { since, first: 2 });
    expect(first.edges.map((edge) => edge.node.fileId)).toEqual([files[2], files[1]]);
    expect(first.pageInfo).toEqual({ hasNextPage: true, endCursor: first.edges[1].cursor });
    const second = await page(alice, { since, first: 2, after: first.pageInfo.endCursor });
    expect(second.edges.map((edge) => edge.node.fileId)).toEqual([files[0]]);
    expect(second.pageInfo).toEqual({ hasNextPage: false, endCursor: second.edges[0].cursor });

    const node = second.edges[0].node;
    const row = await prisma.webhookDelivery.findFirstOrThrow({ where: { fileId: files[0] } });
    expect(node).toEqual({
      id: row.id,
      eventId: await server.service.services.webhookIds.of(row.eventId),
      eventType: 'FILE_COMPLETED',
      state: 'DELIVERED',
      queuedAt: row.createdAt.toISOString(),
      url: up.url,
      fileId: files[0],
      attempts: [{ responseStatus: 204 }],
    });
    // Bob's page holds his one file. A cursor is only a position: one after every delivery leads
    // him to his own, never to alice's, which lie behind it too.
    expect((await page(bob, { since })).edges.map((edge) => edge.node.fileId)).toEqual([bobs]);
    const later = Buffer.from(JSON.stringify([new Date(Date.now() + 60_000).toISOString(), randomUUID()])).toString('base64url');
    expect((await page(bob, { since, after: later })).edges.map((edge) => edge.node.fileId)).toEqual([bobs]);
    expect((await page(alice, { since, after: later })).edges.map((edge) => edge.node.fileId)).toEqual([...files].reverse());
  });

  it('answers what failed while a receiver was down, by state and since, until it is sent again', async () => {
    const { prisma } = server.service.db;
    const before = await settledFile(server.url, alice, prisma, completedTo(down));
    const since = new Date().toISOString();
    const failed = [await settledFile(server.url, alice, prisma, completedTo(down)), await settledFile(server.url, alice, prisma, completedTo(down))];
    const delivered = await settledFile(server.url, alice, prisma, completedTo(up));

    const failures = await page(alice, { state: 'FAILED', since });
    expect(failures.edges.map((edge) => edge.node.fileId)).toEqual([failed[1], failed[0]]);
    expect(failures.edges.every((edge) => edge.node.attempts.length === 2 && edge.node.attempts.every((a) => a.responseStatus === 500))).toBe(true);
    expect((await page(alice, { state: 'DELIVERED', since })).edges.map((edge) => edge.node.fileId)).toEqual([delivered]);
    expect((await page(alice, { state: 'FAILED' })).edges.map((edge) => edge.node.fileId)).toContain(before);
    expect((await page(bob, { state: 'FAILED' })).edges).toEqual([]);

    down.reply = answer(204);
    const { body } = await graphql(server.url, alice, 'mutation($since: DateTime!) { redeliverFailedWebhooks(since: $since) }', { since });
    expect(body).toEqual({ data: { redeliverFailedWebhooks: 2 } });
    await down.until((received) => received.filter((request) => request.headers['webhook-id'] === failures.edges[0].node.eventId).length === 3);
    await expect.poll(async () => (await page(alice, { state: 'FAILED', since })).edges, { timeout: 10_000 }).toEqual([]);
    // Queued again, so now the latest queued: first on the page.
    const latest = await page(alice, { first: 2 });
    expect(latest.edges.map((edge) => edge.node.fileId).sort()).toEqual([...failed].sort());
    down.reply = answer(500);
  });

  it('refuses a page size, cursor, state or since it cannot use, and a caller without a key', async () => {
    // A variable that is not a WebhookDeliveryState is GraphQL's own refusal (HTTP 400), given the code of every bad input.
    const refusals: [Record<string, unknown>, RegExp, string | undefined][] = [
      [{ first: -1 }, /first must be between 0 and 100/, 'BAD_USER_INPUT'],
      [{ first: 101 }, /first must be between 0 and 100/, 'BAD_USER_INPUT'],
      [{ after: 'not a cursor' }, /The cursor "after" is not one this API gave out/, 'BAD_USER_INPUT'],
      [{ after: Buffer.from(JSON.stringify(['-001000-01-01T00:00:00.000Z', '00000000-0000-4000-8000-000000000000'])).toString('base64url') }, /not one this API gave out/, 'BAD_USER_INPUT'],
      [{ after: Buffer.from(JSON.stringify(['2026-11-29T08:00:00.000Z', "'; DROP TABLE webhook_delivery; --"])).toString('base64url') }, /not one this API gave out/, 'BAD_USER_INPUT'],
      [{ state: 'LOST' }, /Value "LOST" does not exist in "WebhookDeliveryState" enum/, 'BAD_USER_INPUT'],
      [{ since: 'yesterday' }, /DateTime is an ISO-8601 date and time with its zone/, 'BAD_USER_INPUT'],
      [{ since: '0000-06-01T00:00:00Z' }, /DateTime is an ISO-8601 date and time with its zone/, 'BAD_USER_INPUT'],
    ];
    for (const [variables, message, code] of refusals) {
      const { body } = await graphql(server.url, alice, DELIVERIES, variables);
      expect(body.errors?.[0].message, JSON.stringify(variables)).toMatch(message);
      expect(body.errors?.[0].extensions?.code, JSON.stringify(variables)).toBe(code);
      expect(body.data?.webhookDeliveries ?? null).toBeNull();
    }
    expect((await page(alice, { first: 0 })).edges).toEqual([]);
    expect(await server.service.db.prisma.webhookDelivery.count()).toBeGreaterThan(0);
    const keyless = await graphql(server.url, '', DELIVERIES, {});
    expect(keyless.body.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(keyless.body.data ?? null).toBeNull();
  });

  it("bounds a file's log to its latest deliveries and their latest attempts, and pages through the rest by fileId", async () => {
    const { prisma } = server.service.db;
    const fileId = await settledFile(server.url, alice, prisma, completedTo(up));
    // A file retried again and again: 150 deliveries, and one delivery redelivered into 30 attempts.
    await prisma.$executeRaw`
      INSERT INTO webhook_delivery (id, tenant_id, file_id, event_id, sequence, event_type, url, host, state, attempt_count, created_at)
      SELECT gen_random_uuid(), f.tenant_id, f.id, (SELECT min(id) FROM file_status_event WHERE file_id = f.id), 100 + g,
             'file.processing', ${up.url}, 'example.com', 'DELIVERED', 1, now() + g * interval '1 millisecond'
      FROM file f, generate_series(1, 149) g WHERE f.id = ${fileId}::uuid`;
    const newest = await prisma.webhookDelivery.findFirstOrThrow({ where: { fileId }, orderBy: { sequence: 'desc' } });
    await prisma.$executeRaw`
      INSERT INTO webhook_attempt (delivery_id, attempted_at, duration_ms, response_status)
      SELECT ${newest.id}::uuid, now() + g * interval '1 second', g, 500 FROM generate_series(1, 30) g`;
    const sequences = async (key: string, last?: number) => {
      const { body } = await graphql(
        server.url,
        key,
        'query($id: ID!, $last: Int) { file(id: $id) { webhookDeliveries(last: $last) { sequence attempts { durationMs } } } }',
        { id: fileId, last },
      );
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data.file?.webhookDeliveries as { sequence: number; attempts: { durationMs: number }[] }[] | undefined;
    };
    const latest = (await sequences(alice))!;
    expect(latest.map((d) => d.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => 230 + i));
    // The latest 20 of its 30 attempts, oldest first.
    expect(latest.at(-1)!.attempts.map((a) => a.durationMs)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));
    expect((await sequences(alice, 100))!.map((d) => d.sequence)).toEqual(Array.from({ length: 100 }, (_, i) => 150 + i));
    for (const last of [-1, 101]) {
      const { body } = await graphql(server.url, alice, 'query($id: ID!, $last: Int) { file(id: $id) { webhookDeliveries(last: $last) { id } } }', { id: fileId, last });
      expect(body.errors?.[0]).toMatchObject({ message: 'last must be between 0 and 100.', extensions: { code: 'BAD_USER_INPUT' } });
    }

    const FILE_LOG = `query($fileId: ID, $after: String) { webhookDeliveries(fileId: $fileId, first: 100, after: $after) {
      edges { node { id fileId } } pageInfo { hasNextPage endCursor } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const { body } = await graphql(server.url, alice, FILE_LOG, { fileId: fileId.toUpperCase(), after });
      const next: { edges: { node: { id: string; fileId: string } }[]; pageInfo: Page['pageInfo'] } = body.data.webhookDeliveries;
      expect(next.edges.every((edge) => edge.node.fileId === fileId)).toBe(true);
      seen.push(...next.edges.map((edge) => edge.node.id));
      after = next.pageInfo.hasNextPage ? next.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toHaveLength(150);
    expect(new Set(seen).size).toBe(150);
    // Bob sees nothing of it, as nothing of a file that is not an id at all.
    for (const [key, id] of [[bob, fileId], [alice, 'not-a-file']]) {
      const { body } = await graphql(server.url, key, FILE_LOG, { fileId: id });
      expect(body).toEqual({ data: { webhookDeliveries: { edges: [], pageInfo: { hasNextPage: false, endCursor: null } } } });
    }
    expect(await sequences(bob)).toBeUndefined();
  });

  it('pages through deliveries queued in the same millisecond one at a time, each once, in id order', async () => {
    const { prisma } = server.service.db;
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await settledFile(server.url, alice, prisma, completedTo(up)));
    // One moment for all three, as one statement's redeliveries share it; later than any other
    // test's (this one runs last).
    const moment = new Date(Date.now() + 3_600_000);
    await prisma.webhookDelivery.updateMany({ where: { fileId: { in: files } }, data: { createdAt: moment } });
    const expected = (await prisma.webhookDelivery.findMany({ where: { fileId: { in: files } }, select: { id: true } })).map((row) => row.id).sort().reverse();

    for (const state of [undefined, 'DELIVERED']) {
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const next: Page = await page(alice, { since: moment.toISOString(), state, first: 1, after });
        seen.push(...next.edges.map((edge) => edge.node.id));
        after = next.pageInfo.hasNextPage ? next.pageInfo.endCursor : null;
      } while (after && seen.length < 10);
      expect(seen).toEqual(expected);
    }
  });

});

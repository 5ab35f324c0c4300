import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateWebhookSecret } from '../../src/webhooks/webhook-secrets.js';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { answer, receiversClosedAfterEach, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

let server: TestServer;
let alice: string;
let bob: string;
let secret: string;
const receiver = receiversClosedAfterEach();

beforeAll(async () => {
  server = await startTestServer({
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0,100ms,100ms,100ms',
    WEBHOOK_TIMEOUT_MS: '500',
    WEBHOOK_POLL_MS: '50',
  });
  alice = await server.tenant('alice');
  bob = await server.tenant('bob');
  secret = (await graphql(server.url, alice, '{ webhookSecret }')).body.data.webhookSecret;
});
afterAll(() => server.stop());

async function upload(webhookUrl: string, content = 'webhook test', webhookEvents?: string[], key = alice): Promise<string> {
  const { body } = await uploadFile(server.url, key, content, { variables: { webhookUrl, webhookEvents } });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.uploadFile.file.id;
}

const REST_STATUS_KEYS = ['attempt', 'eta_seconds', 'file_id', 'message', 'metadata', 'progress', 'sequence', 'stage', 'status', 'updated_at'];

const serialized = (value: unknown) => JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? String(v) : v));

const DELIVERIES = `query($id: ID!) { file(id: $id) { webhookDeliveries {
  id eventId eventType sequence url state reason nextAttemptAt attempts { attemptedAt durationMs responseStatus error }
} } }`;

/** A file of alice's without a job, sending file.processing to `webhookUrl`: only the test changes its status. */
async function fileWithoutJob(filename: string, webhookUrl: string) {
  const { prisma } = server.service.db;
  const tenant = await prisma.tenant.findUniqueOrThrow({ where: { name: 'alice' } });
  return prisma.file.create({
    data: { tenantId: tenant.id, filename, mimeType: 'text/plain', size: 1, sha256: '0'.repeat(64), webhookUrl, webhookEvents: ['file.processing'] },
  });
}

async function deliveries(fileId: string, key = alice) {
  return (await graphql(server.url, key, DELIVERIES, { id: fileId })).body.data.file?.webhookDeliveries;
}

/** The file's webhookDisabledAt as `key` sees it: undefined when the file is not theirs. */
async function webhookDisabledAt(fileId: string, key = alice) {
  return (await graphql(server.url, key, 'query($id: ID!) { file(id: $id) { webhookDisabledAt } }', { id: fileId })).body.data.file?.webhookDisabledAt;
}

async function settled(fileId: string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const list = await deliveries(fileId);
    if (list.length && list.every((d: any) => !['PENDING', 'SENDING'].includes(d.state))) return list;
    if (Date.now() > deadline) throw new Error(`deliveries not settled: ${JSON.stringify(list)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A file of alice's without a job, sending file.processing and file.completed to a receiver that
 * answers 204, except the second request, which it answers 500 when told to; its first status
 * already delivered.
 */
async function fileWhoseSecondRequestFailsOnCue(filename: string) {
  let failSecond: () => void = () => {
    throw new Error('the second request has not arrived');
  };
  const hook = await receiver((request, index, res) => {
    if (index === 1) failSecond = () => answer(500)(request, index, res);
    else answer(204)(request, index, res);
  });
  const { prisma } = server.service.db;
  const { status } = server.service.services;
  const file = await fileWithoutJob(filename, hook.url);
  await prisma.file.update({ where: { id: file.id }, data: { webhookEvents: ['file.processing', 'file.completed'] } });
  status.publish(await prisma.$transaction((tx) => status.recordQueued(tx, file, {})));
  await settled(file.id);
  return { hook, file, failSecond: () => failSecond() };
}

describe('webhook delivery', () => {
  it('sends each change, signed per Standard Webhooks, in order, in the REST shape', async () => {
    const hook = await receiver();
    const fileId = await upload(hook.url);
    await hook.until((received) => received.some((request) => JSON.parse(request.body).type === 'file.completed'));
    const verifier = new Webhook(secret);
    const payloads = hook.received.map((request) => {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['user-agent']).toMatch(/^filestatus-webhooks\/\d+\.\d+\.\d+$/);
      expect(request.headers['webhook-id']).toMatch(/^evt_[\w-]{22}$/);
      expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
      expect(Buffer.byteLength(request.body)).toBeLessThan(20_000);
      return verifier.verify(request.body, request.headers as Record<string, string>) as any;
    });
    const sequences = payloads.map((payload) => payload.data.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(hook.received.map((request) => request.headers['webhook-id'])).size).toBe(hook.received.length);
    const last = payloads.at(-1);
    expect(last.type).toBe('file.completed');
    expect(Object.keys(last)).toEqual(['type', 'timestamp', 'data']);
    expect(last.data).toMatchObject({ file_id: fileId, status: 'completed', stage: 'done', progress: 100, attempt: 1 });
    for (const payload of payloads) expect(Object.keys(payload.data).sort()).toEqual(REST_STATUS_KEYS);
    const rest = await fetch(`${server.url}/api/file/status?file_id=${fileId}`, { headers: { authorization: alice } });
    expect(last.data).toEqual(await rest.json());
    expect(payloads.slice(0, -1).every((payload) => payload.type === 'file.processing')).toBe(true);
    const log = await settled(fileId);
    expect(log.every((delivery: any) => ['DELIVERED', 'DISCARDED'].includes(delivery.state))).toBe(true);
  });

  it('sends only the types the upload asked for', async () => {
    const hook = await receiver();
    const fileId = await upload(hook.url, 'only the end', ['FILE_COMPLETED']);
    await waitForTerminal(server.url, alice, fileId);
    await hook.until((received) => received.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(hook.payloads().map((payload) => payload.type)).toEqual(['file.completed']);
  });

  it('retries a failing receiver with the same webhook-id, and records every attempt', async () => {
    const hook = await receiver((request, index, res) => answer(index < 2 ? 500 : 200, {}, index < 2 ? 'try later' : 'ok')(request, index, res));
    const fileId = await upload(hook.url, 'retry me', ['FILE_COMPLETED']);
    await hook.until((received) => received.length === 3);
    expect(new Set(hook.received.map((request) => request.headers['webhook-id'])).size).toBe(1);
    const timestamps = hook.received.map((request) => request.receivedAt);
    expect(timestamps[1] - timestamps[0]).toBeGreaterThanOrEqual(70); // 100 ms ± 20%
    const [delivery] = await settled(fileId);
    expect(delivery.state).toBe('DELIVERED');
    expect(delivery.attempts.map((attempt: any) => attempt.responseStatus)).toEqual([500, 500, 200]);
  });

  it('gives up after the last scheduled attempt, and the file is untouched', async () => {
    const hook = await receiver(answer(500));
    const fileId = await upload(hook.url, 'never delivered', ['FILE_COMPLETED']);
    const [delivery] = await settled(fileId);
    expect(delivery.state).toBe('FAILED');
    expect(delivery.attempts).toHaveLength(4);
    expect(delivery.nextAttemptAt).toBeNull();
    expect(await waitForTerminal(server.url, alice, fileId)).toMatchObject({ status: 'COMPLETED' });
  });

  it('stops for good on 410 Gone and disables the webhook for that file', async () => {
    const hook = await receiver(answer(410));
    const fileId = await upload(hook.url, 'gone '.repeat(500_000));
    await waitForTerminal(server.url, alice, fileId);
    const log = await settled(fileId);
    expect(hook.received).toHaveLength(1);
    // The first delivery sent is refused; a change recorded before it was sent may have superseded earlier ones.
    const failed = log.filter((delivery: any) => delivery.state === 'FAILED');
    expect(failed).toHaveLength(1);
    expect(hook.received[0].headers['webhook-id']).toBe(failed[0].eventId);
    expect(failed[0].reason).toBe('webhook disabled: the receiver answered 410 Gone');
    expect(log.filter((delivery: any) => delivery !== failed[0]).every((delivery: any) => delivery.state === 'DISCARDED')).toBe(true);
    const row = await server.service.db.prisma.file.findUniqueOrThrow({ where: { id: fileId } });
    expect(row.webhookDisabledAt).not.toBeNull();
    // The owner sees it, and when; another tenant sees no such file.
    expect(await webhookDisabledAt(fileId)).toBe(row.webhookDisabledAt!.toISOString());
    expect(await webhookDisabledAt(fileId, bob)).toBeUndefined();
  });

  it('does not follow redirects: a 3xx is a failure', async () => {
    const target = await receiver();
    const hook = await receiver(answer(307, { location: target.url }));
    const fileId = await upload(hook.url, 'redirected', ['FILE_COMPLETED']);
    const [delivery] = await settled(fileId);
    expect(delivery.state).toBe('FAILED');
    expect(delivery.attempts.every((attempt: any) => attempt.responseStatus === 307)).toBe(true);
    expect(target.received).toEqual([]);
  });

  it('times out a hanging receiver without delaying the others', async () => {
    const hanging = await receiver(() => {});
    const healthy = await receiver();
    const slowFile = await upload(hanging.url, 'hang', ['FILE_COMPLETED']);
    await hanging.until((received) => received.length === 1);
    const started = Date.now();
    await upload(healthy.url, 'fast', ['FILE_COMPLETED']);
    await healthy.until((received) => received.length === 1);
    expect(Date.now() - started).toBeLessThan(2_000);
    const [delivery] = await settled(slowFile);
    expect(delivery.state).toBe('FAILED');
    expect(delivery.attempts[0].error).toMatch(/timeout/i);
    expect(delivery.attempts[0].durationMs).toBeGreaterThanOrEqual(450);
    expect(delivery.attempts[0].durationMs).toBeLessThan(2_000);
  });

  it('coalesces for a slow receiver: it gets the latest state, never loses the terminal one, in order', async () => {
    const slow = await receiver((request, index, res) => setTimeout(() => answer(200)(request, index, res), 150));
    const fileId = await upload(slow.url, 'slow '.repeat(2_000_000));
    await waitForTerminal(server.url, alice, fileId);
    const log = await settled(fileId);
    const superseded = log.filter((delivery: any) => delivery.state === 'DISCARDED');
    expect(superseded.length).toBeGreaterThan(0);
    expect(superseded.every((delivery: any) => delivery.reason === 'superseded' && delivery.eventType === 'FILE_PROCESSING')).toBe(true);
    const sent = slow.payloads().map((payload) => payload.data.sequence);
    expect(sent).toEqual([...sent].sort((a, b) => a - b));
    expect(slow.payloads().at(-1).type).toBe('file.completed');
  });

  it('supersedes a stale change whose attempt failed once a newer one waits, instead of retrying it first', async () => {
    const sequenceOf = (request: { body: string }) => JSON.parse(request.body).data.sequence;
    // The second request (sequence 2) is answered 500 only once the newer changes are queued behind it.
    const { hook, file, failSecond } = await fileWhoseSecondRequestFailsOnCue('stale.txt');
    const { status } = server.service.services;
    await status.record({ fileId: file.id, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await hook.until((received) => received.length === 2);
    await status.record({ fileId: file.id, status: 'PROCESSING', stage: 'CONVERTING', progress: 50 });
    await status.record({ fileId: file.id, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    failSecond();

    const log = await settled(file.id);
    expect(hook.received.map(sequenceOf)).toEqual([1, 2, 4]);
    expect(hook.payloads().at(-1).type).toBe('file.completed');
    const bySequence = new Map(log.map((delivery: any) => [delivery.sequence, delivery]));
    expect(bySequence.get(2)).toMatchObject({ state: 'DISCARDED', reason: 'superseded', nextAttemptAt: null });
    expect((bySequence.get(2) as any).attempts.map((attempt: any) => attempt.responseStatus)).toEqual([500]);
    expect(bySequence.get(3)).toMatchObject({ state: 'DISCARDED', reason: 'superseded', attempts: [] });
    expect(bySequence.get(4)).toMatchObject({ state: 'DELIVERED', eventType: 'FILE_COMPLETED' });
  });

  it('retries a failed change that nothing newer supersedes', async () => {
    const { hook, file, failSecond } = await fileWhoseSecondRequestFailsOnCue('terminal.txt');
    const { status } = server.service.services;
    // The terminal change fails while nothing is newer: it is tried again, never dropped.
    await status.record({ fileId: file.id, status: 'COMPLETED', stage: 'DONE', progress: 100 });
    await hook.until((received) => received.length === 2);
    failSecond();
    await hook.until((received) => received.length === 3);
    const log = await settled(file.id);
    expect(log.find((delivery: any) => delivery.sequence === 2)).toMatchObject({ state: 'DELIVERED', eventType: 'FILE_COMPLETED' });
    expect(log.find((delivery: any) => delivery.sequence === 2).attempts.map((attempt: any) => attempt.responseStatus)).toEqual([500, 204]);
  });

  it('honours Retry-After on 429, within the schedule and twice it', async () => {
    const hook = await receiver((request, index, res) => answer(index === 0 ? 429 : 200, index === 0 ? { 'retry-after': '3600' } : {})(request, index, res));
    await upload(hook.url, 'rate limited', ['FILE_COMPLETED']);
    await hook.until((received) => received.length === 2);
    const gap = hook.received[1].receivedAt - hook.received[0].receivedAt;
    expect(gap).toBeGreaterThanOrEqual(70);
    expect(gap).toBeLessThan(1_000); // clamped to at most twice the 100 ms scheduled
  });

  it('stores at most 4 KB of a response, and never a secret', async () => {
    const hook = await receiver(answer(500, {}, 'x'.repeat(100_000)));
    const fileId = await upload(hook.url, 'big answer', ['FILE_COMPLETED']);
    await settled(fileId);
    const attempts = await server.service.db.prisma.webhookAttempt.findMany({ where: { delivery: { fileId } } });
    expect(attempts.length).toBeGreaterThan(0);
    for (const attempt of attempts) {
      expect(attempt.responseBody!.length).toBeLessThanOrEqual(4096);
      expect(serialized(attempt)).not.toContain(secret.slice(6));
    }
    const stored = await server.service.db.prisma.webhookDelivery.findMany({ where: { fileId } });
    expect(serialized(stored)).not.toContain(secret.slice(6));
  });

  it('records an answer that holds NUL bytes, and the attempts after it', async () => {
    const hook = await receiver((request, index, res) => (index === 0 ? answer(500, {}, 'bad\0body\0') : answer(200, {}, 'ok'))(request, index, res));
    const fileId = await upload(hook.url, 'nul answer', ['FILE_COMPLETED']);
    const [delivery] = await settled(fileId);
    expect(delivery.state).toBe('DELIVERED');
    expect(delivery.attempts.map((attempt: any) => attempt.responseStatus)).toEqual([500, 200]);
    const attempts = await server.service.db.prisma.webhookAttempt.findMany({
      where: { delivery: { fileId } },
      orderBy: { attemptedAt: 'asc' },
    });
    expect(attempts.map((attempt) => attempt.responseBody)).toEqual(['badbody', 'ok']);
  });

  it('cuts a stored answer at 4 KB without splitting a character', async () => {
    const hook = await receiver(answer(500, {}, 'x'.repeat(4095) + '€'.repeat(10)));
    const fileId = await upload(hook.url, 'split answer', ['FILE_COMPLETED']);
    await settled(fileId);
    const attempts = await server.service.db.prisma.webhookAttempt.findMany({ where: { delivery: { fileId } } });
    expect(attempts.length).toBeGreaterThan(0);
    for (const { responseBody } of attempts) expect([responseBody!.length, responseBody!.slice(-3)]).toEqual([4095, 'xxx']);
  });
});

describe('rotateWebhookSecret', () => {
  it('signs with the new and the previous secret for the overlap window', async () => {
    const rotated = await graphql(server.url, alice, 'mutation { rotateWebhookSecret { secret previousSecretExpiresAt } }');
    const { secret: fresh, previousSecretExpiresAt } = rotated.body.data.rotateWebhookSecret;
    expect(fresh).not.toBe(secret);
    const window = new Date(previousSecretExpiresAt).getTime() - Date.now();
    expect(window).toBeGreaterThan(23.9 * 3600_000);
    expect(window).toBeLessThanOrEqual(24 * 3600_000);
    expect((await graphql(server.url, alice, '{ webhookSecret }')).body.data.webhookSecret).toBe(fresh);

    const hook = await receiver();
    await upload(hook.url, 'rotated', ['FILE_COMPLETED']);
    await hook.until((received) => received.length === 1);
    const [request] = hook.received;
    expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const key of [fresh, secret]) new Webhook(key).verify(request.body, request.headers as Record<string, string>);
    secret = fresh;
  });

  it('rotations at once chain: every secret they handed out signs', async () => {
    // Called directly, all in one tick, so that their reads and writes interleave for certain.
    const { prisma } = server.service.db;
    const { id: bobId } = await prisma.tenant.findUniqueOrThrow({ where: { name: 'bob' } });
    const rotations = await Promise.all(Array.from({ length: 4 }, () => rotateWebhookSecret(prisma, bobId)));
    const request = await deliveredRequest(bob, 'rotated at once');
    expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(5);
    expect(signingOnes(request, rotations.map((rotated) => rotated.secret))).toHaveLength(4);
  });

  it('every secret replaced within 24 hours signs, up to the four newest', async () => {
    const carol = await server.tenant('carol');
    const secrets = [(await graphql(server.url, carol, '{ webhookSecret }')).body.data.webhookSecret];
    for (let i = 0; i < 3; i++) secrets.push(await rotateThroughApi(carol));
    const afterThree = await deliveredRequest(carol, 'rotated three times');
    expect(signingOnes(afterThree, secrets)).toEqual(secrets);

    for (let i = 0; i < 3; i++) secrets.push(await rotateThroughApi(carol));
    const afterSix = await deliveredRequest(carol, 'rotated six times');
    expect(String(afterSix.headers['webhook-signature']).split(' ')).toHaveLength(5);
    expect(signingOnes(afterSix, secrets)).toEqual(secrets.slice(2));
  });

  it('a replaced secret stops signing when its window ends', async () => {
    const dave = await server.tenant('dave');
    const first = (await graphql(server.url, dave, '{ webhookSecret }')).body.data.webhookSecret;
    const second = await rotateThroughApi(dave);
    const third = await rotateThroughApi(dave);
    // As if its 24 hours had passed: the secret replaced first is the one whose window ends first.
    await server.service.db.prisma.retiredWebhookSecret.updateMany({ where: { secret: first }, data: { signsUntil: new Date(Date.now() - 1000) } });
    const request = await deliveredRequest(dave, 'one window over');
    expect(signingOnes(request, [first, second, third])).toEqual([second, third]);
    expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
  });
});

async function rotateThroughApi(key: string): Promise<string> {
  const { body } = await graphql(server.url, key, 'mutation { rotateWebhookSecret { secret } }');
  return body.data.rotateWebhookSecret.secret;
}

/** The one request a fresh receiver gets for a file of the tenant's, once it completes. */
async function deliveredRequest(key: string, content: string) {
  const hook = await receiver();
  await upload(hook.url, content, ['FILE_COMPLETED'], key);
  await hook.until((received) => received.length === 1);
  return hook.received[0];
}

/** Those of the secrets that verify the request, by the standardwebhooks package. */
function signingOnes(request: { body: string; headers: Record<string, unknown> }, secrets: string[]): string[] {
  return secrets.filter((key) => {
    try {
      new Webhook(key).verify(request.body, request.headers as Record<string, string>);
      return true;
    } catch {
      return false;
    }
  });
}

describe('redeliverWebhook and tenants', () => {
  it('sends a delivery again with the same webhook-id, for its owner only', async () => {
    const hook = await receiver();
    const fileId = await upload(hook.url, 'again', ['FILE_COMPLETED']);
    const [delivery] = await settled(fileId);
    expect(delivery.state).toBe('DELIVERED');

    const foreign = await graphql(server.url, bob, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }', { id: delivery.id });
    expect(foreign.body.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    expect(await deliveries(fileId, bob)).toBeUndefined();

    const again = await graphql(server.url, alice, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id state } }', { id: delivery.id });
    expect(again.body.data.redeliverWebhook.id).toBe(delivery.id);
    await hook.until((received) => received.length === 2);
    expect(hook.received[1].headers['webhook-id']).toBe(hook.received[0].headers['webhook-id']);
    expect(hook.received[1].body).toBe(hook.received[0].body);
    const [after] = await settled(fileId);
    expect(after.attempts).toHaveLength(2);
  });

  it('re-enables a webhook that 410 Gone disabled', async () => {
    const hook = await receiver(answer(410));
    const fileId = await upload(hook.url, 'back again', ['FILE_COMPLETED']);
    const [gone] = await settled(fileId);
    const { prisma } = server.service.db;
    expect((await prisma.file.findUniqueOrThrow({ where: { id: fileId } })).webhookDisabledAt).not.toBeNull();

    hook.reply = answer(204);
    await graphql(server.url, alice, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }', { id: gone.id });
    const [again] = await settled(fileId);
    expect(again).toMatchObject({ state: 'DELIVERED', reason: null });
    expect((await prisma.file.findUniqueOrThrow({ where: { id: fileId } })).webhookDisabledAt).toBeNull();
    expect(await webhookDisabledAt(fileId)).toBeNull();
  });

  // Only PostgreSQL runs transactions side by side; with the locks taken in the wrong order this
  // failed there every time with "deadlock detected".
  it('does not deadlock with status changes of the same file', async () => {
    // A receiver that never answers keeps the newest deliveries waiting, where a status change discards them.
    const hook = await receiver(() => {});
    const { prisma } = server.service.db;
    const { status } = server.service.services;
    const file = await fileWithoutJob('racing.txt', hook.url);
    await prisma.$transaction((tx) => status.recordQueued(tx, file, {}));
    let changing = true;
    const changes = (async () => {
      try {
        for (let progress = 1; progress <= 99; progress++) {
          await status.record({ fileId: file.id, status: 'PROCESSING', stage: 'CONVERTING', progress });
        }
      } finally {
        changing = false;
      }
    })();
    const redeliverWaiting = async () => {
      const errors: unknown[] = [];
      while (changing) {
        const waiting = await prisma.webhookDelivery.findMany({ where: { fileId: file.id, state: 'PENDING' }, select: { id: true } });
        for (const { id } of waiting) {
          const { body } = await graphql(server.url, alice, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }', { id });
          if (body.errors) errors.push(...body.errors);
        }
      }
      return errors;
    };
    const [, ...errors] = await Promise.all([changes, ...Array.from({ length: 4 }, redeliverWaiting)]);
    expect(errors.flat()).toEqual([]);
  });

  it('holds a redelivery back while a later delivery to the same URL is in flight', async () => {
    const sequenceOf = (request: { body: string }) => JSON.parse(request.body).data.sequence;
    // The second request (sequence 2) hangs until the attempt times out (WEBHOOK_TIMEOUT_MS, 500 ms).
    const hook = await receiver((_request, index, res) => {
      if (index !== 1) answer(204)(_request, index, res);
    });
    const { prisma } = server.service.db;
    const { status } = server.service.services;
    const file = await fileWithoutJob('one.txt', hook.url);
    status.publish(await prisma.$transaction((tx) => status.recordQueued(tx, file, {})));
    const [first] = await settled(file.id);
    await status.record({ fileId: file.id, status: 'PROCESSING', stage: 'VALIDATING', progress: 5 });
    await hook.until((received) => received.length === 2);
    const hangingSince = hook.received[1].receivedAt;

    const { body } = await graphql(server.url, alice, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }', { id: first.id });
    expect(body.errors).toBeUndefined();
    await hook.until((received) => received.length >= 4);
    expect(hook.received.map(sequenceOf).slice(0, 4)).toEqual([1, 2, 1, 2]);
    // Not before the hanging attempt was over: it ended at its timeout, as its record says.
    const [hung] = await prisma.webhookAttempt.findMany({ where: { delivery: { fileId: file.id, sequence: 2 } }, orderBy: { attemptedAt: 'asc' } });
    expect(hung.responseStatus).toBeNull();
    expect(hung.durationMs).toBeGreaterThanOrEqual(450);
    expect(hook.received[2].receivedAt).toBeGreaterThanOrEqual(hung.attemptedAt.getTime() + hung.durationMs - 2);
    expect(hook.received[2].receivedAt).toBeGreaterThan(hangingSince);
  });

  it.each(['not-a-uuid', '00000000-0000-4000-8000-000000000000'])('answers redelivery of %s with NOT_FOUND', async (id) => {
    const { body } = await graphql(server.url, alice, 'mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id } }', { id });
    expect(body.errors?.[0].extensions?.code).toBe('NOT_FOUND');
  });
});

describe('hostile webhook URLs at upload', () => {
  it.each([
    ['a private address', 'http://10.1.2.3/hook', /resolves to a private or reserved address/],
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/', /resolves to a private or reserved address/],
    ['an IPv4-mapped loopback', 'http://[::ffff:7f00:1]/hook', /resolves to a private or reserved address/],
    ['credentials', 'http://user:secret@127.0.0.1/hook', /must not contain credentials/],
    ['a host that does not resolve', 'http://nowhere.invalid/hook', /nowhere.invalid could not be resolved/],
  ])('refuses %s with the reason but no address, and creates no file', async (_name, webhookUrl, reason) => {
    const before = await server.service.db.prisma.file.count();
    const { body } = await uploadFile(server.url, alice, 'hostile', { variables: { webhookUrl } });
    expect(body.errors?.[0].extensions?.code).toBe('INVALID_WEBHOOK_URL');
    expect(body.errors?.[0].message).toMatch(reason);
    expect(body.errors?.[0].message).not.toMatch(/\d+\.\d+\.\d+\.\d+|::|secret/);
    expect(await server.service.db.prisma.file.count()).toBe(before);
  });
});

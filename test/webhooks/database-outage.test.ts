import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql, uploadFile, waitForTerminal } from '../helpers/graphql-client.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { startReceiver, LOOPBACK_WEBHOOKS } from '../helpers/webhook-receiver.js';

const onPostgres = Boolean(process.env.TEST_DATABASE_URL);
let server: TestServer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  if (!onPostgres) return;
  server = await startTestServer({
    ...LOOPBACK_WEBHOOKS,
    WEBHOOK_RETRY_SCHEDULE: '0,100ms,100ms,100ms,100ms',
    // Leases far longer than the test's deadline: what a cut connection refused must be written
    // again at once, not left for its lease to lapse (21 s for a delivery, 30 s for a job).
    WEBHOOK_TIMEOUT_MS: '10000',
    JOB_LEASE_MS: '30000',
    WEBHOOK_POLL_MS: '50',
  });
  receiver = await startReceiver();
});
afterAll(async () => {
  if (!onPostgres) return;
  await receiver.close();
  await server.stop();
});

/** Ends every connection of the service to its database, as a failover or a network cut would. */
async function cutDatabaseConnections(database: string): Promise<number> {
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
    database,
  ]);
  await admin.end();
  return rowCount ?? 0;
}

describe.runIf(onPostgres)('webhooks through database outages', () => {
  it("delivers every file's terminal status, signed and in order, soon after the service's connections were cut again and again", async () => {
    const alice = await server.tenant('alice');
    const secret = (await graphql(server.url, alice, '{ webhookSecret }')).body.data.webhookSecret;
    const [{ name }] = await server.service.db.prisma.$queryRaw<{ name: string }[]>`SELECT current_database() AS name`;

    // The cuts go on while the files are uploaded and processed.
    let cut = 0;
    let cutting = true;
    const cuts = (async () => {
      while (cutting) {
        cut += await cutDatabaseConnections(name);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const files: string[] = [];
    for (let i = 0; files.length < 12; i++) {
      const { body } = await uploadFile(server.url, alice, `outage ${i}`, { variables: { webhookUrl: receiver.url } });
      // An upload that met a cut is refused as a whole, and sent again, as a client would.
      if (body.errors) continue;
      files.push(body.data.uploadFile.file.id);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    cutting = false;
    await cuts;
    expect(cut).toBeGreaterThan(0);

    const verifier = new Webhook(secret);
    const deadline = Date.now() + 8_000;
    for (const fileId of files) {
      const final = await waitForTerminal(server.url, alice, fileId, deadline - Date.now());
      const type = final.status === 'COMPLETED' ? 'file.completed' : 'file.failed';
      await receiver.until(
        (received) => received.some((request) => request.body.includes(fileId) && JSON.parse(request.body).type === type),
        deadline - Date.now(),
      );
    }
    for (const request of receiver.received) expect(() => verifier.verify(request.body, request.headers as Record<string, string>)).not.toThrow();
    // Per file, what arrived is in sequence order, and ends with the status the file ended in.
    for (const fileId of files) {
      const sequences = receiver.payloads().filter((payload) => payload.data.file_id === fileId).map((payload) => payload.data.sequence);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // the last attempts' records
    const open = await server.service.db.prisma.webhookDelivery.count({ where: { state: { in: ['PENDING', 'SENDING'] } } });
    expect(open).toBe(0);
  });
});

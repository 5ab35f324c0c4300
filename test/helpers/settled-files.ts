import type { TestServer } from './test-server.js';
import { uploadFile, waitForTerminal } from './graphql-client.js';

type Prisma = TestServer['service']['db']['prisma'];

/** Waits until none of the file's deliveries is waiting or being sent. */
export async function deliveriesSettled(prisma: Prisma, fileId: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (await prisma.webhookDelivery.count({ where: { fileId, state: { in: ['PENDING', 'SENDING'] } } })) {
    if (Date.now() > deadline) throw new Error('deliveries did not settle');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Uploads a file, waits for the end of its processing and, with a webhook, until each of its
 * deliveries is settled: nothing about it changes afterwards. Returns its id.
 */
export async function settledFile(
  url: string,
  key: string,
  prisma: Prisma,
  webhook?: { webhookUrl: string; webhookEvents?: string[] },
): Promise<string> {
  const { body } = await uploadFile(url, key, 'kept or not', { variables: { ...webhook } });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  const fileId = body.data.uploadFile.file.id;
  await waitForTerminal(url, key, fileId);
  await deliveriesSettled(prisma, fileId);
  return fileId;
}

/** Moves the rows of a file back in time, as if they were written `days` ago. */
export async function age(prisma: Prisma, table: 'webhook_delivery' | 'file_status_event', fileId: string, days: number) {
  await prisma.$executeRawUnsafe(`UPDATE ${table} SET created_at = now() - $1::int * interval '1 day' WHERE file_id = $2::uuid`, days, fileId);
}

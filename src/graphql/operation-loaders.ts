import DataLoader from 'dataloader';
import type { PrismaClient } from '../db/database.js';
import type { WebhookAttempt, WebhookDelivery } from '../generated/prisma/client.js';

/** Attempts shown of one delivery: its latest. Each redelivery adds a whole retry schedule's worth. */
export const ATTEMPTS_SHOWN = 20;

/**
 * A delivery's attempts as the API reads them: the latest ATTEMPTS_SHOWN, newest first, without
 * the stored response body it never shows.
 */
export const WITH_ATTEMPTS = { attempts: { omit: { responseBody: true }, orderBy: { attemptedAt: 'desc' }, take: ATTEMPTS_SHOWN } } as const;

export type DeliveryWithAttempts = WebhookDelivery & { attempts: Omit<WebhookAttempt, 'responseBody'>[] };

export interface OperationLoaders {
  /** The latest `count` webhook deliveries of a tenant's file, oldest first, each with its attempts. */
  deliveriesOfFile(fileId: string, count: number): Promise<DeliveryWithAttempts[]>;
}

/**
 * The latest `count` deliveries of each file, in one query for every file of an operation: each
 * file's read stops at `count`, however long its log (a file retried again and again can hold
 * thousands).
 */
async function readLatestDeliveries(prisma: PrismaClient, tenantId: string, fileIds: readonly string[], count: number) {
  const latest = await prisma.$queryRaw<{ id: string }[]>`
    SELECT d.id::text FROM unnest(${[...fileIds]}::uuid[]) AS f(id)
    CROSS JOIN LATERAL (
      SELECT id FROM webhook_delivery WHERE file_id = f.id AND tenant_id = ${tenantId}::uuid
      ORDER BY sequence DESC, created_at DESC LIMIT ${count}::int) AS d`;
  const deliveries = await prisma.webhookDelivery.findMany({
    where: { id: { in: latest.map((row) => row.id) }, tenantId },
    include: WITH_ATTEMPTS,
    orderBy: [{ sequence: 'asc' }, { createdAt: 'asc' }],
  });
  const byFile = new Map<string, DeliveryWithAttempts[]>(fileIds.map((fileId) => [fileId, []]));
  for (const delivery of deliveries) byFile.get(delivery.fileId)!.push(delivery);
  return fileIds.map((fileId) => byFile.get(fileId)!);
}

/** Made for each operation, so that nothing read is kept past it, nor shared between tenants. */
export function createOperationLoaders(prisma: PrismaClient, tenantId: string): OperationLoaders {
  // One loader per count asked for: aliases of one file's log may ask for different counts.
  const byCount = new Map<number, DataLoader<string, DeliveryWithAttempts[]>>();
  return {
    deliveriesOfFile(fileId, count) {
      let loader = byCount.get(count);
      if (!loader) {
        loader = new DataLoader((fileIds) => readLatestDeliveries(prisma, tenantId, fileIds, count));
        byCount.set(count, loader);
      }
      return loader.load(fileId);
    },
  };
}

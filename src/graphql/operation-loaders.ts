import DataLoader from 'dataloader';
import type { PrismaClient } from '../db/database.js';
import type { WebhookAttempt, WebhookDelivery } from '../generated/prisma/client.js';

/** A delivery's attempts as the API shows them: in order, without the stored response body it never shows. */
export const WITH_ATTEMPTS = { attempts: { omit: { responseBody: true }, orderBy: { attemptedAt: 'asc' } } } as const;

export type DeliveryWithAttempts = WebhookDelivery & { attempts: Omit<WebhookAttempt, 'responseBody'>[] };

export interface OperationLoaders {
  /** A tenant's file's webhook deliveries, oldest first, each with its attempts in order. */
  deliveriesOfFile: DataLoader<string, DeliveryWithAttempts[]>;
}

/** Made for each operation, so that nothing read is kept past it, nor shared between tenants. */
export function createOperationLoaders(prisma: PrismaClient, tenantId: string): OperationLoaders {
  return {
    deliveriesOfFile: new DataLoader(async (fileIds) => {
      const deliveries = await prisma.webhookDelivery.findMany({
        where: { fileId: { in: [...fileIds] }, tenantId },
        include: WITH_ATTEMPTS,
        orderBy: [{ sequence: 'asc' }, { createdAt: 'asc' }],
      });
      const byFile = new Map<string, DeliveryWithAttempts[]>(fileIds.map((fileId) => [fileId, []]));
      for (const delivery of deliveries) byFile.get(delivery.fileId)!.push(delivery);
      return fileIds.map((fileId) => byFile.get(fileId)!);
    }),
  };
}

import type { PrismaClient } from '../db/database.js';
import { isUuid } from '../uuid.js';
import type { StatusEvent } from './model.js';
import { toStatusEvent } from './status-rows.js';

/** The current status of a tenant's file; another tenant's file reads as unknown. */
export async function readStatus(prisma: PrismaClient, tenantId: string, fileId: string): Promise<StatusEvent | null> {
  if (!isUuid(fileId)) return null;
  const row = await prisma.fileStatus.findUnique({ where: { fileId } });
  return row && row.tenantId === tenantId ? toStatusEvent(row) : null;
}

/** The recorded changes of a file after `sequence`, oldest first. */
export async function readEventsAfter(
  prisma: PrismaClient,
  fileId: string,
  sequence: number,
  limit: number,
): Promise<StatusEvent[]> {
  const rows = await prisma.fileStatusEvent.findMany({
    where: { fileId, sequence: { gt: sequence } },
    orderBy: { sequence: 'asc' },
    take: limit,
  });
  return rows.map(toStatusEvent);
}

/** The current status of every file changed since `since`, of all tenants. */
export async function readStatusesChangedSince(prisma: PrismaClient, since: Date): Promise<StatusEvent[]> {
  const rows = await prisma.fileStatus.findMany({ where: { updatedAt: { gte: since } } });
  return rows.map(toStatusEvent);
}

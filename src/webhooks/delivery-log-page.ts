import type { PrismaClient } from '../db/database.js';
import { Prisma } from '../generated/prisma/client.js';

export const DELIVERY_STATES = ['PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'DISCARDED'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface DeliveryLogPageQuery {
  tenantId: string;
  /** One file's, or null for every file's. */
  fileId: string | null;
  /** One state, or null for all of them. */
  state: DeliveryState | null;
  /** Queued at or after. */
  since: Date | null;
  /** The last delivery of the page before, by queued time and id: this page starts after it. */
  after: { at: Date; id: string } | null;
  limit: number;
}

/**
 * The ids of a tenant's deliveries, the latest queued first. Each state is one range of the index
 * (tenant_id, state, created_at, id), read from the cursor on for at most `limit` entries, and the
 * ranges are merged: a page reads at most `limit` entries a state however large the log, and a
 * rare state costs no more than a common one. (The same order without the state in the index
 * would read past every delivery of the other states to find a rare one's.)
 */
export async function readDeliveryLogPage(prisma: PrismaClient, query: DeliveryLogPageQuery): Promise<string[]> {
  const since = query.since ? Prisma.sql`AND created_at >= ${query.since}::timestamptz` : Prisma.empty;
  const after = query.after ? Prisma.sql`AND (created_at, id) < (${query.after.at}::timestamptz, ${query.after.id}::uuid)` : Prisma.empty;
  if (query.fileId) return readFileLogPage(prisma, query, Prisma.sql`${since} ${after}`);
  const ranges = (query.state ? [query.state] : DELIVERY_STATES).map(
    (state) => Prisma.sql`(SELECT id, created_at FROM webhook_delivery
      WHERE tenant_id = ${query.tenantId}::uuid AND state = ${state} ${since} ${after}
      ORDER BY created_at DESC, id DESC LIMIT ${query.limit}::int)`,
  );
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id::text FROM (${Prisma.join(ranges, ' UNION ALL ')}) AS page ORDER BY created_at DESC, id DESC LIMIT ${query.limit}::int`;
  return rows.map((row) => row.id);
}

/**
 * One file's page: read through the file's own index (file_id, url, sequence), so it costs what
 * that file's log holds, not what the tenant's does.
 */
async function readFileLogPage(prisma: PrismaClient, query: DeliveryLogPageQuery, bounds: Prisma.Sql): Promise<string[]> {
  const state = query.state ? Prisma.sql`AND state = ${query.state}` : Prisma.empty;
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id::text FROM webhook_delivery
    WHERE file_id = ${query.fileId}::uuid AND tenant_id = ${query.tenantId}::uuid ${state} ${bounds}
    ORDER BY created_at DESC, id DESC LIMIT ${query.limit}::int`;
  return rows.map((row) => row.id);
}

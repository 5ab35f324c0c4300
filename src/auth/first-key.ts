import type { PrismaClient } from '../db/database.js';
import { createApiKey } from './api-keys.js';

/**
 * On a fresh embedded database, creates the `default` tenant's key so the service is usable at
 * once. Fresh means no tenant at all: an operator who revoked every key (say, the first one, read
 * from a shipped log) must not get a new one printed at the next start.
 */
export async function createFirstKeyIfNone(prisma: PrismaClient): Promise<string | null> {
  if ((await prisma.tenant.count()) > 0) return null;
  const { key } = await createApiKey(prisma, 'default');
  return key;
}

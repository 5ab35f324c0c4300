import type { PrismaClient } from '../db/database.js';
import { createApiKey } from './api-keys.js';

/** On a fresh embedded database, creates the `default` tenant's key so the service is usable at once. */
export async function createFirstKeyIfNone(prisma: PrismaClient): Promise<string | null> {
  if ((await prisma.apiKey.count()) > 0) return null;
  const { key } = await createApiKey(prisma, 'default');
  return key;
}

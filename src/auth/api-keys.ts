import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/database.js';

const KEY_PREFIX = 'fsk_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Creates a key for the tenant (and the tenant, if new). The key itself is returned once and never stored. */
export async function createApiKey(prisma: PrismaClient, tenantName: string): Promise<{ key: string; tenantId: string }> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const tenant = await prisma.tenant.upsert({ where: { name: tenantName }, create: { name: tenantName }, update: {} });
  await prisma.apiKey.create({ data: { tenantId: tenant.id, keyHash: hashApiKey(key) } });
  return { key, tenantId: tenant.id };
}

export interface Tenant {
  id: string;
  name: string;
}

/** How long a verified key is trusted without asking the database again. */
const CACHE_TTL_MS = 30_000;
const CACHE_LIMIT = 10_000;

/**
 * Resolves `Authorization: Bearer <key>` to its tenant. Verified keys are cached briefly, so that
 * a poller's request costs one hash, not a query; unknown keys are never cached, so a flood of
 * made-up keys cannot grow memory.
 */
export class ApiKeyAuthenticator {
  private cache = new Map<string, { tenant: Tenant; expiresAt: number }>();

  constructor(private readonly prisma: PrismaClient) {}

  async authenticate(authorization: string | null | undefined): Promise<Tenant | null> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match || !match[1].startsWith(KEY_PREFIX) || match[1].length > 200) return null;
    const keyHash = hashApiKey(match[1]);
    const cached = this.cache.get(keyHash);
    if (cached && cached.expiresAt > Date.now()) return cached.tenant;
    const row = await this.prisma.apiKey.findUnique({ where: { keyHash }, include: { tenant: true } });
    if (!row) {
      this.cache.delete(keyHash);
      return null;
    }
    const tenant = { id: row.tenant.id, name: row.tenant.name };
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(keyHash, { tenant, expiresAt: Date.now() + CACHE_TTL_MS });
    return tenant;
  }
}

import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/database.js';
import { isUuid } from '../uuid.js';

const KEY_PREFIX = 'fsk_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * Creates a key for the tenant (and the tenant, if new). The key itself is returned once and never
 * stored; its id names it afterwards (keys list, keys revoke).
 */
export async function createApiKey(prisma: PrismaClient, tenantName: string): Promise<{ key: string; id: string; tenantId: string }> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const tenant = await prisma.tenant.upsert({ where: { name: tenantName }, create: { name: tenantName }, update: {} });
  const { id } = await prisma.apiKey.create({ data: { tenantId: tenant.id, keyHash: hashApiKey(key) } });
  return { key, id, tenantId: tenant.id };
}

export interface ApiKeyListing {
  id: string;
  tenant: string;
  createdAt: Date;
}

/** Every key (of one tenant, if named), oldest first: ids and tenants, never a key. */
export async function listApiKeys(prisma: PrismaClient, tenantName?: string): Promise<ApiKeyListing[]> {
  const rows = await prisma.apiKey.findMany({
    where: tenantName === undefined ? {} : { tenant: { name: tenantName } },
    include: { tenant: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  return rows.map((row) => ({ id: row.id, tenant: row.tenant.name, createdAt: row.createdAt }));
}

/**
 * Deletes the key named by its id or by the key itself. The service stops taking it within
 * API_KEY_TRUST_MS, on the streams it opened too. Returns what was revoked, or null for no such key.
 */
export async function revokeApiKey(prisma: PrismaClient, idOrKey: string): Promise<ApiKeyListing | null> {
  const where = idOrKey.startsWith(KEY_PREFIX) ? { keyHash: hashApiKey(idOrKey) } : isUuid(idOrKey) ? { id: idOrKey.toLowerCase() } : null;
  if (!where) return null;
  const row = await prisma.apiKey.findUnique({ where, include: { tenant: true } });
  if (!row) return null;
  await prisma.apiKey.deleteMany({ where: { id: row.id } });
  return { id: row.id, tenant: row.tenant.name, createdAt: row.createdAt };
}

export interface Tenant {
  id: string;
  name: string;
}

const CACHE_LIMIT = 10_000;

/**
 * Resolves `Authorization: Bearer <key>` to its tenant. Verified keys are cached for `trustMs`, so
 * that a poller's request costs one hash, not a query; unknown keys are never cached, so a flood
 * of made-up keys cannot grow memory. A key deleted from the database (revoked) therefore stops
 * working within `trustMs`, and so do the streams opened with it: each is watched (watch()), and
 * the keys of all of them are checked in one query every `trustMs`.
 */
export class ApiKeyAuthenticator {
  private cache = new Map<string, { tenant: Tenant; expiresAt: number }>();
  /** The streams open with each key (by hash), told when it is revoked. */
  private watchers = new Map<string, Set<() => void>>();
  private recheck: NodeJS.Timeout | undefined;
  private checking = false;
  /** The service stopped: no stream is watched any more. */
  private closed = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly trustMs = 30_000,
  ) {}

  async authenticate(authorization: string | null | undefined): Promise<Tenant | null> {
    const keyHash = hashOf(authorization);
    if (!keyHash) return null;
    const cached = this.cache.get(keyHash);
    if (cached && cached.expiresAt > Date.now()) return cached.tenant;
    const row = await this.prisma.apiKey.findUnique({ where: { keyHash }, include: { tenant: true } });
    if (!row) {
      this.cache.delete(keyHash);
      return null;
    }
    const tenant = { id: row.tenant.id, name: row.tenant.name };
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(keyHash, { tenant, expiresAt: Date.now() + this.trustMs });
    return tenant;
  }

  /**
   * Calls `onRevoked` once the key `authorization` carries is found gone from the database, within
   * `trustMs`. Returns the call that stops watching, which the stream makes when it ends.
   */
  watch(authorization: string | null | undefined, onRevoked: () => void): () => void {
    const keyHash = hashOf(authorization);
    if (!keyHash || this.closed) return () => {};
    const watching = this.watchers.get(keyHash) ?? new Set();
    this.watchers.set(keyHash, watching);
    watching.add(onRevoked);
    this.recheck ??= setInterval(() => void this.checkWatched(), this.trustMs).unref();
    return () => {
      watching.delete(onRevoked);
      if (watching.size === 0 && this.watchers.get(keyHash) === watching) this.watchers.delete(keyHash);
      this.stopRecheckIfIdle();
    };
  }

  /** Streams whose key is watched: each open WebSocket and each subscription holds one until it ends. */
  get watchedStreams(): number {
    let count = 0;
    for (const watching of this.watchers.values()) count += watching.size;
    return count;
  }

  /** The service's stop: nothing is watched, or checked, any more. */
  close(): void {
    this.closed = true;
    this.watchers.clear();
    this.stopRecheckIfIdle();
  }

  private stopRecheckIfIdle(): void {
    if (this.watchers.size > 0) return;
    clearInterval(this.recheck);
    this.recheck = undefined;
  }

  private async checkWatched(): Promise<void> {
    // One check at a time: with the database slow, checks would otherwise pile up, one an interval.
    if (this.checking) return;
    this.checking = true;
    try {
      const watched = [...this.watchers.keys()];
      const rows = await this.prisma.apiKey.findMany({ where: { keyHash: { in: watched } }, select: { keyHash: true } });
      const live = new Set(rows.map((row) => row.keyHash));
      for (const keyHash of watched) {
        if (live.has(keyHash)) continue;
        this.cache.delete(keyHash);
        const revoked = this.watchers.get(keyHash);
        this.watchers.delete(keyHash);
        for (const onRevoked of revoked ?? []) onRevoked();
      }
      this.stopRecheckIfIdle();
    } catch {
      // The database is away: the streams keep going until a check can tell.
    } finally {
      this.checking = false;
    }
  }
}

/** The hash a well-formed `Bearer <key>` header names its key by; null for anything else. */
function hashOf(authorization: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match || !match[1].startsWith(KEY_PREFIX) || match[1].length > 200) return null;
  return hashApiKey(match[1]);
}

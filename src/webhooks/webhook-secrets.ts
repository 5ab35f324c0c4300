import type { PrismaClient } from '../db/database.js';
import type { Logger } from '../log.js';
import { generateWebhookSecret } from './sign-webhook.js';

/** How long a replaced secret keeps signing after the rotation that replaced it. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

/**
 * Of the replaced secrets, at most this many sign at once: with the current one, five signatures,
 * about 240 bytes of header. A sixth rotation within 24 hours ends the oldest one's window early.
 */
export const MAX_RETIRED_SIGNING = 4;

/** The tenant's current secret, created on first use. */
export async function ensureWebhookSecret(prisma: PrismaClient, tenantId: string): Promise<string> {
  // Only fills an empty column, so two callers racing agree on one secret.
  await prisma.tenant.updateMany({ where: { id: tenantId, webhookSecret: null }, data: { webhookSecret: generateWebhookSecret() } });
  const tenant = await prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { webhookSecret: true } });
  return tenant.webhookSecret!;
}

/**
 * Replaces the secret; the old one keeps signing, beside the new, for ROTATION_OVERLAP_MS, and so
 * do the ones that earlier rotations replaced, each for its own window. The replacement only lands
 * on the secret it read: of two rotations at once, the later one reads again and retires the
 * earlier one's secret, so no secret handed out is skipped.
 */
export async function rotateWebhookSecret(prisma: PrismaClient, tenantId: string): Promise<{ secret: string; previousExpiresAt: Date }> {
  for (;;) {
    const current = await ensureWebhookSecret(prisma, tenantId);
    const secret = generateWebhookSecret();
    const previousExpiresAt = new Date(Date.now() + ROTATION_OVERLAP_MS);
    const rotated = await prisma.$transaction(async (tx) => {
      const { count } = await tx.tenant.updateMany({
        where: { id: tenantId, webhookSecret: current },
        data: { webhookSecret: secret, previousWebhookSecret: current, previousWebhookSecretExpiresAt: previousExpiresAt },
      });
      if (count === 0) return false;
      await tx.retiredWebhookSecret.create({ data: { tenantId, secret: current, signsUntil: previousExpiresAt } });
      const beyondLimit = await tx.retiredWebhookSecret.findMany({
        where: { tenantId },
        orderBy: { signsUntil: 'desc' },
        skip: MAX_RETIRED_SIGNING,
        select: { id: true },
      });
      await tx.retiredWebhookSecret.deleteMany({
        where: { tenantId, OR: [{ signsUntil: { lte: new Date() } }, { id: { in: beyondLimit.map((row) => row.id) } }] },
      });
      return true;
    });
    if (rotated) return { secret, previousExpiresAt };
  }
}

/** A tenant's secrets as a claimed delivery carries them. */
export interface DeliverySecrets {
  tenantId: string;
  webhookSecret: string;
  previousWebhookSecret: string | null;
  previousWebhookSecretExpiresAt: Date | null;
}

interface RetiredSecret {
  secret: string;
  signsUntil: Date;
}

/** Enough for every tenant inside a rotation window at once, in any service we expect. */
const CACHED_ROTATIONS = 1000;

/**
 * The secrets that sign a request now: the current one, and each replaced one inside its window.
 * Outside a rotation window (the previous secret expired or never was) that is the current one
 * alone, with no query. Inside one, the older replaced secrets are read once per current secret and
 * kept: the secrets retired before a given secret became current never change, and each one's
 * window is checked again at every signing.
 */
export class SigningSecrets {
  private retiredBefore = new Map<string, Promise<RetiredSecret[]>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly log: Logger,
  ) {}

  async of(delivery: DeliverySecrets, now = new Date()): Promise<string[]> {
    const { webhookSecret, previousWebhookSecret, previousWebhookSecretExpiresAt: previousSignsUntil } = delivery;
    if (!previousWebhookSecret || !previousSignsUntil || previousSignsUntil <= now) return [webhookSecret];
    try {
      const retired = await this.retiredBeforeSecret(delivery.tenantId, webhookSecret, previousSignsUntil);
      // A secret current at the claim and retired within the same millisecond reads as its own predecessor.
      const signing = retired.filter((row) => row.signsUntil > now && row.secret !== webhookSecret);
      return [webhookSecret, ...signing.map((row) => row.secret)];
    } catch (error) {
      // The delivery still goes out, signed as the claim allows: only a receiver still on an
      // older secret than the previous one fails it, and the retry reads again.
      this.log.warn({ err: error, tenantId: delivery.tenantId }, 'could not read the older webhook secrets; signing with the current and previous');
      return [webhookSecret, previousWebhookSecret];
    }
  }

  /**
   * The secrets replaced up to the rotation that made `secret` current, whose own retired row ends
   * at `previousSignsUntil`: later rotations retire theirs with later ends, so they are left out.
   */
  private retiredBeforeSecret(tenantId: string, secret: string, previousSignsUntil: Date): Promise<RetiredSecret[]> {
    let retired = this.retiredBefore.get(secret);
    if (!retired) {
      retired = this.prisma.retiredWebhookSecret.findMany({
        where: { tenantId, signsUntil: { gt: new Date(), lte: previousSignsUntil } },
        orderBy: { signsUntil: 'desc' },
        take: MAX_RETIRED_SIGNING,
        select: { secret: true, signsUntil: true },
      });
      // A failed read is not kept: the next delivery reads again.
      retired.catch(() => this.retiredBefore.delete(secret));
      if (this.retiredBefore.size >= CACHED_ROTATIONS) this.retiredBefore.delete(this.retiredBefore.keys().next().value!);
      this.retiredBefore.set(secret, retired);
    }
    return retired;
  }
}

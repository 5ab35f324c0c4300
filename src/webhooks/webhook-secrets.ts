import type { PrismaClient } from '../db/database.js';
import { generateWebhookSecret } from './sign-webhook.js';

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

/** The tenant's current secret, created on first use. */
export async function ensureWebhookSecret(prisma: PrismaClient, tenantId: string): Promise<string> {
  // Only fills an empty column, so two callers racing agree on one secret.
  await prisma.tenant.updateMany({ where: { id: tenantId, webhookSecret: null }, data: { webhookSecret: generateWebhookSecret() } });
  const tenant = await prisma.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { webhookSecret: true } });
  return tenant.webhookSecret!;
}

/**
 * Replaces the secret; the old one keeps signing, beside the new, for ROTATION_OVERLAP_MS. The
 * replacement only lands on the secret it read: of two rotations at once, the later one reads
 * again and keeps the earlier one's secret as the previous, so no secret handed out is skipped.
 */
export async function rotateWebhookSecret(prisma: PrismaClient, tenantId: string): Promise<{ secret: string; previousExpiresAt: Date }> {
  for (;;) {
    const current = await ensureWebhookSecret(prisma, tenantId);
    const secret = generateWebhookSecret();
    const previousExpiresAt = new Date(Date.now() + ROTATION_OVERLAP_MS);
    const { count } = await prisma.tenant.updateMany({
      where: { id: tenantId, webhookSecret: current },
      data: { webhookSecret: secret, previousWebhookSecret: current, previousWebhookSecretExpiresAt: previousExpiresAt },
    });
    if (count === 1) return { secret, previousExpiresAt };
  }
}

/** The secrets that sign a request now: the current one, and the previous one inside its window. */
export function signingSecrets(
  tenant: { webhookSecret: string; previousWebhookSecret: string | null; previousWebhookSecretExpiresAt: Date | null },
  now = new Date(),
): string[] {
  const previousValid =
    tenant.previousWebhookSecret && tenant.previousWebhookSecretExpiresAt && tenant.previousWebhookSecretExpiresAt > now;
  return previousValid ? [tenant.webhookSecret, tenant.previousWebhookSecret!] : [tenant.webhookSecret];
}

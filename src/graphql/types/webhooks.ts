import { canonicalUuid } from '../../uuid.js';
import { redeliver, redeliverFailed } from '../../webhooks/delivery-sql.js';
import { ensureWebhookSecret, rotateWebhookSecret } from '../../webhooks/webhook-secrets.js';
import { builder } from '../builder.js';
import { notFound } from '../errors.js';
import { DEFAULT_PAGE, MAX_PAGE, pageSize } from '../keyset-cursor.js';
import { ATTEMPTS_SHOWN, WITH_ATTEMPTS, type DeliveryWithAttempts } from '../operation-loaders.js';
import { File } from './file.js';
import { WebhookEventTypeEnum } from './upload.js';

export const WebhookDeliveryState = builder.enumType('WebhookDeliveryState', {
  values: {
    PENDING: { description: 'Waiting for its first or next attempt.' },
    SENDING: { description: 'Taken by a dispatcher: its attempt is in flight, or starts as soon as a slot for its host and tenant frees.' },
    DELIVERED: { description: 'The receiver answered 2xx.' },
    FAILED: { description: 'Every attempt failed, or the receiver answered 410 Gone.' },
    DISCARDED: { description: 'Not sent: see reason (superseded by a newer status, or webhook disabled).' },
  } as const,
});

const WebhookAttempt = builder.objectRef<DeliveryWithAttempts['attempts'][number]>('WebhookAttempt').implement({
  fields: (t) => ({
    attemptedAt: t.field({ type: 'DateTime', resolve: (a) => a.attemptedAt }),
    durationMs: t.exposeInt('durationMs'),
    responseStatus: t.exposeInt('responseStatus', { nullable: true }),
    error: t.exposeString('error', { nullable: true, description: 'Why the attempt failed before any answer (timeout, refused, blocked address).' }),
  }),
});

export const WebhookDelivery = builder.objectRef<DeliveryWithAttempts>('WebhookDelivery').implement({
  description: 'One status event sent, or to be sent, to the webhook of a file.',
  fields: (t) => ({
    id: t.exposeID('id'),
    // An id, not the File: File.webhookDeliveries back to it would let one document nest a file's
    // whole log inside each of its deliveries, again and again.
    fileId: t.exposeID('fileId'),
    eventId: t.id({ description: 'The `webhook-id` header: the same on every attempt.', resolve: (d, _args, { services }) => services.webhookIds.of(d.eventId) }),
    eventType: t.field({ type: WebhookEventTypeEnum, resolve: (d) => d.eventType as 'file.processing' }),
    sequence: t.exposeInt('sequence'),
    url: t.exposeString('url'),
    state: t.field({ type: WebhookDeliveryState, resolve: (d) => d.state as 'PENDING' }),
    reason: t.exposeString('discardReason', {
      nullable: true,
      description: 'Why it was discarded (superseded, or the webhook disabled), or why it failed with attempts left (410 Gone).',
    }),
    attempts: t.field({
      type: [WebhookAttempt],
      description: `Oldest first: the latest ${ATTEMPTS_SHOWN}, when redeliveries made more.`,
      // Read newest first, to keep the latest.
      resolve: (d) => d.attempts.toReversed(),
    }),
    queuedAt: t.field({
      type: 'DateTime',
      description: 'When it was queued: at its status change, or at its latest redelivery.',
      resolve: (d) => d.createdAt,
    }),
    nextAttemptAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => (d.state === 'PENDING' ? d.nextAttemptAt : null) }),
  }),
});

builder.objectField(File, 'webhookDeliveries', (t) =>
  t.field({
    type: [WebhookDelivery],
    description: `The latest \`last\` webhook deliveries of this file, oldest first. All of them, a page at a time: \`webhookDeliveries(fileId:)\`.`,
    args: { last: t.arg.int({ defaultValue: DEFAULT_PAGE, description: `At most ${MAX_PAGE}.` }) },
    resolve: (file, args, { loaders }) => loaders.deliveriesOfFile(file.id, pageSize(args.last, 'last')),
  }),
);

builder.objectField(File, 'webhookDisabledAt', (t) =>
  t.field({
    type: 'DateTime',
    nullable: true,
    description:
      'When the receiver answered 410 Gone: since then no status change of this file is sent to it. Redelivering one of its deliveries turns the webhook back on.',
    resolve: (file) => file.webhookDisabledAt,
  }),
);

builder.queryField('webhookSecret', (t) =>
  t.string({
    description: "The tenant's webhook signing secret (whsec_…), for verifying requests with a Standard Webhooks library.",
    resolve: (_root, _args, { tenant, services }) => ensureWebhookSecret(services.prisma, tenant.id),
  }),
);

const RotatedSecret = builder.objectRef<{ secret: string; previousExpiresAt: Date }>('RotatedWebhookSecret').implement({
  fields: (t) => ({
    secret: t.exposeString('secret'),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      description: 'Until then every request carries a signature by the previous secret too.',
      resolve: (r) => r.previousExpiresAt,
    }),
  }),
});

builder.mutationField('rotateWebhookSecret', (t) =>
  t.field({
    type: RotatedSecret,
    description:
      'Makes a new secret. Each secret it replaces keeps signing, beside the newer ones, for 24 hours: every request carries one signature per secret, space-separated, up to the current one and the four replaced most recently.',
    resolve: (_root, _args, { tenant, services }) => rotateWebhookSecret(services.prisma, tenant.id),
  }),
);

builder.mutationField('redeliverWebhook', (t) =>
  t.field({
    type: WebhookDelivery,
    description:
      'Sends a delivery again, with the same webhook-id and a fresh retry schedule. One being sent at that moment is returned as it is (SENDING): its attempt is under way.',
    args: { deliveryId: t.arg.id({ required: true }) },
    resolve: async (_root, { deliveryId }, { tenant, services }) => {
      const id = canonicalUuid(String(deliveryId));
      if (!id || !(await redeliver(services.prisma, tenant.id, id))) throw notFound('webhook delivery');
      services.bus.publishWebhooksQueued();
      return services.prisma.webhookDelivery.findUniqueOrThrow({ where: { id }, include: WITH_ATTEMPTS });
    },
  }),
);

builder.mutationField('redeliverFailedWebhooks', (t) =>
  t.int({
    description:
      'After a receiver\'s outage: sends again every delivery of yours that failed for good and was queued since `since`, with its webhook-id and a fresh retry schedule, as redeliverWebhook does. Leaves out the files whose webhook a 410 Gone disabled, and a delivery that a later one of the same file and URL followed (that one, or its receipt, carries the newer state). Returns how many were queued again.',
    args: { since: t.arg({ type: 'DateTime', required: true }) },
    resolve: async (_root, { since }, { tenant, services }) => {
      const queued = await redeliverFailed(services.prisma, tenant.id, since);
      if (queued > 0) services.bus.publishWebhooksQueued();
      return queued;
    },
  }),
);

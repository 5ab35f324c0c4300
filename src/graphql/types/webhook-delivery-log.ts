import { canonicalUuid } from '../../uuid.js';
import { readDeliveryLogPage } from '../../webhooks/delivery-log-page.js';
import { builder } from '../builder.js';
import { DEFAULT_PAGE, decodeCursor, MAX_PAGE, pageSize, toConnection } from '../keyset-cursor.js';
import { WITH_ATTEMPTS, type DeliveryWithAttempts } from '../operation-loaders.js';
import { connectionOf } from './connection.js';
import { WebhookDelivery, WebhookDeliveryState } from './webhooks.js';

const WebhookDeliveryConnection = connectionOf('WebhookDelivery', WebhookDelivery);

const positionOf = (delivery: DeliveryWithAttempts) => ({ at: delivery.createdAt, id: delivery.id });

builder.queryField('webhookDeliveries', (t) =>
  t.field({
    type: WebhookDeliveryConnection,
    description:
      "The caller's webhook deliveries of every file, the latest queued first: what failed while a receiver was down, or what still waits.",
    args: {
      fileId: t.arg.id({ description: "Only this file's: its whole log, where `File.webhookDeliveries` gives the latest." }),
      state: t.arg({ type: WebhookDeliveryState }),
      since: t.arg({ type: 'DateTime', description: 'Only those queued at or after this time.' }),
      first: t.arg.int({ defaultValue: DEFAULT_PAGE, description: `At most ${MAX_PAGE}.` }),
      after: t.arg.string(),
    },
    resolve: async (_root, args, { tenant, services }) => {
      const first = pageSize(args.first);
      const fileId = args.fileId == null ? null : canonicalUuid(String(args.fileId));
      // Not an id names no file: an empty page, as another tenant's file or one without deliveries gives.
      if (args.fileId != null && fileId === null) return toConnection([], first, positionOf);
      const ids = await readDeliveryLogPage(services.prisma, {
        tenantId: tenant.id,
        fileId,
        state: args.state ?? null,
        since: args.since ?? null,
        after: args.after ? decodeCursor(args.after) : null,
        limit: first + 1,
      });
      const rows = await services.prisma.webhookDelivery.findMany({ where: { id: { in: ids }, tenantId: tenant.id }, include: WITH_ATTEMPTS });
      const byId = new Map(rows.map((row) => [row.id, row]));
      // One the log's retention removed between the two reads is left out of the page.
      const page = ids.flatMap((id) => byId.get(id) ?? []);
      return toConnection(page, first, positionOf, ids.length > first);
    },
  }),
);

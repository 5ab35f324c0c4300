import type { Prisma } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { decodeCursor, MAX_PAGE, pageSize, toConnection } from '../keyset-cursor.js';
import type { DeliveryWithAttempts } from '../operation-loaders.js';
import { PageInfo, type Connection } from './page-info.js';
import { WebhookDelivery, WebhookDeliveryState } from './webhooks.js';

const WebhookDeliveryEdge = builder.objectRef<Connection<DeliveryWithAttempts>['edges'][number]>('WebhookDeliveryEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: WebhookDelivery, resolve: (edge) => edge.node }),
  }),
});

const WebhookDeliveryConnection = builder.objectRef<Connection<DeliveryWithAttempts>>('WebhookDeliveryConnection').implement({
  fields: (t) => ({
    edges: t.field({ type: [WebhookDeliveryEdge], resolve: (c) => c.edges }),
    pageInfo: t.field({ type: PageInfo, resolve: (c) => c.pageInfo }),
  }),
});

builder.queryField('webhookDeliveries', (t) =>
  t.field({
    type: WebhookDeliveryConnection,
    description:
      "The caller's webhook deliveries of every file, the latest queued first: what failed while a receiver was down, or what still waits.",
    args: {
      state: t.arg({ type: WebhookDeliveryState }),
      since: t.arg({ type: 'DateTime', description: 'Only those queued at or after this time.' }),
      first: t.arg.int({ defaultValue: 20, description: `At most ${MAX_PAGE}.` }),
      after: t.arg.string(),
    },
    resolve: async (_root, args, { tenant, services }) => {
      const first = pageSize(args.first);
      const where: Prisma.WebhookDeliveryWhereInput = { tenantId: tenant.id };
      if (args.state) where.state = args.state;
      if (args.since) where.createdAt = { gte: args.since };
      if (args.after) {
        const { at, id } = decodeCursor(args.after);
        where.OR = [{ createdAt: { lt: at } }, { createdAt: at, id: { lt: id } }];
      }
      const rows = await services.prisma.webhookDelivery.findMany({
        where,
        include: { attempts: { orderBy: { attemptedAt: 'asc' } } },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: first + 1,
      });
      return toConnection(rows, first, (delivery) => ({ at: delivery.createdAt, id: delivery.id }));
    },
  }),
);

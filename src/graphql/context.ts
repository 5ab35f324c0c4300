import type { ApiKeyAuthenticator, Tenant } from '../auth/api-keys.js';
import type { PrismaClient } from '../db/database.js';
import type { StatusBus } from '../status/status-bus.js';
import type { StatusCache } from '../status/status-cache.js';
import type { WatchObserver } from '../status/watch-status.js';
import type { UploadDeps } from '../uploads/accept-upload.js';
import type { WebhookIds } from '../webhooks/webhook-ids.js';
import type { OperationLoaders } from './operation-loaders.js';

/** What every resolver may use: the caller's tenant and the services behind the API. */
export interface Services extends UploadDeps {
  prisma: PrismaClient;
  bus: StatusBus;
  authenticator: ApiKeyAuthenticator;
  statusCache: StatusCache;
  webhookIds: WebhookIds;
  /** Counts the subscriptions open, when metrics are on. */
  watchObserver?: WatchObserver;
}

export interface GraphQLContext {
  tenant: Tenant;
  /** The `Bearer` key the tenant was found by: a stream keeps checking it (end-on-revocation). */
  authorization: string;
  services: Services;
  /** Batches of one operation's reads: a list of files reads their deliveries in one query, not one per file. */
  loaders: OperationLoaders;
}

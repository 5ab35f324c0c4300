import type { IncomingMessage, ServerResponse } from 'node:http';
import { createYoga, type YogaInitialContext } from 'graphql-yoga';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import type { Tenant } from '../auth/api-keys.js';
import type { Logger } from '../log.js';
import { useStreamingMultipart } from './multipart-request-parser.js';
import type { GraphQLContext, Services } from './context.js';
import { unauthenticated } from './errors.js';
import { useJsonBodyLimit } from './limit-json-body.js';
import { schema } from './schema.js';

const JSON_BODY_LIMIT = 1_000_000;

/** Over WebSocket the tenant is resolved once, when the connection opens. */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  tenant?: Tenant;
}

export function createYogaApp(services: Services, log: Logger) {
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    logging: {
      debug: (...args) => log.debug({ args }, 'yoga'),
      info: (...args) => log.info({ args }, 'yoga'),
      warn: (...args) => log.warn({ args }, 'yoga'),
      error: (...args) => log.error({ args }, 'yoga'),
    },
    multipart: false,
    maxRequestBodySize: false,
    batching: false,
    landingPage: false,
    graphiql: { subscriptionsProtocol: 'WS' },
    plugins: [
      useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-preflight'] }),
      useJsonBodyLimit(JSON_BODY_LIMIT),
      useStreamingMultipart({
        // busboy flags a file that reaches its limit, so a file of exactly MAX_UPLOAD_BYTES needs one more.
        maxFileSize: services.maxUploadBytes + 1,
        isAuthenticated: async (authorization) => (await services.authenticator.authenticate(authorization)) !== null,
      }),
    ],
    context: async (initial: YogaInitialContext & ServerContext): Promise<GraphQLContext> => {
      const tenant = initial.tenant ?? (await services.authenticator.authenticate(initial.request?.headers.get('authorization')));
      if (!tenant) throw unauthenticated();
      return { tenant, services };
    },
  });
}

export type YogaApp = ReturnType<typeof createYogaApp>;

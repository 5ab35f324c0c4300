import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphQLError, ValidationContext } from 'graphql';
import { createGraphQLError, createYoga, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import type { Logger } from '../log.js';
import { useStreamsEndOnRevocation } from './end-on-revocation.js';
import { useStreamingMultipart } from './multipart-request-parser.js';
import { useOneUploadPerDocument } from './one-upload-per-document.js';
import { usePageSizeCost } from './page-size-cost.js';
import type { GraphQLContext, Services } from './context.js';
import { unauthenticated } from './errors.js';
import { createOperationLoaders } from './operation-loaders.js';
import { useJsonBodyLimit } from './limit-json-body.js';
import { useQueryStringParamsCheck } from './query-string-params.js';
import { useRequestErrorCodes } from './request-error-codes.js';
import { schema } from './schema.js';

const JSON_BODY_LIMIT = 1_000_000;

/** Over WebSocket the key comes in the connection's parameters, not in a header. */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  authorization?: string | null;
}

/** What one GraphQL document may ask for: graphql-armor's defaults, but for depth (6 there) and cost (5,000), under which a page of 100 files with every field would not pass (10,025). */
export const QUERY_LIMITS = { tokens: 1000, depth: 8, aliases: 15, cost: 20_000 };

/**
 * graphql-armor throws its refusal out of validation, where it reached the client without the
 * `GRAPHQL_VALIDATION_FAILED` code that every other invalid document gets; reported as a
 * validation error, it gets it.
 */
const REPORT_REFUSAL = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/** The cost limit, counted at validation and again once the variables are known (usePageSizeCost). */
const COST_LIMIT = { maxCost: QUERY_LIMITS.cost, exposeLimits: true, ignoreIntrospection: true, ...REPORT_REFUSAL };

/**
 * Yoga's CSRF prevention, its refusal given the stable code every other error has: the plugin's
 * own error carries only its HTTP status.
 */
function useCsrfPreventionWithCode(requestHeaders: string[]): Plugin {
  const prevention = useCSRFPrevention({ requestHeaders });
  return {
    onRequestParse(payload) {
      try {
        return prevention.onRequestParse?.(payload);
      } catch (error) {
        throw createGraphQLError(`${(error as Error).message}: send one of ${requestHeaders.join(', ')} (any value).`, {
          extensions: { code: 'CSRF_HEADER_REQUIRED', http: { status: 403 } },
        });
      }
    },
  };
}

/** An error among Yoga's log arguments goes through pino's serializer: as a plain argument it was logged as {}. */
function yogaLogFields(args: unknown[]): { err?: unknown; args: unknown[] } {
  const err = args.find((arg) => arg instanceof Error);
  return err ? { err, args: args.filter((arg) => arg !== err) } : { args };
}

export function createYogaApp(services: Services, log: Logger) {
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    logging: {
      debug: (...args) => log.debug(yogaLogFields(args), 'yoga'),
      info: (...args) => log.info(yogaLogFields(args), 'yoga'),
      warn: (...args) => log.warn(yogaLogFields(args), 'yoga'),
      error: (...args) => log.error(yogaLogFields(args), 'yoga'),
    },
    multipart: false,
    maxRequestBodySize: false,
    batching: false,
    landingPage: false,
    graphiql: { subscriptionsProtocol: 'WS' },
    plugins: [
      // One small document must not hold the server: each alias or nested list multiplies the
      // work, and on the embedded database every query waits for it. The numbers are in the
      // errors, and far above what the API's own operations need (README, "API").
      maxTokensPlugin({ n: QUERY_LIMITS.tokens, exposeLimits: true }),
      maxDepthPlugin({ n: QUERY_LIMITS.depth, exposeLimits: true, ignoreIntrospection: true, flattenFragments: true, ...REPORT_REFUSAL }),
      maxAliasesPlugin({ n: QUERY_LIMITS.aliases, exposeLimits: true, ...REPORT_REFUSAL }),
      costLimitPlugin(COST_LIMIT),
      usePageSizeCost(COST_LIMIT),
      useCsrfPreventionWithCode(['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-preflight']),
      useJsonBodyLimit(JSON_BODY_LIMIT),
      useQueryStringParamsCheck(),
      useOneUploadPerDocument(),
      useStreamsEndOnRevocation(services.authenticator),
      useRequestErrorCodes(),
      useStreamingMultipart({
        // busboy flags a file that reaches its limit, so a file of exactly MAX_UPLOAD_BYTES needs one more.
        maxFileSize: services.maxUploadBytes + 1,
        isAuthenticated: async (authorization) => (await services.authenticator.authenticate(authorization)) !== null,
      }),
    ],
    context: async (initial: YogaInitialContext & ServerContext): Promise<GraphQLContext> => {
      // Every operation, a WebSocket's too: a key revoked since the socket opened starts nothing more.
      const authorization = initial.authorization ?? initial.request?.headers.get('authorization') ?? '';
      const tenant = await services.authenticator.authenticate(authorization);
      if (!tenant) throw unauthenticated();
      return { tenant, authorization, services, loaders: createOperationLoaders(services.prisma, tenant.id) };
    },
  });
}

export type YogaApp = ReturnType<typeof createYogaApp>;

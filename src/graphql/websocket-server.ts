import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import type { Logger } from '../log.js';
import type { Services } from './context.js';
import type { YogaApp } from './yoga.js';

interface Enveloped {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * Operations in flight on one socket. Each holds a listener and a queue: 50,000 on one socket held
 * the server for 20 s and a gigabyte. A page watching its files needs a handful, or one
 * tenant-wide stream.
 */
export const MAX_OPERATIONS_PER_CONNECTION = 100;

/**
 * The API key as clients send it in connectionParams: `authorization`, in any case (`Authorization`
 * too, as an HTTP header is written), or inside `headers`, as many clients send it.
 */
function authorizationOf(params: Record<string, unknown> | undefined): string | null {
  const find = (fields: unknown): unknown => {
    if (typeof fields !== 'object' || fields === null) return undefined;
    return Object.entries(fields).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  };
  const authorization = find(params) ?? find(params?.headers);
  return typeof authorization === 'string' ? authorization : null;
}

/**
 * graphql-ws on the HTTP server's /graphql. Operations run through Yoga's envelop, so they share
 * its plugins and context (and so its auth) with HTTP. The API key arrives in connectionParams.
 */
export function attachWebSocketServer(server: Server, yoga: YogaApp, services: Services, log: Logger) {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: 1_000_000 });
  const disposable = useServer<Record<string, unknown> | undefined, { authorization?: string | null; unwatch?: () => void }>(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onConnect: async (ctx) => {
        const authorization = authorizationOf(ctx.connectionParams);
        if (!(await services.authenticator.authenticate(authorization))) return false; // closes with 4403 Forbidden
        // Closed while its key was read: onClose has run already, and would never stop a watch begun now.
        if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return false;
        ctx.extra.authorization = authorization;
        // Revoked, the key keeps no socket open: its operations would all be refused.
        ctx.extra.unwatch = services.authenticator.watch(authorization, () => ctx.extra.socket.close(4403, 'Forbidden: the API key was revoked'));
        return true;
      },
      onClose: (ctx) => ctx.extra.unwatch?.(),
      onSubscribe: async (ctx, _id, params) => {
        // graphql-ws counts the operation being started among them already.
        if (Object.keys(ctx.subscriptions).length > MAX_OPERATIONS_PER_CONNECTION) {
          return [new GraphQLError(`At most ${MAX_OPERATIONS_PER_CONNECTION} operations at once on one connection: complete one first.`, { extensions: { code: 'TOO_MANY_OPERATIONS' } })];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          authorization: ctx.extra.authorization,
        });
        let document: DocumentNode;
        try {
          document = parse(params.query);
        } catch (error) {
          // An error message for this operation, coded as over HTTP; left to graphql-ws, it would close the whole socket.
          const message = error instanceof GraphQLError ? error.message : 'The query could not be parsed.';
          return [new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        // As graphql-ws would refuse it, but with the code HTTP gives.
        if (!getOperationAST(document, params.operationName)) {
          const message = params.operationName ? `Unknown operation named "${params.operationName}".` : 'Must provide operation name if the document contains several operations.';
          return [new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })];
        }
        return args;
      },
    },
    wss,
  );
  // A socket's errors (a message over maxPayload, a broken frame) are ws closing it with the
  // fitting code. graphql-ws would print each with its stack on stderr, outside the JSON logs.
  wss.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error) => log.warn({ reason: error.message }, 'closed a WebSocket after a protocol error'));
  });
  return {
    async close() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

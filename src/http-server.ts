import http from 'node:http';
import type { Database } from './db/database.js';
import type { Services } from './graphql/context.js';
import { attachWebSocketServer } from './graphql/websocket-server.js';
import { createYogaApp } from './graphql/yoga.js';
import type { Logger } from './log.js';
import { FILE_STATUS_PATH, createFileStatusRoute } from './rest/file-status-route.js';
import { liveness, readiness } from './rest/health-routes.js';
import { listen } from './listen.js';

/** One HTTP server for everything: GraphQL over HTTP and SSE, graphql-ws, REST and health checks. */
export function createHttpServer(db: Database, services: Services, log: Logger) {
  const yoga = createYogaApp(services, log);
  const fileStatus = createFileStatusRoute(services);
  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'Malformed request target.' } }));
      return;
    }
    const route = (): Promise<void> | void => {
      switch (url.pathname) {
        case '/healthz':
          return liveness(res);
        case '/readyz':
          return readiness(db, res);
        case FILE_STATUS_PATH:
          return fileStatus(req, res, url);
        default:
          return yoga(req, res);
      }
    };
    Promise.resolve()
      .then(route)
      .catch((error: unknown) => {
        log.error({ err: error, path: url.pathname }, 'request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'Internal error.' } }));
      });
  });
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  // Uploads of a gigabyte may take minutes: no overall request deadline, only the idle one.
  server.requestTimeout = 0;
  server.timeout = 120_000;
  const websockets = attachWebSocketServer(server, yoga, services, log);

  return {
    listen: (port: number, host: string): Promise<number> => listen(server, port, host),
    /** Stops taking requests, lets the ones in progress finish for `graceMs`, then closes every socket. */
    async close(graceMs = 5_000): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await websockets.close();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

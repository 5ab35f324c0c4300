import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { listen } from '../listen.js';

/**
 * The operators' listener: `GET /metrics` in Prometheus's text format, nothing else. Apart from
 * the API's, so that the port tenants reach never shows how the whole service is doing.
 */
export function createMetricsServer(registry: Registry, log: Logger) {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' }).end('Method not allowed: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => {
        log.error({ err: error }, 'could not render the metrics');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('Internal error\n');
      },
    );
  });

  return {
    listen: (port: number, host: string): Promise<number> => listen(server, port, host),
    /** A scrape is short and can be asked again: no grace, every socket closes now. */
    async close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

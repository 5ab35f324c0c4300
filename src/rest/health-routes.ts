import type { ServerResponse } from 'node:http';
import type { Database } from '../db/database.js';
import { migrationsApplied } from '../db/migrate.js';

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** /healthz: the process answers. */
export function liveness(res: ServerResponse): void {
  send(res, 200, { status: 'ok' });
}

/** /readyz: the database answers and every migration is applied. */
export async function readiness(db: Database, res: ServerResponse): Promise<void> {
  try {
    const ready = await migrationsApplied(db);
    send(res, ready ? 200 : 503, ready ? { status: 'ready' } : { status: 'not ready', reason: 'migrations pending' });
  } catch {
    send(res, 503, { status: 'not ready', reason: 'database unavailable' });
  }
}

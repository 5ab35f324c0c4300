import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiKeyAuthenticator } from '../auth/api-keys.js';
import { isTerminal, type StatusEvent } from '../status/model.js';
import { toSnakeCaseStatus } from '../status/legacy-shape.js';
import type { StatusCache } from '../status/status-cache.js';
import { canonicalUuid } from '../uuid.js';

export const FILE_STATUS_PATH = '/api/file/status';

/** How long a poller should wait: a quarter of the remaining time, between 1 and 10 seconds. */
function retryAfterSeconds(event: StatusEvent): number {
  if (event.etaSeconds === null) return 1;
  return Math.min(10, Math.max(1, Math.round(event.etaSeconds / 4)));
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const value = tag.trim().replace(/^W\//, '');
    return value === '*' || value === etag;
  });
}

/**
 * Browser pollers on other origins may read every answer, errors included. The key travels in a
 * header, never in a cookie, so a page of another origin cannot poll with a key it does not hold.
 * ETag and Retry-After are not among the headers a browser shows a page unless told to.
 */
const CORS_HEADERS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'etag, retry-after' };

/** What a browser asks before it sends the Authorization (or If-None-Match) header across origins. */
const PREFLIGHT_HEADERS = {
  ...CORS_HEADERS,
  'access-control-allow-methods': 'GET, HEAD',
  'access-control-allow-headers': 'authorization, if-none-match',
  'access-control-max-age': '86400',
};

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...CORS_HEADERS,
    ...headers,
  });
  res.end(payload);
}

const error = (code: string, message: string) => ({ error: { code, message } });

/** GET /api/file/status?file_id=ID: the current status, with ETag and 304 so that idle polling is cheap. */
export function createFileStatusRoute(deps: { statusCache: StatusCache; authenticator: ApiKeyAuthenticator }) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...PREFLIGHT_HEADERS, allow: 'GET, HEAD, OPTIONS' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, error('METHOD_NOT_ALLOWED', 'Use GET.'), { allow: 'GET, HEAD, OPTIONS' });
      return;
    }
    const tenant = await deps.authenticator.authenticate(req.headers.authorization);
    if (!tenant) {
      sendJson(res, 401, error('UNAUTHENTICATED', 'Send a valid API key as "Authorization: Bearer <key>".'), {
        'www-authenticate': 'Bearer',
      });
      return;
    }
    const fileId = url.searchParams.get('file_id');
    if (!fileId) {
      sendJson(res, 400, error('BAD_REQUEST', 'The query parameter file_id is required.'));
      return;
    }
    const id = canonicalUuid(fileId);
    const event = id ? await deps.statusCache.read(tenant.id, id) : null;
    if (!event) {
      sendJson(res, 404, error('NOT_FOUND', 'No file with this id.'));
      return;
    }
    const etag = `"${event.fileId}.${event.sequence}"`;
    const headers: Record<string, string | number> = { etag, 'cache-control': 'private, no-cache' };
    if (!isTerminal(event.status)) headers['retry-after'] = retryAfterSeconds(event);
    if (etagMatches(req.headers['if-none-match'], etag)) {
      res.writeHead(304, { ...CORS_HEADERS, ...headers });
      res.end();
      return;
    }
    sendJson(res, 200, toSnakeCaseStatus(event), headers);
  };
}

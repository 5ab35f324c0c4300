import type { Socket } from 'node:net';
import pg from 'pg';
import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import type { Logger } from '../log.js';

const CHANNEL = 'filestatus_bus';
const RECONNECT_MS = 1_000;
/** Publications waiting for the connection to come back; past this the oldest are dropped (and logged). */
const MAX_WAITING_PUBLICATIONS = 10_000;

/** Dispatched locally, never sent: the listening connection is back; it last answered at `detail.downSince` (database time). */
export const RECONNECTED = 'bus:reconnected';

export interface PostgresEventTargetOptions {
  /**
   * How often the listening connection is asked for the time. A connection that a NAT or firewall
   * dropped silently gives no error for hours (TCP keepalive); a heartbeat unanswered for twice
   * this finds it.
   * @default 5000
   */
  heartbeatMs?: number;
}

/** The server refused the publication itself (NOTIFY takes at most 8000 bytes): sending it again would fail again. */
function isRefusedForGood(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code === '22023';
}

/**
 * An event target whose events travel through PostgreSQL LISTEN/NOTIFY, so that the API process
 * hears the changes that worker processes record. Listening and publishing use separate
 * connections, so that the heartbeat of the listening one never waits behind a NOTIFY (whose
 * commit can wait on any other session's). While the publishing connection is down, publications
 * wait for it, in order. Notifications sent by others while the listening one is down are gone:
 * RECONNECTED tells the listeners since when to read what changed from the tables.
 */
export async function createPostgresEventTarget(
  connectionString: string,
  log: Logger,
  { heartbeatMs = 5_000 }: PostgresEventTargetOptions = {},
): Promise<{ target: TypedEventTarget<CustomEvent>; close(): Promise<void> }> {
  const local = new EventTarget();
  let client: pg.Client | undefined;
  // A NOTIFY unanswered this long gives its connection up (the pool opens another), as a silent
  // one would otherwise hold every publication until TCP gives up.
  const publisher = new pg.Pool({
    connectionString,
    max: 1,
    keepAlive: true,
    query_timeout: 2 * heartbeatMs,
    application_name: 'filestatus-bus-publisher',
  });
  publisher.on('error', (error) => log.warn({ err: error }, 'bus publishing connection lost')); // an idle one; the next query opens another
  /** When the listening connection last answered, by the database's clock. */
  let lastAnswer: Date;
  const waiting: string[] = [];
  let droppedWhileFull = 0;
  let sending: Promise<void> | undefined;
  let closed = false;

  const lose = (lost: pg.Client, error: unknown): void => {
    if (closed || lost !== client) return;
    log.error({ err: error }, 'bus connection lost; reconnecting');
    client = undefined;
    // A half-open socket would wait for TCP to give up: cut it.
    (lost as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
    reconnect(lastAnswer).catch(() => {}); // rejects only on close
  };

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString, keepAlive: true, application_name: 'filestatus-bus' });
    next.on('notification', (message) => {
      try {
        const { type, detail } = JSON.parse(message.payload ?? '') as { type: string; detail: unknown };
        local.dispatchEvent(new CustomEvent(type, { detail }));
      } catch (error) {
        log.error({ err: error }, 'unreadable bus notification');
      }
    });
    next.on('error', (error) => lose(next, error));
    next.on('end', () => lose(next, new Error('the server closed the bus connection')));
    try {
      await next.connect();
      await next.query(`LISTEN ${CHANNEL}`);
      const { rows } = await next.query<{ now: Date }>('SELECT now() AS now');
      if (closed) throw new Error('bus closed');
      lastAnswer = rows[0].now;
    } catch (error) {
      await next.end().catch(() => {});
      throw error;
    }
    client = next;
  };
  const reconnect = async (downSince: Date): Promise<void> => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      if (closed) throw new Error('bus closed');
      try {
        await connect();
        log.info('bus connection restored');
        local.dispatchEvent(new CustomEvent(RECONNECTED, { detail: { downSince } }));
        return;
      } catch (error) {
        log.error({ err: error }, 'bus reconnect failed');
      }
    }
  };
  await connect();

  const heartbeat = setInterval(() => {
    const current = client;
    if (!current) return;
    const timeout = setTimeout(() => lose(current, new Error('the bus connection did not answer its heartbeat')), 2 * heartbeatMs);
    current.query<{ now: Date }>('SELECT now() AS now').then(
      ({ rows }) => {
        clearTimeout(timeout);
        if (current === client) lastAnswer = rows[0].now;
      },
      () => clearTimeout(timeout), // the connection's own error event says what happened
    );
  }, heartbeatMs);
  heartbeat.unref();

  // One NOTIFY at a time, in publish order; one that failed for any other reason than its own
  // content is sent again, when the pool has a connection again.
  const sendWaiting = async (): Promise<void> => {
    while (waiting.length > 0 && !closed) {
      try {
        await publisher.query('SELECT pg_notify($1, $2)', [CHANNEL, waiting[0]]);
        waiting.shift();
      } catch (error) {
        if (isRefusedForGood(error)) {
          waiting.shift();
          log.error({ err: error }, 'the bus refused a publication; dropped it');
          continue;
        }
        log.warn({ err: error }, 'could not publish on the bus; will send it again');
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    }
    if (droppedWhileFull > 0) {
      log.error({ dropped: droppedWhileFull }, 'bus was down too long: dropped the oldest waiting publications');
      droppedWhileFull = 0;
    }
  };
  const startSending = (): void => {
    sending ??= sendWaiting().finally(() => {
      sending = undefined;
      // Published between the loop's last check and here:
      if (waiting.length > 0 && !closed) startSending();
    });
  };

  const target: TypedEventTarget<CustomEvent> = {
    addEventListener: (type, listener, options) => local.addEventListener(type, listener as EventListener, options),
    removeEventListener: (type, listener, options) => local.removeEventListener(type, listener as EventListener, options),
    dispatchEvent(event) {
      if (waiting.length >= MAX_WAITING_PUBLICATIONS) {
        waiting.shift();
        if (droppedWhileFull++ === 0) log.error('bus down too long: dropping the oldest waiting publications');
      }
      waiting.push(JSON.stringify({ type: event.type, detail: event.detail }));
      startSending();
      return true;
    },
  };
  return {
    target,
    async close() {
      clearInterval(heartbeat);
      // Flush what is waiting, unless the database is away for long.
      await Promise.race([sending, new Promise((resolve) => setTimeout(resolve, 2 * RECONNECT_MS).unref())]);
      closed = true;
      const ending = client;
      // end() waits for the server's goodbye, which a silent connection never sends.
      const ended = Promise.all([ending?.end(), publisher.end()]).catch(() => {});
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, RECONNECT_MS).unref())]);
      (ending as unknown as { connection?: { stream: Socket } } | undefined)?.connection?.stream.destroy();
    },
  };
}

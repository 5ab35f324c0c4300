import pg from 'pg';
import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import type { Logger } from '../log.js';

const CHANNEL = 'filestatus_bus';
const RECONNECT_MS = 1_000;
/** Publications waiting for the connection to come back; past this the oldest are dropped (and logged). */
const MAX_WAITING_PUBLICATIONS = 10_000;

/** Dispatched locally, never sent: the listening connection is back after it was down since `detail.downSince`. */
export const RECONNECTED = 'bus:reconnected';

/**
 * An event target whose events travel through PostgreSQL LISTEN/NOTIFY, so that the API process
 * hears the changes that worker processes record. While the connection is down, publications wait
 * for it, in order. Notifications sent by others meanwhile are gone: RECONNECTED tells the
 * listeners to read what changed from the tables.
 */
export async function createPostgresEventTarget(
  connectionString: string,
  log: Logger,
): Promise<{ target: TypedEventTarget<CustomEvent>; close(): Promise<void> }> {
  const local = new EventTarget();
  let client: pg.Client | undefined;
  let connected: Promise<pg.Client>;
  const waiting: string[] = [];
  let sending: Promise<void> | undefined;
  let closed = false;

  const connect = async (): Promise<pg.Client> => {
    const next = new pg.Client({ connectionString, keepAlive: true, application_name: 'filestatus-bus' });
    next.on('notification', (message) => {
      try {
        const { type, detail } = JSON.parse(message.payload ?? '') as { type: string; detail: unknown };
        local.dispatchEvent(new CustomEvent(type, { detail }));
      } catch (error) {
        log.error({ err: error }, 'unreadable bus notification');
      }
    });
    next.on('error', (error) => {
      if (closed || next !== client) return;
      log.error({ err: error }, 'bus connection lost; reconnecting');
      client = undefined;
      connected = reconnect(new Date());
      connected.catch(() => {}); // rejects only on close, and the sender handles that
    });
    await next.connect();
    await next.query(`LISTEN ${CHANNEL}`);
    client = next;
    return next;
  };
  const reconnect = async (downSince: Date): Promise<pg.Client> => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      if (closed) throw new Error('bus closed');
      try {
        const next = await connect();
        log.info('bus connection restored');
        local.dispatchEvent(new CustomEvent(RECONNECTED, { detail: { downSince } }));
        return next;
      } catch (error) {
        log.error({ err: error }, 'bus reconnect failed');
      }
    }
  };
  connected = connect();
  await connected;

  // One NOTIFY at a time, in publish order (pg does not want overlapping queries on one client); a
  // failed one is sent again on the next connection.
  const sendWaiting = async (): Promise<void> => {
    while (waiting.length > 0 && !closed) {
      try {
        const current = await connected;
        await current.query('SELECT pg_notify($1, $2)', [CHANNEL, waiting[0]]);
        waiting.shift();
      } catch (error) {
        if (closed) return;
        log.warn({ err: error }, 'could not publish on the bus; will send again when reconnected');
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
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
        log.error({ waiting: waiting.length }, 'bus down too long: dropped the oldest waiting publication');
      }
      waiting.push(JSON.stringify({ type: event.type, detail: event.detail }));
      startSending();
      return true;
    },
  };
  return {
    target,
    async close() {
      // Flush what is waiting, unless the database is away for long.
      await Promise.race([sending, new Promise((resolve) => setTimeout(resolve, 2 * RECONNECT_MS).unref())]);
      closed = true;
      await client?.end().catch(() => {});
    },
  };
}

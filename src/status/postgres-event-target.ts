import pg from 'pg';
import type { TypedEventTarget } from '@graphql-yoga/typed-event-target';
import type { Logger } from '../log.js';

const CHANNEL = 'filestatus_bus';
const RECONNECT_MS = 1_000;

/**
 * An event target whose events travel through PostgreSQL LISTEN/NOTIFY, so that the API process
 * hears the changes that worker processes record. A notification lost while the listening
 * connection is down is not lost to subscribers: they fill sequence gaps from the event table.
 */
export async function createPostgresEventTarget(
  connectionString: string,
  log: Logger,
): Promise<{ target: TypedEventTarget<CustomEvent>; close(): Promise<void> }> {
  const local = new EventTarget();
  let client: pg.Client;
  // One NOTIFY at a time, in publish order: pg does not want overlapping queries on one client.
  let sending: Promise<unknown> = Promise.resolve();
  let closed = false;

  const connect = async (): Promise<void> => {
    client = new pg.Client({ connectionString });
    client.on('notification', (message) => {
      try {
        const { type, detail } = JSON.parse(message.payload ?? '') as { type: string; detail: unknown };
        local.dispatchEvent(new CustomEvent(type, { detail }));
      } catch (error) {
        log.error({ err: error }, 'unreadable bus notification');
      }
    });
    client.on('error', (error) => {
      if (closed) return;
      log.error({ err: error }, 'bus connection lost; reconnecting');
      client.removeAllListeners('error');
      client.on('error', () => {});
      setTimeout(() => void reconnect(), RECONNECT_MS);
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
  };
  const reconnect = async (): Promise<void> => {
    while (!closed) {
      try {
        await connect();
        return;
      } catch (error) {
        log.error({ err: error }, 'bus reconnect failed');
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    }
  };
  await connect();

  const target: TypedEventTarget<CustomEvent> = {
    addEventListener: (type, listener, options) => local.addEventListener(type, listener as EventListener, options),
    removeEventListener: (type, listener, options) => local.removeEventListener(type, listener as EventListener, options),
    dispatchEvent(event) {
      const payload = JSON.stringify({ type: event.type, detail: event.detail });
      sending = sending
        .then(() => client.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]))
        .catch((error: unknown) => log.error({ err: error, topic: event.type }, 'could not publish on the bus'));
      return true;
    },
  };
  return {
    target,
    async close() {
      closed = true;
      await sending;
      await client.end().catch(() => {});
    },
  };
}

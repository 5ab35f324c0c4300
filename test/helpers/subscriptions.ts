import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export const STATUS_SUBSCRIPTION = `subscription($fileId: ID) {
  fileStatusChanged(fileId: $fileId) { fileId status stage progress sequence attempt updatedAt }
}`;

export function wsClient(wsUrl: string, authorization: string | undefined): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: authorization ? { authorization } : {},
  });
}

export interface Collected {
  events: any[];
  errors: unknown[];
  /** Resolves when the server completes the stream, or rejects on an error. */
  done: Promise<void>;
  stop(): void;
}

/** Subscribes and collects every event the server sends. */
export function collect(client: Client, variables: Record<string, unknown>): Collected {
  const events: any[] = [];
  const errors: unknown[] = [];
  let stop = () => {};
  const done = new Promise<void>((resolve, reject) => {
    stop = client.subscribe(
      { query: STATUS_SUBSCRIPTION, variables },
      {
        next: (message) => {
          if (message.errors) errors.push(...message.errors);
          if (message.data) events.push((message.data as any).fileStatusChanged);
        },
        error: (error) => {
          errors.push(error);
          reject(error);
        },
        complete: resolve,
      },
    );
  });
  done.catch(() => {});
  return { events, errors, done, stop: () => stop() };
}

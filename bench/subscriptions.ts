import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { mapWithConcurrency, range, withTimeout } from './async.js';
import { textFile } from './multipart.js';
import { printComparison, type ResultRow } from './report.js';
import { startBaseline, startService, type ChildServer } from './server.js';
import { uploadFile } from './service-client.js';
import { formatNumber, ratio, summarizeLatencies, type LatencySummary } from './stats.js';

export interface SubscriptionsOptions {
  subscribers: number;
  /** Uploads in flight at once while the subscribers are being set up. */
  uploadConcurrency: number;
}

const SUBSCRIPTION = 'subscription($id: ID){ fileStatusChanged(fileId: $id){ fileId status stage progress sequence updatedAt } }';
const P99_LIMIT_MS = 25;
const CONNECT_TIMEOUT_MS = 30_000;
const CONNECTS_IN_FLIGHT = 50;
const EVENTS_TIMEOUT_MS = 300_000;
const BROADCAST_INTERVAL_MS = 100;
/** Filler that brings a baseline message to about the size of a graphql-ws `next` of ours (~250 bytes). */
const BROADCAST_PADDING = 180;

interface FileStatusEvent {
  fileId: string;
  status: string;
  sequence: number;
  updatedAt: string;
}

interface FollowedFile {
  /** Whether the file was still processing when its subscription's snapshot was read. */
  liveAtSubscribe: boolean;
  /** Receipt time minus the event's updatedAt, for each event after the snapshot. */
  latenciesMs: number[];
}

function openGraphqlClient(url: string, apiKey: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client: Client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${apiKey}` },
      onNonLazyError: reject,
      on: { connected: () => resolve(client) },
    });
  });
}

/** Follows one file to its end; only events after the snapshot count, since they happened after subscribing. */
function followFile(client: Client, fileId: string): Promise<FollowedFile> {
  return new Promise((resolve, reject) => {
    let snapshot: FileStatusEvent | undefined;
    const latenciesMs: number[] = [];
    client.subscribe<{ fileStatusChanged: FileStatusEvent }>(
      { query: SUBSCRIPTION, variables: { id: fileId } },
      {
        next: ({ data, errors }) => {
          const receivedAt = Date.now();
          if (errors || !data) return reject(new Error(`subscription to ${fileId} failed: ${JSON.stringify(errors)}`));
          const event = data.fileStatusChanged;
          if (!snapshot) snapshot = event;
          else if (event.sequence > snapshot.sequence) latenciesMs.push(receivedAt - Date.parse(event.updatedAt));
        },
        error: (error) => reject(error instanceof Error ? error : new Error(`subscription to ${fileId} failed: ${JSON.stringify(error)}`)),
        complete: () => resolve({ liveAtSubscribe: snapshot?.status === 'PROCESSING', latenciesMs }),
      },
    );
  });
}

interface OursResult {
  latency: LatencySummary;
  liveSubscriptions: number;
  /** The most subscriptions open at one moment: each ends with its file's processing. */
  peakOpenSubscriptions: number;
}

/**
 * One graphql-ws socket per file. Each file is subscribed to as soon as its upload has answered,
 * while the worker is still busy with earlier files, so most of its changes happen after subscribing.
 */
async function measureService({ subscribers, uploadConcurrency }: SubscriptionsOptions): Promise<OursResult> {
  const service = await startService();
  const clients: Client[] = [];
  try {
    const url = `ws://127.0.0.1:${service.port}/graphql`;
    await withTimeout(
      mapWithConcurrency(range(subscribers), CONNECTS_IN_FLIGHT, async () => clients.push(await openGraphqlClient(url, service.apiKey))),
      CONNECT_TIMEOUT_MS,
      `opening ${subscribers} graphql-ws connections`,
    );
    console.log(`  ours: ${clients.length} graphql-ws sockets open; uploading ${subscribers} files`);
    const followed: Promise<FollowedFile>[] = [];
    let open = 0;
    let peakOpenSubscriptions = 0;
    const uploads = mapWithConcurrency(range(subscribers), uploadConcurrency, async (index) => {
      const { id } = await uploadFile(service, textFile(`file-${index}.txt`, `File number ${index}.\nIts words are counted.\n`));
      peakOpenSubscriptions = Math.max(peakOpenSubscriptions, ++open);
      const file = followFile(clients[index], id).finally(() => open--);
      // Awaited with the others below; a failure before then must not crash the bench as unhandled.
      file.catch(() => {});
      followed.push(file);
    });
    const files = await withTimeout(
      uploads.then(() => Promise.all(followed)),
      EVENTS_TIMEOUT_MS,
      `${subscribers} uploads and their processing`,
    );
    return {
      latency: summarizeLatencies(files.flatMap((file) => file.latenciesMs)),
      liveSubscriptions: files.filter((file) => file.liveAtSubscribe).length,
      peakOpenSubscriptions,
    };
  } finally {
    for (const client of clients) await client.dispose();
    await service.stop();
  }
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The same number of sockets and about as many messages, through a bare `ws` server that stamps each at sending. */
async function measureBaseline(subscribers: number, messages: number): Promise<LatencySummary> {
  const server: ChildServer = await startBaseline('ws-broadcast-server.ts');
  const sockets: WebSocket[] = [];
  try {
    const url = `ws://127.0.0.1:${server.port}/`;
    await withTimeout(
      mapWithConcurrency(range(subscribers), CONNECTS_IN_FLIGHT, async () => sockets.push(await openSocket(url))),
      CONNECT_TIMEOUT_MS,
      `opening ${subscribers} ws connections`,
    );
    const rounds = Math.max(1, Math.round(messages / subscribers));
    const latenciesMs: number[] = [];
    const allReceived = new Promise<void>((resolve, reject) => {
      for (const socket of sockets) {
        socket.on('message', (data) => {
          const receivedAt = Date.now();
          latenciesMs.push(receivedAt - Date.parse((JSON.parse(String(data)) as { sentAt: string }).sentAt));
          if (latenciesMs.length === rounds * subscribers) resolve();
        });
        socket.once('close', () => reject(new Error('a baseline socket closed early')));
      }
    });
    console.log(`  baseline: ${sockets.length} ws sockets open; ${rounds} rounds of one message to each, ${BROADCAST_INTERVAL_MS} ms apart`);
    sockets[0].send(JSON.stringify({ rounds, intervalMs: BROADCAST_INTERVAL_MS, padding: BROADCAST_PADDING }));
    await withTimeout(allReceived, EVENTS_TIMEOUT_MS, 'the baseline broadcast');
    return summarizeLatencies(latenciesMs);
  } finally {
    for (const socket of sockets) socket.terminate();
    await server.stop();
  }
}

export async function benchSubscriptions(options: SubscriptionsOptions): Promise<ResultRow[]> {
  console.log(`\n## ${options.subscribers} WebSocket subscribers on ${options.subscribers} files`);
  const ours = await measureService(options);
  console.log(
    `  ours: ${ours.latency.count} events after the snapshot; ${ours.liveSubscriptions} files still processing when subscribed; ` +
      `at most ${ours.peakOpenSubscriptions} subscriptions open at once`,
  );
  if (ours.latency.count === 0) throw new Error('no subscriber saw a change after its snapshot: the files were processed before subscribing');
  const baseline = await measureBaseline(options.subscribers, ours.latency.count);

  const benchmark = `${options.subscribers} WebSocket subscribers`;
  const row = (metric: string, key: 'p50' | 'p99' | 'max', goal = '', met: boolean | null = null): ResultRow => {
    const r = ratio(ours.latency[key], baseline[key]);
    printComparison(`${metric}, ms`, formatNumber(ours.latency[key]), formatNumber(baseline[key]), r);
    return { benchmark, metric, unit: 'ms', ours: ours.latency[key], baseline: baseline[key], ratio: r, goal, met };
  };
  const rows = [
    row('latency p50', 'p50'),
    row('latency p99', 'p99', `≤ ${P99_LIMIT_MS} ms`, ours.latency.p99 <= P99_LIMIT_MS),
    row('latency max', 'max'),
  ];
  printComparison('events received', formatNumber(ours.latency.count), formatNumber(baseline.count), null);
  rows.push(
    { benchmark, metric: 'events received', unit: '', ours: ours.latency.count, baseline: baseline.count, ratio: null, goal: '', met: null },
    { benchmark, metric: 'peak open subscriptions', unit: '', ours: ours.peakOpenSubscriptions, baseline: options.subscribers, ratio: null, goal: '', met: null },
  );
  return rows;
}

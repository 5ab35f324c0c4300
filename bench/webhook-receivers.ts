// The webhook bench's receivers, in a process of their own, as a service's receivers are: on the
// bench's machine, in the service's process, they took a share of the one thread that the service
// runs on. Listens on PORT for the bench, which takes the receipts so far with GET /receipts.
//   RECEIVERS  how many receivers, each on a port of its own
//   CLOCK      where a request says when it was sent: `timestamp` (the payload's, ISO 8601),
//              `sentAt` (the bare sender's, ms) or `none` (no latency to note)
//   HANG       `true`: never answer; the sender's timeout must end each request
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenAndAnnounce } from './baselines/announce.js';

export interface Receipt {
  latencyMs: number;
  at: number;
}

const count = Number(process.env.RECEIVERS ?? 1);
const clock = process.env.CLOCK ?? 'none';
const hang = process.env.HANG === 'true';

function sentAt(body: string): number {
  if (clock === 'timestamp') return Date.parse(JSON.parse(body).timestamp);
  if (clock === 'sentAt') return JSON.parse(body).sentAt;
  return 0;
}

let receipts: Receipt[] = [];

function startReceiver(): Promise<string> {
  const server = http.createServer((req, res) => {
    if (hang) return;
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const at = Date.now();
      receipts.push({ latencyMs: at - sentAt(body), at });
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`)),
  );
}

const urls = await Promise.all(Array.from({ length: count }, startReceiver));
const control = http.createServer((req, res) => {
  const taken = receipts;
  receipts = [];
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(taken));
});
listenAndAnnounce(control, { urls });

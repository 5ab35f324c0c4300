// The subscriptions baseline: a bare `ws` server that, when asked, sends timestamped messages to every socket.
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { listenAndAnnounce } from './announce.js';

/** Sent by the bench on any one socket: `rounds` times, every socket gets one message, `intervalMs` apart. */
interface BroadcastRequest {
  rounds: number;
  intervalMs: number;
  /** Bytes of filler, so that a message weighs about what a graphql-ws `next` of ours does. */
  padding: number;
}

const server = http.createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server });

function broadcast({ rounds, intervalMs, padding }: BroadcastRequest): void {
  const filler = 'x'.repeat(padding);
  let round = 0;
  const sendRound = () => {
    for (const socket of wss.clients as Set<WebSocket>) {
      socket.send(JSON.stringify({ sentAt: new Date().toISOString(), round, filler }));
    }
    if (++round < rounds) setTimeout(sendRound, intervalMs);
  };
  sendRound();
}

wss.on('connection', (socket) => {
  socket.on('message', (data) => broadcast(JSON.parse(String(data)) as BroadcastRequest));
});
listenAndAnnounce(server);

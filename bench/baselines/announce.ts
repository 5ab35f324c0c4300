import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Listens on PORT/HOST and prints the line the bench waits for, with `details` for the bench. The
 * process ends on SIGTERM, and when its stdin closes, so that it cannot outlive a bench that was killed.
 */
export function listenAndAnnounce(server: Server, details: Record<string, unknown> = {}): void {
  server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
    console.log(JSON.stringify({ ...details, msg: 'listening', port: (server.address() as AddressInfo).port }));
  });
  const exit = () => process.exit(0);
  process.on('SIGTERM', exit);
  process.stdin.on('end', exit).on('close', exit).resume();
}

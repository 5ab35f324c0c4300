import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Listens, and resolves with the port bound (PORT=0 picks one); a port in use or an address
 * that is not this machine's rejects instead of being thrown later as an unhandled error.
 */
export async function listen(server: http.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

import { Resolver } from 'node:dns/promises';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type ResolveHost = (host: string) => Promise<ResolvedAddress[]>;

export interface DnsResolverOptions {
  /** How long a whole lookup may take; each of the resolver's two tries gets a third of it. */
  timeoutMs: number;
  /** `host[:port]` of the DNS servers to ask. @default those of /etc/resolv.conf */
  servers?: string[];
}

const LOCALHOST = /^(.+\.)?localhost\.?$/i;

/**
 * Resolves webhook hosts with Node's asynchronous DNS client (c-ares) rather than `dns.lookup`.
 * `dns.lookup` blocks one of libuv's four shared threads until the system resolver gives up, and
 * those threads also do the service's file I/O: a tenant whose webhook host's DNS never answers
 * could otherwise stall every upload. A c-ares query holds no thread, and ends at its own timeout.
 *
 * c-ares reads no hosts file, so `localhost` (and its subdomains) is answered here with loopback,
 * as RFC 6761 has every resolver do: 127.0.0.1 alone, as the system resolver answers where the
 * hosts file maps it so, and so that `WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8` opens it.
 */
export function createDnsResolver({ timeoutMs, servers }: DnsResolverOptions): ResolveHost {
  const resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs / 3)), tries: 2 });
  if (servers) resolver.setServers(servers);
  return async (host) => {
    if (LOCALHOST.test(host)) return [{ address: '127.0.0.1', family: 4 }];
    const [ipv4, ipv6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    if (ipv4.status === 'rejected' && ipv6.status === 'rejected') throw ipv4.reason;
    return [
      ...(ipv4.status === 'fulfilled' ? ipv4.value.map((address) => ({ address, family: 4 as const })) : []),
      ...(ipv6.status === 'fulfilled' ? ipv6.value.map((address) => ({ address, family: 6 as const })) : []),
    ];
  };
}

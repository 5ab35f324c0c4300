import ipaddr from 'ipaddr.js';
import type { Logger } from '../log.js';
import { createDnsResolver, type ResolveHost, type ResolvedAddress } from './dns-resolve.js';

/**
 * Why a webhook URL may not be called. The message is safe to show its owner: it never names an
 * address the host resolved to, which could map the internal network; `detail` does, for the log.
 */
export class UnsafeWebhookUrlError extends Error {
  constructor(
    message: string,
    readonly detail?: { host: string; address: string; refusal: string },
  ) {
    super(message);
  }
}

export interface UrlGuardOptions {
  allowHttp: boolean;
  allowedCidrs: string[];
  /** How long a host may take to resolve before the URL is refused. @default 5000 */
  dnsTimeoutMs?: number;
  /** The resolver. @default `createDnsResolver` with the system's DNS servers */
  resolveHost?: ResolveHost;
}

/** A URL that passed the guard, with the address to connect to: never looked up a second time. */
export interface CheckedUrl {
  url: URL;
  address: string;
  family: 4 | 6;
}

const GLOBAL_IPV6 = ipaddr.parseCIDR('2000::/3');

/**
 * Why an address is not a globally routable unicast one, or null when it is. IPv6 forms that
 * carry an IPv4 address (mapped, 6to4, NAT64, Teredo) are refused whatever they carry.
 */
function refusal(address: ipaddr.IPv4 | ipaddr.IPv6): string | null {
  const range = address.range();
  if (range !== 'unicast') return `${range} address`;
  if (address.kind() === 'ipv6' && !address.match(GLOBAL_IPV6)) return 'IPv6 address outside global unicast';
  return null;
}

/**
 * Checks webhook URLs, at upload and again before every attempt. A refused address is logged, as
 * the owner is not told it.
 */
export function createUrlGuard(options: UrlGuardOptions, log: Logger) {
  const dnsTimeoutMs = options.dnsTimeoutMs ?? 5_000;
  const resolveHost = options.resolveHost ?? createDnsResolver({ timeoutMs: dnsTimeoutMs });
  const allowed = options.allowedCidrs.map((cidr) => ipaddr.parseCIDR(cidr));
  const isOpened = (address: ipaddr.IPv4 | ipaddr.IPv6) =>
    allowed.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));

  function checkAddress(host: string, raw: string): void {
    const parsed = ipaddr.parse(raw);
    if (isOpened(parsed)) return;
    const reason = refusal(parsed);
    if (!reason) return;
    const detail = { host, address: raw, refusal: reason };
    log.warn(detail, 'refused a webhook URL');
    throw new UnsafeWebhookUrlError('the webhook host resolves to a private or reserved address; webhooks go only to public ones', detail);
  }

  /** The checks that need no network: scheme, credentials, shape. */
  function checkSyntax(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new UnsafeWebhookUrlError('the webhook URL is not an absolute URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowHttp)) {
      throw new UnsafeWebhookUrlError(
        url.protocol === 'http:' ? 'the webhook URL must use https' : `the webhook URL must use https, not ${url.protocol.slice(0, -1)}`,
      );
    }
    if (url.username || url.password) throw new UnsafeWebhookUrlError('the webhook URL must not contain credentials');
    if (!url.hostname) throw new UnsafeWebhookUrlError('the webhook URL has no host');
    // Port 0 cannot be connected to: the request would go to the scheme's port instead.
    if (url.port === '0') throw new UnsafeWebhookUrlError('the webhook URL must name a port from 1 to 65535');
    return url;
  }

  /** Past the timeout the resolver's answer, if it ever comes, is ignored. */
  async function resolve(host: string, timeoutMs: number): Promise<ResolvedAddress[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      const timedOut = new UnsafeWebhookUrlError(`the webhook host ${host} could not be resolved: DNS lookup timed out`);
      timer = setTimeout(() => reject(timedOut), timeoutMs);
    });
    try {
      return await Promise.race([
        resolveHost(host).catch(() => {
          throw new UnsafeWebhookUrlError(`the webhook host ${host} could not be resolved`);
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves the host and checks every address it has; the first one is where to connect.
   * `withinMs` shortens the DNS timeout, for a caller with a deadline of its own.
   */
  async function check(raw: string, withinMs = dnsTimeoutMs): Promise<CheckedUrl> {
    const url = checkSyntax(raw);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const addresses = ipaddr.isValid(host)
      ? [{ address: host, family: ipaddr.parse(host).kind() === 'ipv4' ? (4 as const) : (6 as const) }]
      : await resolve(host, Math.min(dnsTimeoutMs, withinMs));
    if (addresses.length === 0) throw new UnsafeWebhookUrlError(`the webhook host ${host} has no address`);
    for (const { address } of addresses) checkAddress(host, address);
    return { url, ...addresses[0] };
  }

  return { check, checkSyntax };
}

export type UrlGuard = ReturnType<typeof createUrlGuard>;

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { UnsafeWebhookUrlError, createUrlGuard } from '../../src/webhooks/url-guard.js';

// Only refused addresses and loopback appear here: a test never sends anything off this machine.
const silent = createLogger('silent');
const strict = createUrlGuard({ allowHttp: false, allowedCidrs: [] }, silent);
const PRIVATE = 'the webhook host resolves to a private or reserved address; webhooks go only to public ones';

async function refusalOf(url: string, guard = strict): Promise<UnsafeWebhookUrlError> {
  const error = await guard.check(url).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(UnsafeWebhookUrlError);
  return error as UnsafeWebhookUrlError;
}

describe('url guard', () => {
  it.each([
    ['plain http', 'http://127.0.0.1/hook', /must use https/],
    ['another scheme', 'ftp://127.0.0.1/hook', /must use https, not ftp/],
    ['credentials', 'https://user:pass@127.0.0.1/hook', /credentials/],
    ['not a URL', 'hook', /not an absolute URL/],
    ['port 0, which was sent to port 443', 'https://127.0.0.1:0/hook', /port from 1 to 65535/],
    ['a name that does not resolve', 'https://no-such-host.invalid/hook', /no-such-host.invalid could not be resolved$/],
  ])('refuses %s', async (_name, url, reason) => {
    expect((await refusalOf(url)).message).toMatch(reason);
  });

  it.each([
    ['loopback', 'https://127.0.0.1/hook', /loopback/],
    ['loopback by name', 'https://localhost/hook', /loopback/],
    ['loopback in hex', 'https://0x7f000001/hook', /loopback/],
    ['loopback in short form', 'https://127.1/hook', /loopback/],
    ['private 10/8', 'https://10.0.0.8/hook', /private/],
    ['private 172.16/12', 'https://172.16.5.4/hook', /private/],
    ['private 192.168/16', 'https://192.168.1.1/hook', /private/],
    ['cloud metadata (link-local)', 'https://169.254.169.254/latest/meta-data', /linkLocal/],
    ['CGNAT', 'https://100.64.0.1/hook', /carrierGradeNat/],
    ['multicast', 'https://224.0.0.1/hook', /multicast/],
    ['unspecified', 'https://0.0.0.0/hook', /unspecified/],
    ['broadcast', 'https://255.255.255.255/hook', /broadcast/],
    ['documentation', 'https://192.0.2.10/hook', /reserved/],
    ['benchmarking', 'https://198.18.0.1/hook', /reserved/],
    ['reserved 240/4', 'https://240.0.0.1/hook', /reserved/],
    ['IPv6 loopback', 'https://[::1]/hook', /loopback/],
    ['IPv6 unspecified', 'https://[::]/hook', /unspecified/],
    ['IPv6 link-local', 'https://[fe80::1]/hook', /linkLocal/],
    ['IPv6 unique local', 'https://[fd00::1]/hook', /uniqueLocal/],
    ['IPv6 multicast', 'https://[ff02::1]/hook', /multicast/],
    ['IPv6 documentation', 'https://[2001:db8::1]/hook', /reserved/],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/hook', /ipv4Mapped/],
    ['IPv4-mapped metadata', 'https://[::ffff:169.254.169.254]/hook', /ipv4Mapped/],
    ['NAT64 of a private address', 'https://[64:ff9b::10.0.0.1]/hook', /rfc6052/],
    ['6to4 of loopback', 'https://[2002:7f00:1::1]/hook', /6to4/],
    ['Teredo', 'https://[2001::1]/hook', /teredo|reserved/],
    ['IPv4-compatible loopback', 'https://[::127.0.0.1]/hook', /outside global unicast|reserved/],
  ])('refuses %s, telling the owner no address', async (_name, url, range) => {
    const error = await refusalOf(url);
    expect(error.message).toBe(PRIVATE);
    expect(error.detail?.refusal).toMatch(range);
  });

  it('logs the host and the address it refused', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    await refusalOf('https://localhost/hook', createUrlGuard({ allowHttp: false, allowedCidrs: [] }, log));
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ msg: 'refused a webhook URL', host: 'localhost', address: '127.0.0.1' }),
    ]);
  });

  it('refuses a host whose lookup does not answer in time', async () => {
    const hanging = createUrlGuard({ allowHttp: false, allowedCidrs: [], dnsTimeoutMs: 100, resolveHost: () => new Promise(() => {}) }, silent);
    const started = Date.now();
    expect((await refusalOf('https://slow.example/hook', hanging)).message).toBe(
      'the webhook host slow.example could not be resolved: DNS lookup timed out',
    );
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('opens WEBHOOK_ALLOWED_CIDRS, and http only with WEBHOOK_ALLOW_HTTP', async () => {
    const opened = createUrlGuard({ allowHttp: true, allowedCidrs: ['127.0.0.0/8'] }, silent);
    await expect(opened.check('http://127.0.0.1:8080/hook')).resolves.toMatchObject({ address: '127.0.0.1', family: 4 });
    expect((await refusalOf('http://10.0.0.1/hook', opened)).detail?.refusal).toMatch(/private/);
    expect((await refusalOf('http://[::1]/hook', opened)).detail?.refusal).toMatch(/loopback/);
  });
});

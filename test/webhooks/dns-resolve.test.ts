import dgram from 'node:dgram';
import { pbkdf2 } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import ipaddr from 'ipaddr.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createDnsResolver } from '../../src/webhooks/dns-resolve.js';
import { UnsafeWebhookUrlError, createUrlGuard } from '../../src/webhooks/url-guard.js';

const A = 1;
const AAAA = 28;

interface Zone {
  [name: string]: { a?: string[]; aaaa?: string[] } | 'silent';
}

/**
 * A DNS server on loopback, UDP, that answers from `zone`: NXDOMAIN for names it does not hold,
 * no answer at all for 'silent' ones. Just enough of RFC 1035 for one question per query.
 */
async function startDnsServer(zone: Zone) {
  const socket = dgram.createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (query, peer) => {
    const labels: string[] = [];
    let offset = 12;
    while (query[offset] !== 0) {
      labels.push(query.subarray(offset + 1, offset + 1 + query[offset]).toString('ascii'));
      offset += query[offset] + 1;
    }
    const questionEnd = offset + 5;
    const name = labels.join('.').toLowerCase();
    const type = query.readUInt16BE(offset + 1);
    asked.push(`${name} ${type === A ? 'A' : type === AAAA ? 'AAAA' : type}`);
    const entry = zone[name];
    if (entry === 'silent') return;
    const addresses = entry ? ((type === A ? entry.a : type === AAAA ? entry.aaaa : []) ?? []) : [];
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(entry ? 0x8180 : 0x8183, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const answers = addresses.map((address) => {
      const data = Buffer.from(ipaddr.parse(address).toByteArray());
      const record = Buffer.alloc(12);
      record.writeUInt16BE(0xc00c, 0);
      record.writeUInt16BE(type, 2);
      record.writeUInt16BE(1, 4);
      record.writeUInt32BE(60, 6);
      record.writeUInt16BE(data.length, 10);
      return Buffer.concat([record, data]);
    });
    socket.send(Buffer.concat([header, query.subarray(12, questionEnd), ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { server: `127.0.0.1:${socket.address().port}`, asked, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

describe('webhook host resolution', () => {
  let dns: Awaited<ReturnType<typeof startDnsServer>>;

  beforeAll(async () => {
    dns = await startDnsServer({
      'hooks.example': { a: ['93.184.216.34'], aaaa: ['2606:2800:220:1::1'] },
      'v4only.example': { a: ['93.184.216.35'] },
      'rebind.example': { a: ['93.184.216.34', '10.0.0.1'] },
      'slow.example': 'silent',
    });
  });
  afterAll(() => dns.close());

  const guardOn = (dnsTimeoutMs = 2_000) =>
    createUrlGuard(
      { allowHttp: false, allowedCidrs: [], dnsTimeoutMs, resolveHost: createDnsResolver({ timeoutMs: dnsTimeoutMs, servers: [dns.server] }) },
      createLogger('silent'),
    );

  it('asks for both families and connects to the first IPv4 address', async () => {
    const resolveHost = createDnsResolver({ timeoutMs: 2_000, servers: [dns.server] });
    await expect(resolveHost('hooks.example')).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
    await expect(resolveHost('v4only.example')).resolves.toEqual([{ address: '93.184.216.35', family: 4 }]);
    await expect(guardOn().check('https://hooks.example/hook')).resolves.toMatchObject({ address: '93.184.216.34', family: 4 });
  });

  it('refuses a host when any of its addresses is private, whichever comes first', async () => {
    const error = await guardOn().check('https://rebind.example/hook').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnsafeWebhookUrlError);
    expect((error as UnsafeWebhookUrlError).detail).toEqual({ host: 'rebind.example', address: '10.0.0.1', refusal: 'private address' });
  });

  it('refuses a name that does not exist', async () => {
    await expect(guardOn().check('https://nowhere.example/hook')).rejects.toThrow('the webhook host nowhere.example could not be resolved');
  });

  it('answers localhost with 127.0.0.1 without asking the server, which WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8 opens', async () => {
    const before = dns.asked.length;
    const resolveHost = createDnsResolver({ timeoutMs: 2_000, servers: [dns.server] });
    await expect(resolveHost('localhost')).resolves.toEqual([{ address: '127.0.0.1', family: 4 }]);
    await expect(resolveHost('api.localhost')).resolves.toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect(dns.asked.slice(before)).toEqual([]);
    const opened = createUrlGuard({ allowHttp: true, allowedCidrs: ['127.0.0.0/8'] }, createLogger('silent'));
    await expect(opened.check('http://localhost:8080/hook')).resolves.toMatchObject({ address: '127.0.0.1', family: 4 });
  });

  it('holds no libuv thread while a host never answers: file reads and hashing go on', async () => {
    const guard = guardOn(1_500);
    // More lookups than libuv has threads (4): with dns.lookup they would take every one of them.
    const lookups = Array.from({ length: 16 }, () => guard.check('https://slow.example/hook').catch((caught: unknown) => caught));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await Promise.all([
      ...Array.from({ length: 8 }, () => readFile(new URL(import.meta.url))),
      ...Array.from({ length: 4 }, () => promisify(pbkdf2)('secret', 'salt', 1_000, 32, 'sha256')),
    ]);
    expect(Date.now() - started).toBeLessThan(500);
    for (const outcome of await Promise.all(lookups)) {
      expect(outcome).toEqual(new UnsafeWebhookUrlError('the webhook host slow.example could not be resolved: DNS lookup timed out'));
    }
    expect(dns.asked.filter((question) => question.startsWith('slow.example')).length).toBeGreaterThanOrEqual(16);
  });
});

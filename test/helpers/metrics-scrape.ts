import net from 'node:net';

/**
 * A port free on loopback right now, for METRICS_PORT (which, unlike PORT, has no 0). Another
 * process could take it before the service does; on a test machine that is rare enough.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Scrape {
  text: string;
  /** The sample's value; undefined when the scrape has no such sample. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Reads Prometheus's text format: one sample a line, comments and blank lines skipped. */
export function parseMetrics(text: string): Scrape {
  const samples = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = SAMPLE.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(LABEL)].map(([, key, value]) => [key, value]));
      return { name: match[1], labels, value: Number(match[3]) };
    });
  return {
    text,
    value(name, labels = {}) {
      const wanted = Object.entries(labels);
      const sample = samples.find(
        (candidate) =>
          candidate.name === name &&
          Object.keys(candidate.labels).length === wanted.length &&
          wanted.every(([key, value]) => candidate.labels[key] === value),
      );
      return sample?.value;
    },
  };
}

/** GET /metrics on the metrics port, parsed. */
export async function scrape(port: number): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return parseMetrics(await response.text());
}

/** Scrapes until `predicate` holds for the scrape, which it returns. */
export async function scrapeUntil(port: number, predicate: (scrape: Scrape) => boolean, timeoutMs = 15_000): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await scrape(port);
    if (predicate(current)) return current;
    if (Date.now() > deadline) throw new Error(`metrics: condition not met; last scrape:\n${current.text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

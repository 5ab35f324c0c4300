import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { sendMultipart, type HttpResponse, type StreamedUpload } from './http-client.js';
import { graphqlUploadBody, repeatBlock, type FileToSend } from './multipart.js';
import { printComparison, type ResultRow } from './report.js';
import { meterProcess, type ProcessUsage } from './process-meter.js';
import { makeTempDir, removeTempDir, startBaseline, startService, type ChildServer, type ServiceUnderTest } from './server.js';
import { graphql, uploadedFile, uploadHeaders, waitUntilProcessed } from './service-client.js';
import { MiB, formatNumber, median, ratio } from './stats.js';

export interface UploadBenchOptions {
  bytes: number;
  rounds: number;
}

const RSS_GROWTH_LIMIT = 64 * MiB;
const MIN_THROUGHPUT_RATIO = 0.8;

interface Measurement {
  megabytesPerSecond: number;
  server: ProcessUsage;
}

/** Sends the body to a server while following its memory; `check` vets the answer after the clock stopped. */
async function measureUpload(
  server: ChildServer,
  url: string,
  headers: Record<string, string>,
  file: FileToSend,
  check: (response: HttpResponse) => Promise<void>,
): Promise<Measurement> {
  const body = graphqlUploadBody(file);
  // A gigabyte at a crawling 5 MB/s still finishes; a stalled upload does not hold the bench.
  const timeoutMs = Math.ceil(Math.max(120_000, (body.contentLength / 5e6) * 1000));
  // The last upload's gigabyte must not be written back to disk, by kernel threads on the same two
  // cores, while this one is measured: that made the figures swing by half.
  execFileSync('sync');
  const meter = meterProcess(server.pid);
  let usage: ProcessUsage;
  let upload: StreamedUpload;
  try {
    upload = await sendMultipart(url, headers, body, timeoutMs);
  } finally {
    usage = meter.stop();
  }
  await check(upload.response);
  return { megabytesPerSecond: body.contentLength / 1e6 / (upload.elapsedMs / 1000), server: usage };
}

function uploadToBaseline(baseline: ChildServer, file: FileToSend): Promise<Measurement> {
  return measureUpload(baseline, `http://127.0.0.1:${baseline.port}/`, {}, file, async ({ status, body }) => {
    if (status !== 200) throw new Error(`the baseline answered ${status}: ${body.slice(0, 300)}`);
    const stored = JSON.parse(body) as { path: string; size: number };
    fs.rmSync(stored.path, { force: true });
    if (stored.size < file.size) throw new Error(`the baseline stored ${stored.size} bytes of ${file.size}`);
  });
}

function uploadToService(service: ServiceUnderTest, file: FileToSend): Promise<Measurement> {
  const url = `http://127.0.0.1:${service.port}/graphql`;
  return measureUpload(service, url, uploadHeaders(service), file, async (response) => {
    const { id } = uploadedFile(response);
    const { file: stored } = (await graphql(service, 'query($id: ID!){ file(id: $id){ size } }', { id })) as { file: { size: number } };
    if (stored.size !== file.size) throw new Error(`the service stored ${stored.size} bytes of ${file.size}`);
    // Background processing of this upload must not overlap the next measurement.
    await waitUntilProcessed(service, id, 120_000);
  });
}

function describe(measurement: Measurement): string {
  const { megabytesPerSecond, server } = measurement;
  return `${formatNumber(megabytesPerSecond, 1)} MB/s, server RSS +${formatNumber(server.rssGrowthBytes / MiB, 1)} MiB, server CPU ${formatNumber(server.cpuSeconds, 2)} s (kernel ${formatNumber(server.systemCpuSeconds, 2)} s)`;
}

export async function benchUpload({ bytes, rounds }: UploadBenchOptions): Promise<ResultRow[]> {
  console.log(`\n## Upload of ${formatNumber(bytes / MiB)} MiB, ${rounds} round(s) each, alternating`);
  const block = randomBytes(MiB);
  const file: FileToSend = {
    filename: 'random.bin',
    mimeType: 'application/octet-stream',
    size: bytes,
    chunks: () => repeatBlock(block, bytes),
  };
  const baselineDir = makeTempDir('filestatus-bench-upload-baseline-');
  const servers: ChildServer[] = [];
  try {
    const baseline = await startBaseline('upload-server.ts', { UPLOAD_DIR: baselineDir });
    servers.push(baseline);
    // Random bytes sniff as application/octet-stream: accepting it keeps processing to a rename.
    const service = await startService({ ALLOWED_TYPES: 'application/octet-stream' });
    servers.push(service);

    const ours: Measurement[] = [];
    const theirs: Measurement[] = [];
    for (let round = 1; round <= rounds; round++) {
      // Alternate who goes first, so that neither always meets a disk still writing back the other's gigabyte.
      const order = round % 2 === 1 ? (['baseline', 'ours'] as const) : (['ours', 'baseline'] as const);
      for (const who of order) {
        const measurement = who === 'ours' ? await uploadToService(service, file) : await uploadToBaseline(baseline, file);
        (who === 'ours' ? ours : theirs).push(measurement);
        console.log(`  round ${round} ${who.padEnd(8)} ${describe(measurement)}`);
      }
    }

    const oursSpeed = median(ours.map((m) => m.megabytesPerSecond));
    const theirSpeed = median(theirs.map((m) => m.megabytesPerSecond));
    const oursGrowth = Math.max(...ours.map((m) => m.server.rssGrowthBytes)) / MiB;
    const theirGrowth = Math.max(...theirs.map((m) => m.server.rssGrowthBytes)) / MiB;
    const gibibytes = bytes / 1024 ** 3;
    const oursCpu = median(ours.map((m) => m.server.cpuSeconds)) / gibibytes;
    const theirCpu = median(theirs.map((m) => m.server.cpuSeconds)) / gibibytes;
    const speedRatio = ratio(oursSpeed, theirSpeed);
    printComparison('throughput (median), MB/s', formatNumber(oursSpeed, 1), formatNumber(theirSpeed, 1), speedRatio);
    printComparison('peak RSS growth (max), MiB', formatNumber(oursGrowth, 1), formatNumber(theirGrowth, 1), null);
    printComparison('server CPU per GiB (median), s', formatNumber(oursCpu, 2), formatNumber(theirCpu, 2), ratio(oursCpu, theirCpu));

    const benchmark = `Upload ${formatNumber(bytes / MiB)} MiB`;
    return [
      {
        benchmark,
        metric: `throughput, median of ${rounds}`,
        unit: 'MB/s',
        ours: oursSpeed,
        baseline: theirSpeed,
        ratio: speedRatio,
        goal: `ratio ≥ ${MIN_THROUGHPUT_RATIO}`,
        met: speedRatio >= MIN_THROUGHPUT_RATIO,
        digits: 1,
      },
      {
        benchmark,
        metric: `server peak RSS growth, max of ${rounds}`,
        unit: 'MiB',
        ours: oursGrowth,
        baseline: theirGrowth,
        ratio: null,
        goal: `≤ ${RSS_GROWTH_LIMIT / MiB} MiB`,
        met: oursGrowth * MiB <= RSS_GROWTH_LIMIT,
        digits: 1,
      },
      {
        benchmark,
        metric: `server CPU time per GiB, median of ${rounds}`,
        unit: 's',
        ours: oursCpu,
        baseline: theirCpu,
        ratio: ratio(oursCpu, theirCpu),
        goal: '',
        met: null,
        digits: 2,
      },
    ];
  } finally {
    for (const server of servers.reverse()) await server.stop();
    removeTempDir(baselineDir);
  }
}

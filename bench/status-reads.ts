import { request } from './http-client.js';
import { runLoad, type LoadOptions, type LoadResult, type LoadTarget } from './load.js';
import { textFile } from './multipart.js';
import { printComparison, type ResultRow } from './report.js';
import { startBaseline, startService, type ChildServer, type ServiceUnderTest } from './server.js';
import { authHeaders, uploadFile, waitUntilProcessed } from './service-client.js';
import { formatNumber, ratio } from './stats.js';

const FILE_STATUS_QUERY = 'query($id: ID!){ fileStatus(fileId: $id){ fileId status stage progress sequence updatedAt } }';

interface NamedTarget extends LoadTarget {
  name: string;
  /** Checks one answer before the load, so that a fast stream of errors cannot pass for throughput. */
  isExpectedBody(body: string): boolean;
}

function jsonPost(port: number, headers: Record<string, string>, payload: unknown): Pick<LoadTarget, 'port' | 'method' | 'path' | 'headers' | 'body'> {
  return { port, method: 'POST', path: '/graphql', headers: { ...headers, 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(payload)) };
}

function targets(service: ServiceUnderTest, baseline: ChildServer, fileId: string, etag: string) {
  const auth = authHeaders(service);
  const statusPath = `/api/file/status?file_id=${fileId}`;
  const bare: NamedTarget = {
    name: 'bare yoga { __typename }',
    // The same headers as ours, though the bare server ignores the key.
    ...jsonPost(baseline.port, auth, { query: '{ __typename }' }),
    expectedStatus: 200,
    isExpectedBody: (body) => JSON.parse(body).data?.__typename === 'Query',
  };
  const rest200: NamedTarget = {
    name: 'REST status, 200',
    port: service.port,
    method: 'GET',
    path: statusPath,
    headers: auth,
    expectedStatus: 200,
    isExpectedBody: (body) => JSON.parse(body).file_id === fileId,
  };
  const rest304: NamedTarget = { ...rest200, name: 'REST status, 304', headers: { ...auth, 'if-none-match': etag }, expectedStatus: 304, isExpectedBody: (body) => body === '' };
  const query: NamedTarget = {
    name: 'GraphQL fileStatus',
    ...jsonPost(service.port, auth, { query: FILE_STATUS_QUERY, variables: { id: fileId } }),
    expectedStatus: 200,
    isExpectedBody: (body) => JSON.parse(body).data?.fileStatus?.fileId === fileId,
  };
  return { bare, rest200, rest304, query };
}

async function probe(target: NamedTarget): Promise<void> {
  const response = await request(`http://127.0.0.1:${target.port}${target.path}`, { method: target.method, headers: target.headers, body: target.body });
  if (response.status !== target.expectedStatus || !target.isExpectedBody(response.body)) {
    throw new Error(`${target.name}: unexpected answer ${response.status} ${response.body.slice(0, 300)}`);
  }
}

async function measure(target: NamedTarget, options: LoadOptions): Promise<LoadResult> {
  const result = await runLoad(target, options);
  const errors = result.errors ? `, ${result.errors} errors (first: ${result.firstError})` : '';
  console.log(`  ${target.name.padEnd(26)} ${formatNumber(result.requestsPerSecond).padStart(8)} req/s${errors}`);
  if (result.requests === 0) throw new Error(`${target.name}: no request succeeded (${result.firstError})`);
  return result;
}

export async function benchStatusReads(options: LoadOptions): Promise<ResultRow[]> {
  console.log(
    `\n## Status reads, ${options.connections} connections, ${options.durationMs / 1000} s each after ${options.warmupMs / 1000} s of warm-up`,
  );
  const servers: ChildServer[] = [];
  try {
    const baseline = await startBaseline('yoga-server.ts');
    servers.push(baseline);
    const service = await startService();
    servers.push(service);
    const { id } = await uploadFile(service, textFile('status.txt', 'A file whose status is read.\n'));
    // A finished file: its ETag no longer changes while it is read.
    const { etag } = await waitUntilProcessed(service, id);
    const { bare, rest200, rest304, query } = targets(service, baseline, id, etag);
    for (const target of [bare, rest200, rest304, query]) await probe(target);

    // Warms the load generator's own code too: without it, the first measurement of a run was 10-20% low.
    await runLoad(bare, { ...options, warmupMs: 0, durationMs: 2 * options.warmupMs });
    // The baseline runs first and last: their mean evens out a machine that drifts during the run.
    const bareBefore = await measure(bare, options);
    const ours = { rest200: await measure(rest200, options), rest304: await measure(rest304, options), query: await measure(query, options) };
    const bareAfter = await measure(bare, options);
    const bareRate = (bareBefore.requestsPerSecond + bareAfter.requestsPerSecond) / 2;

    const rows: ResultRow[] = [];
    const compare = (metric: string, result: LoadResult, minRatio: number) => {
      const r = ratio(result.requestsPerSecond, bareRate);
      printComparison(`${metric}, req/s`, formatNumber(result.requestsPerSecond), formatNumber(bareRate), r);
      rows.push({
        benchmark: `Status reads, ${options.connections} connections`,
        metric: result.errors ? `${metric} (${result.errors} errors)` : metric,
        unit: 'req/s',
        ours: result.requestsPerSecond,
        baseline: bareRate,
        ratio: r,
        goal: `ratio ≥ ${minRatio.toFixed(1)}`,
        met: r >= minRatio && result.errors === 0,
      });
    };
    compare('REST 200', ours.rest200, 1.0);
    compare('REST 304 (If-None-Match)', ours.rest304, 1.0);
    compare('GraphQL fileStatus', ours.query, 0.5);
    return rows;
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

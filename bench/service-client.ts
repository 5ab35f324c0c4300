import { setTimeout as sleep } from 'node:timers/promises';
import { postJson, request, sendMultipart, type HttpResponse } from './http-client.js';
import { graphqlUploadBody, type FileToSend } from './multipart.js';
import type { ServiceUnderTest } from './server.js';

export function authHeaders(service: ServiceUnderTest): Record<string, string> {
  return { authorization: `Bearer ${service.apiKey}` };
}

export function uploadHeaders(service: ServiceUnderTest): Record<string, string> {
  return { ...authHeaders(service), 'x-graphql-yoga-csrf': '1' };
}

export interface UploadedFile {
  id: string;
  sequence: number;
}

/** Reads the uploadFile answer, throwing with the response when it is not a success. */
export function uploadedFile({ status, body }: HttpResponse): UploadedFile {
  let parsed: { data?: { uploadFile?: { file: { id: string }; status: { sequence: number } } }; errors?: unknown };
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`upload answered ${status} with a body that is not JSON: ${body.slice(0, 300)}`);
  }
  const result = parsed.data?.uploadFile;
  if (status !== 200 || !result || parsed.errors) throw new Error(`upload failed (${status}): ${body.slice(0, 500)}`);
  return { id: result.file.id, sequence: result.status.sequence };
}

export async function uploadFile(service: ServiceUnderTest, file: FileToSend, timeoutMs = 30_000): Promise<UploadedFile> {
  const url = `http://127.0.0.1:${service.port}/graphql`;
  return uploadedFile((await sendMultipart(url, uploadHeaders(service), graphqlUploadBody(file), timeoutMs)).response);
}

export async function graphql(service: ServiceUnderTest, query: string, variables: Record<string, unknown> = {}) {
  const { status, json } = await postJson(`http://127.0.0.1:${service.port}/graphql`, authHeaders(service), { query, variables });
  if (status !== 200 || json.errors) throw new Error(`GraphQL answered ${status}: ${JSON.stringify(json).slice(0, 500)}`);
  return json.data as Record<string, unknown>;
}

export function fileStatusUrl(service: ServiceUnderTest, fileId: string): string {
  return `http://127.0.0.1:${service.port}/api/file/status?file_id=${encodeURIComponent(fileId)}`;
}

/** Polls the REST status until the file is completed or failed; throws after `timeoutMs`. */
export async function waitUntilProcessed(service: ServiceUnderTest, fileId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await request(fileStatusUrl(service, fileId), { headers: authHeaders(service) });
    if (response.status !== 200) throw new Error(`status of ${fileId} answered ${response.status}: ${response.body}`);
    const status = JSON.parse(response.body) as { status: string; sequence: number };
    if (status.status === 'completed' || status.status === 'failed') return { ...status, etag: String(response.headers.etag) };
    await sleep(100);
  }
  throw new Error(`file ${fileId} was not processed within ${timeoutMs} ms`);
}

import { setTimeout as sleep } from 'node:timers/promises';

export interface GraphQLResponse<T = any> {
  status: number;
  body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
}

export async function graphql<T = any>(
  url: string,
  authorization: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse<T>['body'] };
}

export const UPLOAD_MUTATION = `mutation Upload($file: Upload!, $webhookUrl: String, $webhookEvents: [WebhookEventType!]) {
  uploadFile(file: $file, webhookUrl: $webhookUrl, webhookEvents: $webhookEvents) {
    file { id filename mimeType size sha256 createdAt }
    status { fileId status stage progress sequence attempt }
  }
}`;

/** A GraphQL multipart request, sent with fetch's own multipart encoder. */
export async function uploadFile(
  url: string,
  authorization: string | undefined,
  content: string | Uint8Array<ArrayBuffer>,
  options: { filename?: string; type?: string; variables?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse> {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null, ...options.variables } }));
  form.set('map', JSON.stringify({ 0: ['variables.file'] }));
  form.set('0', new Blob([content], { type: options.type ?? 'text/plain' }), options.filename ?? 'notes.txt');
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'x-graphql-yoga-csrf': '1', ...(authorization ? { authorization } : {}), ...options.headers },
    body: form,
  });
  return { status: response.status, body: (await response.json()) as GraphQLResponse['body'] };
}

const STATUS_QUERY = `query($id: ID!) { fileStatus(fileId: $id) { status stage progress sequence attempt message metadata } }`;

/** Polls until the file is COMPLETED or FAILED. */
export async function waitForTerminal(url: string, authorization: string, fileId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await graphql(url, authorization, STATUS_QUERY, { id: fileId });
    const status = body.data?.fileStatus;
    if (status && status.status !== 'PROCESSING') return status;
    if (Date.now() > deadline) throw new Error(`file ${fileId} still ${JSON.stringify(status)} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

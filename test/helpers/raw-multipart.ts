import http from 'node:http';

/** Sends a hand-made request body to `${url}/graphql`, so that the test controls every byte and when it stops. */
export function rawRequest(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
  options: { abortAfterBytes?: number } = {},
): Promise<{ status: number; body: string } | 'aborted'> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', (error) => (options.abortAfterBytes ? resolve('aborted') : reject(error)));
    if (options.abortAfterBytes) {
      req.write(Buffer.from(body).subarray(0, options.abortAfterBytes), () => setTimeout(() => req.destroy(), 100));
    } else {
      req.end(body);
    }
  });
}

export function multipartBody(boundary: string, parts: { name: string; value: string | Buffer; filename?: string }[]): Buffer {
  const chunks = parts.flatMap((part) => [
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"` +
        (part.filename ? `; filename="${part.filename}"\r\nContent-Type: text/plain` : '') +
        '\r\n\r\n',
    ),
    Buffer.from(part.value),
    Buffer.from('\r\n'),
  ]);
  return Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]);
}

/** The GraphQL multipart request spec's operations and map for one uploadFile of `variables.file`. */
export const UPLOAD_OPERATIONS = JSON.stringify({
  query: 'mutation($file: Upload!) { uploadFile(file: $file) { file { id } } }',
  variables: { file: null },
});
export const UPLOAD_MAP = JSON.stringify({ 0: ['variables.file'] });

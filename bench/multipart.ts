import { randomBytes } from 'node:crypto';

export const UPLOAD_MUTATION = 'mutation($file: Upload!){ uploadFile(file:$file){ file { id } status { sequence } } }';

export interface FileToSend {
  filename: string;
  mimeType: string;
  size: number;
  /** Called once per request: yields exactly `size` bytes. */
  chunks(): Iterable<Buffer>;
}

export interface MultipartBody {
  contentType: string;
  contentLength: number;
  chunks(): Iterable<Buffer>;
}

/** A GraphQL multipart request (operations, map, file part `0`) whose file part is streamed, never buffered. */
export function graphqlUploadBody(file: FileToSend): MultipartBody {
  const boundary = `----bench${randomBytes(12).toString('hex')}`;
  const operations = JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } });
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="${file.filename}"\r\n` +
      `Content-Type: ${file.mimeType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: head.length + file.size + tail.length,
    *chunks() {
      yield head;
      yield* file.chunks();
      yield tail;
    },
  };
}

/** `totalBytes` of data made by repeating one block: a gigabyte to send costs one block of memory. */
export function* repeatBlock(block: Buffer, totalBytes: number): Iterable<Buffer> {
  for (let sent = 0; sent < totalBytes; sent += block.length) {
    yield totalBytes - sent >= block.length ? block : block.subarray(0, totalBytes - sent);
  }
}

export function textFile(filename: string, text: string): FileToSend {
  const bytes = Buffer.from(text);
  return { filename, mimeType: 'text/plain', size: bytes.length, chunks: () => [bytes] };
}

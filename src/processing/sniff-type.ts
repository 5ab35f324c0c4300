import fs from 'node:fs/promises';
import { fileTypeFromBuffer } from 'file-type';

const SNIFF_BYTES = 64 * 1024;

/** Claimed types we believe when the bytes are text, since text carries no magic number. */
const TEXT_LIKE = /^(text\/[a-z0-9.+-]+|application\/(json|xml|x-ndjson|[a-z0-9.-]+\+(json|xml)))$/;

function looksLikeText(bytes: Buffer): boolean {
  if (bytes.length === 0) return true;
  if (bytes.subarray(0, 2).equals(Buffer.from([0xff, 0xfe])) || bytes.subarray(0, 2).equals(Buffer.from([0xfe, 0xff]))) {
    return true; // UTF-16 with a byte-order mark
  }
  if (bytes.includes(0)) return false;
  // A multi-byte character may be cut at the end of the sample: decode without its last bytes.
  const sample = bytes.length === SNIFF_BYTES ? bytes.subarray(0, bytes.length - 4) : bytes;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample);
    return true;
  } catch {
    return false;
  }
}

/**
 * The real type of a file, read from its bytes. The client's claim is used only to name the kind
 * of text (CSV, JSON…) once the bytes are known to be text.
 */
export async function sniffType(filePath: string, claimedType: string): Promise<string> {
  const handle = await fs.open(filePath, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    const bytes = buffer.subarray(0, bytesRead);
    const detected = await fileTypeFromBuffer(bytes);
    if (detected) return detected.mime;
    if (!looksLikeText(bytes)) return 'application/octet-stream';
    const claimed = claimedType.toLowerCase().split(';')[0].trim();
    return TEXT_LIKE.test(claimed) ? claimed : 'text/plain';
  } finally {
    await handle.close();
  }
}

export function isAllowedType(mimeType: string, allowed: string[]): boolean {
  return allowed.some((pattern) =>
    pattern.endsWith('/*') ? mimeType.startsWith(pattern.slice(0, -1)) : mimeType === pattern,
  );
}

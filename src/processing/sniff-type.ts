import fs from 'node:fs/promises';
import { fileTypeFromBuffer } from 'file-type';
import { detectEncoding } from './converters.js';

const SNIFF_BYTES = 64 * 1024;

/** Claimed types we believe when the bytes are text, since text carries no magic number. */
const TEXT_LIKE = /^(text\/[a-z0-9.+-]+|application\/(json|xml|x-ndjson|[a-z0-9.-]+\+(json|xml)))$/;
/** Longer than RFC 6838 lets a type and subtype be (127 characters each): not a type. */
const MAX_TYPE_LENGTH = 255;
const JSON_LIKE = /^application\/(json|x-ndjson|[a-z0-9.-]+\+json)$/;
const XML_LIKE = /^(text\/xml|application\/(xml|[a-z0-9.-]+\+xml))$/;

/**
 * Whether text begins as its claimed type must: JSON with a value (object, array, string, number,
 * true, false, null), XML with `<`. Neither is parsed whole: a claim that gets this far is
 * believed for what the sample cannot show.
 */
function beginsAsClaimed(text: string, claimed: string): boolean {
  const start = text.trimStart();
  if (JSON_LIKE.test(claimed)) return /^([[{"\-0-9]|(true|false|null)(?![a-zA-Z0-9_]))/.test(start);
  if (XML_LIKE.test(claimed)) return start.startsWith('<');
  return true;
}

/**
 * Valid in its encoding and free of NULs. UTF-16 is known only by its byte-order mark: without
 * one it cannot be told from binary, and its zero bytes fail the UTF-8 test. A `cut` sample stops
 * inside the file and may split its last character: a streaming decode leaves that one unjudged.
 */
function isText(bytes: Buffer, encoding: string, cut: boolean): boolean {
  try {
    return !new TextDecoder(encoding, { fatal: true }).decode(bytes, { stream: cut }).includes('\0');
  } catch {
    return false;
  }
}

/**
 * The real type of a file, read from its bytes. The client's claim is used only to name the kind
 * of text (CSV, JSON…) once the bytes are known to be text, and a JSON or XML claim only when the
 * text begins as such a document does; otherwise the text is text/plain.
 */
export async function sniffType(filePath: string, claimedType: string): Promise<string> {
  const handle = await fs.open(filePath, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    const bytes = buffer.subarray(0, bytesRead);
    const { encoding } = detectEncoding(bytes);
    const text = isText(bytes, encoding, (await handle.stat()).size > bytesRead);
    // file-type reads a UTF-16LE byte-order mark as an MPEG audio header: valid text behind a mark wins.
    const detected = text && encoding !== 'utf-8' ? undefined : await fileTypeFromBuffer(bytes);
    if (detected) return detected.mime;
    if (!text) return 'application/octet-stream';
    const claimed = claimedType.toLowerCase().split(';')[0].trim();
    // The decoder drops a byte-order mark.
    const believed =
      claimed.length <= MAX_TYPE_LENGTH && TEXT_LIKE.test(claimed) && beginsAsClaimed(new TextDecoder(encoding).decode(bytes.subarray(0, 1024)), claimed);
    return believed ? claimed : 'text/plain';
  } finally {
    await handle.close();
  }
}

export function isAllowedType(mimeType: string, allowed: string[]): boolean {
  return allowed.some((pattern) =>
    pattern.endsWith('/*') ? mimeType.startsWith(pattern.slice(0, -1)) : mimeType === pattern,
  );
}

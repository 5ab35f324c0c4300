import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ConversionResult {
  /** sha256 of the converted text. */
  sha256: string;
  textLength: number;
  words: number;
}

/**
 * Turns a file of some type into plain text. A later PDF or DOCX converter implements this and
 * is added to `converters`; nothing else changes.
 */
export interface Converter {
  accepts(mimeType: string): boolean;
  convert(input: string, output: string, options: { signal: AbortSignal; onProgress(fraction: number): void }): Promise<ConversionResult>;
}

/** The encoding named by a byte-order mark; UTF-8 without one. */
export function detectEncoding(head: Buffer): { encoding: 'utf-8' | 'utf-16le' | 'utf-16be' } {
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le' };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be' };
  return { encoding: 'utf-8' };
}

/** Characters that NFC may compose with the one before them: marks, Hangul vowels and finals, and one Kirat Rai letter. */
const COMBINING = String.raw`\p{M}\u1161-\u1175\u11a8-\u11c2\u{16d67}`;

/**
 * The end of a chunk that the next one may still change: a CR its LF may follow, or the last
 * character that combines with nothing before it, with the combining ones after it. NFC of the
 * text before this tail is final. A longer run than 32 combining characters (stream-safe text,
 * UAX #15, has at most 30) is not held back, so hostile input cannot make the held text grow.
 */
const UNSETTLED_TAIL = new RegExp(String.raw`(?:\r\n?|[^${COMBINING}])[${COMBINING}]{0,32}$`, 'u');

/**
 * Text-like files become UTF-8 without a byte-order mark, with LF line ends and NFC-normalised
 * characters. Invalid bytes become U+FFFD instead of failing the file. Streams, so a large file
 * costs no more memory than a small one.
 */
export const textConverter: Converter = {
  accepts: (mimeType) => /^(text\/|application\/(json|xml|x-ndjson)$|application\/[a-z0-9.-]+\+(json|xml)$)/.test(mimeType),

  async convert(input, output, { signal, onProgress }) {
    const total = fs.statSync(input).size;
    const head = Buffer.alloc(2);
    const fd = fs.openSync(input, 'r');
    fs.readSync(fd, head, 0, 2, 0);
    fs.closeSync(fd);
    const decoder = new TextDecoder(detectEncoding(head).encoding); // strips the BOM
    const hash = createHash('sha256');
    let read = 0;
    let textLength = 0;
    let words = 0;
    let inWord = false;
    let held = '';

    const normalise = (text: string, final: boolean): string => {
      let value = held + text;
      const cut = final ? -1 : value.search(UNSETTLED_TAIL);
      held = cut === -1 ? '' : value.slice(cut);
      if (cut !== -1) value = value.slice(0, cut);
      return value.replace(/\r\n?/g, '\n').normalize('NFC');
    };
    const emit = (text: string, push: (chunk: Buffer) => void) => {
      if (!text) return;
      textLength += text.length;
      words += text.match(/\S+/g)?.length ?? 0;
      if (inWord && /^\S/.test(text)) words--; // a word cut by the chunk boundary
      inWord = /\S$/.test(text);
      const bytes = Buffer.from(text, 'utf8');
      hash.update(bytes);
      push(bytes);
    };

    await pipeline(
      fs.createReadStream(input, { highWaterMark: 256 * 1024 }),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          read += chunk.length;
          emit(normalise(decoder.decode(chunk, { stream: true }), false), (bytes) => this.push(bytes));
          onProgress(total === 0 ? 1 : read / total);
          callback();
        },
        flush(callback) {
          emit(normalise(decoder.decode(), true), (bytes) => this.push(bytes));
          callback();
        },
      }),
      fs.createWriteStream(output),
      { signal },
    );
    return { sha256: hash.digest('hex'), textLength, words };
  },
};

export const converters: Converter[] = [textConverter];

export function converterFor(mimeType: string): Converter | undefined {
  return converters.find((converter) => converter.accepts(mimeType));
}

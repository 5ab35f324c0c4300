import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { textConverter } from '../../src/processing/converters.js';
import { isAllowedType, sniffType } from '../../src/processing/sniff-type.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'converters-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function convert(bytes: Buffer) {
  const input = path.join(dir, 'in');
  const output = path.join(dir, 'out');
  fs.writeFileSync(input, bytes);
  const progress: number[] = [];
  const result = await textConverter.convert(input, output, { signal: new AbortController().signal, onProgress: (f) => progress.push(f) });
  return { ...result, text: fs.readFileSync(output, 'utf8'), progress };
}

describe('textConverter', () => {
  it.each([
    ['CRLF and lone CR line ends', Buffer.from('a\r\nb\rc\n'), 'a\nb\nc\n'],
    ['a UTF-8 byte-order mark', Buffer.from('\ufeffhello', 'utf8'), 'hello'],
    ['UTF-16LE with its mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('héllo wörld', 'utf16le')]), 'héllo wörld'],
    ['decomposed characters', Buffer.from('e\u0301', 'utf8'), 'é'],
    ['invalid UTF-8', Buffer.from([0x61, 0xff, 0x62]), 'a\ufffdb'],
  ])('normalises %s', async (_name, bytes, expected) => {
    expect((await convert(bytes)).text).toBe(expected);
  });

  const chunk = 256 * 1024;

  it('keeps a CRLF split across read chunks as one line end, and counts words across chunks', async () => {
    const text = 'x'.repeat(chunk - 1) + '\r\n' + 'word '.repeat(10);
    const result = await convert(Buffer.from(text));
    expect(result.text).toBe('x'.repeat(chunk - 1) + '\n' + 'word '.repeat(10));
    expect(result.words).toBe(11);
    expect(result.textLength).toBe(result.text.length);
    expect(result.progress.at(-1)).toBe(1);
  });

  it.each([
    ["a decomposed 'é' whose mark starts the next chunk", 'x'.repeat(chunk - 1) + 'e\u0301 word'],
    ["a decomposed 'é' whose mark's bytes are cut by the chunk end", 'x'.repeat(chunk - 2) + 'e\u0301 word'],
    ['Hangul jamo cut between the initial and the vowel', 'x'.repeat(chunk - 3) + '\u1100\u1161\u11a8 word'],
    ['a CRLF that ends a chunk exactly', 'x'.repeat(chunk - 2) + '\r\nword'],
    ['a run of combining marks longer than any text has, over several chunks', 'e' + '\u0301'.repeat(chunk)],
  ])('composes across a chunk boundary: %s', async (_name, text) => {
    const result = await convert(Buffer.from(text));
    const expected = text.replace(/\r\n?/g, '\n').normalize('NFC');
    expect(result.text).toBe(expected);
    expect(result.textLength).toBe(expected.length);
    expect(result.words).toBe(expected.match(/\S+/g)!.length);
  });
});

describe('sniffType', () => {
  const sniff = (bytes: Buffer, claimed: string) => {
    const file = path.join(dir, 'sniff');
    fs.writeFileSync(file, bytes);
    return sniffType(file, claimed);
  };

  it('believes the bytes over the claim', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    expect(await sniff(png, 'text/plain')).toBe('image/png');
    expect(await sniff(Buffer.from([0, 1, 2, 0xff]), 'text/plain')).toBe('application/octet-stream');
  });

  it('names text by the claim only when the claim is a text type', async () => {
    expect(await sniff(Buffer.from('a,b\n1,2\n'), 'text/csv')).toBe('text/csv');
    expect(await sniff(Buffer.from('{"a":1}'), 'application/json')).toBe('application/json');
    expect(await sniff(Buffer.from('plain'), 'image/png')).toBe('text/plain');
  });

  it.each([
    ['a JSON object', '{"a":1}', 'application/json', 'application/json'],
    ['a JSON array after whitespace and a byte-order mark', '\uFEFF \n [1, 2]', 'application/json', 'application/json'],
    ['a JSON number', '-12.5', 'application/json', 'application/json'],
    ['a JSON literal', 'null', 'application/json', 'application/json'],
    ['prose that begins with a JSON literal', 'nullified', 'application/json', 'text/plain'],
    ['newline-delimited JSON', '{"a":1}\n{"a":2}\n', 'application/x-ndjson', 'application/x-ndjson'],
    ['a vendor JSON type', '{"type":"Feature"}', 'application/geo+json', 'application/geo+json'],
    ['prose claimed as JSON', 'this is not json at all', 'application/json', 'text/plain'],
    ['prose claimed as a vendor JSON type', 'hello', 'application/ld+json', 'text/plain'],
    ['an empty file claimed as JSON', '', 'application/json', 'text/plain'],
    ['an XML document', '<?xml version="1.0"?><a/>', 'application/xml', 'application/xml'],
    ['an XML document claimed as text/xml', '  <feed/>', 'text/xml', 'text/xml'],
    ['prose claimed as XML', 'not xml', 'application/xml', 'text/plain'],
    ['JSON claimed as SVG', '{"a":1}', 'image/svg+xml', 'text/plain'],
    ['text claimed as a type longer than any type', 'hello', `text/${'x'.repeat(300)}`, 'text/plain'],
  ])('names %s by its claim only if it begins as one', async (_name, text, claimed, expected) => {
    expect(await sniff(Buffer.from(text), claimed)).toBe(expected);
  });

  const SNIFF_BYTES = 64 * 1024;
  const utf16 = (text: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  const utf16be = (units: number[]) => Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(units)]);
  const almostSample = (last: number[]) => Buffer.concat([Buffer.alloc(SNIFF_BYTES - 1, 'a'), Buffer.from(last)]);

  it.each(
    ['é', '€', '😀'].flatMap((char) =>
      [1, 2, 3, 4, 5, 6, 7].map((before) => [char, before, 'a'.repeat(SNIFF_BYTES - before) + char + 'b'.repeat(100)] as const),
    ),
  )("accepts text whose %s starts %i bytes before the sample's end", async (_char, _before, text) => {
    expect(await sniff(Buffer.from(text), 'application/octet-stream')).toBe('text/plain');
  });

  it.each([
    ['UTF-16LE with its mark', utf16('héllo wörld'), 'text/plain'],
    ['UTF-16LE past the sample, a surrogate pair cut at its end', utf16('a'.repeat(SNIFF_BYTES / 2 - 2) + '😀b'), 'text/plain'],
    ['UTF-16LE without its mark', Buffer.from('hello', 'utf16le'), 'application/octet-stream'],
    ['UTF-16BE with its mark', utf16be([0x00, 0x68, 0x00, 0xe9]), 'text/plain'],
    ['a UTF-16 mark before an unpaired surrogate', utf16be([0xd8, 0x00, 0x00, 0x41]), 'application/octet-stream'],
    ['a UTF-16 mark before zero code units', utf16be(Array(64).fill(0)), 'application/octet-stream'],
    ['an invalid byte at the end of a cut sample', almostSample([0xff, 0x62]), 'application/octet-stream'],
    ['a file of exactly the sample size ending in half a character', almostSample([0xc3]), 'application/octet-stream'],
  ])('judges %s', async (_name, bytes, expected) => {
    expect(await sniff(bytes, 'text/plain')).toBe(expected);
  });

  it('matches allowed types exactly or by family', () => {
    expect(isAllowedType('image/png', ['image/*'])).toBe(true);
    expect(isAllowedType('imagex/png', ['image/*'])).toBe(false);
    expect(isAllowedType('application/pdf', ['application/json'])).toBe(false);
  });
});

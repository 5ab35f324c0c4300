import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore } from '../../src/storage/blob-store.js';

const content = 'stored once\n';
const sha256 = createHash('sha256').update(content).digest('hex');
let dataDir: string;
let blobs: BlobStore;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'blob-store-'));
  // Relative, as DATA_DIR's default is: the same file may then be named two ways.
  blobs = new BlobStore(path.relative(process.cwd(), dataDir));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function newFile(): string {
  const file = blobs.tmpPath();
  fs.writeFileSync(file, content);
  return file;
}

describe('BlobStore.storeBlob', () => {
  it('moves the source to the path named by its sha256', async () => {
    const source = newFile();
    const stored = await blobs.storeBlob(source, sha256);
    expect(stored).toBe(blobs.blobPath(sha256));
    expect(fs.readFileSync(stored, 'utf8')).toBe(content);
    expect(fs.existsSync(source)).toBe(false);
  });

  it('drops a second copy of stored content and keeps the blob', async () => {
    await blobs.storeBlob(newFile(), sha256);
    const copy = newFile();
    await blobs.storeBlob(copy, sha256);
    expect(fs.existsSync(copy)).toBe(false);
    expect(fs.readFileSync(blobs.blobPath(sha256), 'utf8')).toBe(content);
  });

  it.each([
    ['by the same path', (blob: string) => blob],
    ['by its absolute path', (blob: string) => path.resolve(blob)],
    ['by a path with a dot', (blob: string) => `${path.dirname(blob)}/./${path.basename(blob)}`],
  ])('keeps a blob that is stored again from itself, named %s', async (_name, nameOf) => {
    const blob = await blobs.storeBlob(newFile(), sha256);
    expect(await blobs.storeBlob(nameOf(blob), sha256)).toBe(blob);
    expect(fs.readFileSync(blob, 'utf8')).toBe(content);
  });
});

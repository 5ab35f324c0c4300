import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/server-process.js';

describe('a start of the embedded default after a crash', () => {
  it('removes partial uploads and uploads without a file row', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-sweep-'));
    try {
      fs.mkdirSync(path.join(dir, 'incoming'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'incoming', 'a1b2.part'), 'half an upload');
      fs.writeFileSync(path.join(dir, 'incoming', '00000000-0000-4000-8000-000000000000'), 'never committed');
      const server = await spawnServer({ DATA_DIR: dir });
      expect(fs.readdirSync(path.join(dir, 'incoming'))).toEqual([]);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

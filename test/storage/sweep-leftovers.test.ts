import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnServer } from '../helpers/server-process.js';
import { createTestDatabase } from '../helpers/test-database.js';

function leave(dir: string, relative: string, ageMs = 0): void {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'left behind');
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
}

const TWO_HOURS = 2 * 60 * 60_000;

describe('a start after a crash', () => {
  it('removes partial uploads and uploads without a file row, on the embedded default', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-sweep-'));
    try {
      leave(dir, 'incoming/a1b2.part');
      leave(dir, 'incoming/00000000-0000-4000-8000-000000000000');
      leave(dir, 'tmp/c3d4.part');
      const server = await spawnServer({ DATA_DIR: dir });
      expect(fs.readdirSync(path.join(dir, 'incoming'))).toEqual([]);
      expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    'on PostgreSQL removes only what nobody wrote to for an hour: another process may own the rest',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestatus-sweep-pg-'));
      const database = await createTestDatabase();
      try {
        leave(dir, 'incoming/old.part', TWO_HOURS);
        leave(dir, 'incoming/00000000-0000-4000-8000-000000000001', TWO_HOURS);
        leave(dir, 'tmp/old.part', TWO_HOURS);
        leave(dir, 'incoming/writing.part');
        leave(dir, 'incoming/00000000-0000-4000-8000-000000000002');
        leave(dir, 'tmp/converting.part');
        const server = await spawnServer({ DATA_DIR: dir, DATABASE_URL: database.url! });
        expect(fs.readdirSync(path.join(dir, 'incoming')).sort()).toEqual(['00000000-0000-4000-8000-000000000002', 'writing.part']);
        expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual(['converting.part']);
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
      } finally {
        await database.drop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createLogger, withoutStackTraces } from '../../src/log.js';

describe('logged errors', () => {
  it("leave out the database client pg's pool attaches, and its cancel key", () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => lines.push(line) });
    const client = new pg.Client({ connectionString: 'postgresql://someone:hunter2@127.0.0.1:1/db' });
    Object.assign(client, { processID: 4242, secretKey: 1944270787 });
    const error = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01', client });
    log.warn({ err: error }, 'bus publishing connection lost');
    withoutStackTraces(log).warn({ err: error }, 'the same, without its stack');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toMatch(/1944270787|hunter2|connectionParameters/);
      expect(JSON.parse(line).err).toMatchObject({ type: 'Error', message: 'terminating connection due to administrator command', code: '57P01' });
    }
    expect(JSON.parse(lines[0]).err.stack).toMatch(/error-serializer\.test/);
    expect(JSON.parse(lines[1]).err.stack).toBeUndefined();
  });
});

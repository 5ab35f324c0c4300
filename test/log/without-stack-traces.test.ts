import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { withoutStackTraces } from '../../src/log.js';

describe('withoutStackTraces', () => {
  it('logs an error by type, message and own fields, never its stack', () => {
    const lines: string[] = [];
    const log = withoutStackTraces(pino({ level: 'info' }, { write: (line: string) => lines.push(line) }));
    const error = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    log.error({ err: error, deliveryId: 'd1' }, 'could not record a webhook attempt');
    log.error({ err: 'a plain string' }, 'not an Error');
    expect(lines).toHaveLength(2);
    expect(lines.join('')).not.toMatch(/stack|at .*\.(ts|js):\d+/);
    const [first, second] = lines.map((line) => JSON.parse(line));
    expect(first).toMatchObject({ err: { type: 'Error', message: 'connection refused', code: 'ECONNREFUSED' }, deliveryId: 'd1' });
    expect(second.err).toBe('a plain string');
  });

  it('leaves out the stacks of what an error holds: its cause, the errors it aggregates, an error among its fields', () => {
    const lines: string[] = [];
    const log = withoutStackTraces(pino({ level: 'info' }, { write: (line: string) => lines.push(line) }));
    const cause = new Error('socket hang up');
    const aggregate = new AggregateError([new Error('first refused'), new Error('second refused')], 'all refused', { cause });
    log.error({ err: Object.assign(aggregate, { during: new Error('the sweep') }) }, 'could not remove expired webhook deliveries');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/"stack"|at .*\.(ts|js):\d+/);
    const { err } = JSON.parse(lines[0]);
    expect(err.message).toMatch(/all refused/);
    expect(err.aggregateErrors.map((error: { message: string }) => error.message)).toEqual(['first refused', 'second refused']);
    expect(err.during.message).toBe('the sweep');
  });
});

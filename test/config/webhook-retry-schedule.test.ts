import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const schedule = (value?: string) => loadConfig({ DATA_DIR: '/tmp/unused', ...(value === undefined ? {} : { WEBHOOK_RETRY_SCHEDULE: value }) }).webhooks.retryScheduleMs;

describe('WEBHOOK_RETRY_SCHEDULE', () => {
  it('defaults to at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h', () => {
    expect(schedule()).toEqual([0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  });

  it('reads comma-separated durations, milliseconds allowed', () => {
    expect(schedule('0, 100ms, 1.5s, 2m')).toEqual([0, 100, 1_500, 120_000]);
  });

  it('refuses a first delay other than 0, which the first attempt could not keep', () => {
    expect(() => schedule('1s,5s')).toThrow(ConfigError);
    expect(() => schedule('1s,5s')).toThrow(/WEBHOOK_RETRY_SCHEDULE.*starts with 0 \(got "1s"\)/);
  });

  it.each(['soon', '0,5x', '0,,5s', '0,-5s'])('refuses %j, naming the setting', (value) => {
    expect(() => schedule(value)).toThrow(/WEBHOOK_RETRY_SCHEDULE/);
  });
});

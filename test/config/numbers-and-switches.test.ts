import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const config = (env: Record<string, string>) => loadConfig({ DATA_DIR: '/tmp/unused', ...env });

describe('whole-number settings', () => {
  it('takes a port from 0 to 65535', () => {
    expect(config({ PORT: '0' }).port).toBe(0);
    expect(config({ PORT: '65535' }).port).toBe(65_535);
  });

  it.each(['70000', '-1', '1e3', '0x10', ' 80', '80 ', '8.0', 'eighty'])('refuses PORT=%j before anything starts, naming the setting', (value) => {
    expect(() => config({ PORT: value })).toThrow(ConfigError);
    expect(() => config({ PORT: value })).toThrow(`PORT must be a whole number from 0 to 65535, got "${value}"`);
  });

  it.each(['1e3', '0x10', '2.0', '+2'])('refuses WORKER_CONCURRENCY=%j, which Number() would have read as a count', (value) => {
    expect(() => config({ WORKER_CONCURRENCY: value })).toThrow(`WORKER_CONCURRENCY must be a whole number >= 1, got "${value}"`);
  });
});

describe('WEBHOOK_ALLOW_HTTP', () => {
  it('is true or false in any case, and false when unset or empty', () => {
    expect(config({}).webhooks.allowHttp).toBe(false);
    expect(config({ WEBHOOK_ALLOW_HTTP: '' }).webhooks.allowHttp).toBe(false);
    expect(config({ WEBHOOK_ALLOW_HTTP: 'TRUE' }).webhooks.allowHttp).toBe(true);
    expect(config({ WEBHOOK_ALLOW_HTTP: 'False' }).webhooks.allowHttp).toBe(false);
  });

  it.each(['1', 'yes', 'on', 'ture'])('refuses %j rather than read it as false', (value) => {
    expect(() => config({ WEBHOOK_ALLOW_HTTP: value })).toThrow(`WEBHOOK_ALLOW_HTTP must be true or false, got "${value}"`);
  });
});

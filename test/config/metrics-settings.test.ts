import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const metrics = (env: Record<string, string>) => loadConfig({ DATA_DIR: '/tmp/unused', ...env }).metrics;

describe('METRICS_PORT and METRICS_HOST', () => {
  it('leaves metrics off by default, and when METRICS_PORT is empty', () => {
    expect(metrics({})).toEqual({ port: null, host: '127.0.0.1' });
    expect(metrics({ METRICS_PORT: '' }).port).toBeNull();
  });

  it('reads a port and a host', () => {
    expect(metrics({ METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' })).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(metrics({ METRICS_PORT: '65535' }).port).toBe(65_535);
  });

  it.each(['abc', '0', '70000', '-1', '1.5', '9464abc', '0x10'])('refuses METRICS_PORT=%j, naming the setting', (value) => {
    expect(() => metrics({ METRICS_PORT: value })).toThrow(ConfigError);
    expect(() => metrics({ METRICS_PORT: value })).toThrow(`METRICS_PORT must be a port from 1 to 65535, got "${value}"`);
  });

  it('refuses the API port, where tenants would reach the metrics', () => {
    expect(() => metrics({ METRICS_PORT: '4000' })).toThrow(/METRICS_PORT must differ from PORT \(4000\)/);
    expect(() => metrics({ PORT: '8080', METRICS_PORT: '8080' })).toThrow(ConfigError);
  });

  it('lets a worker, which serves no API, use the number PORT has', () => {
    expect(metrics({ ROLE: 'worker', DATABASE_URL: 'postgresql://localhost/x', METRICS_PORT: '4000' }).port).toBe(4000);
  });
});

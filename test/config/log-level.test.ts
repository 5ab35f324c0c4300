import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const logLevel = (env: Record<string, string>) => loadConfig({ DATA_DIR: '/tmp/unused', ...env }).logLevel;

describe('LOG_LEVEL', () => {
  it("is info by default, and any of pino's levels", () => {
    expect(logLevel({})).toBe('info');
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) expect(logLevel({ LOG_LEVEL: level })).toBe(level);
  });

  it('refuses another name with the ones it takes, before a logger is made of it', () => {
    for (const level of ['verbose', 'INFO', 'warning', '10']) {
      expect(() => logLevel({ LOG_LEVEL: level })).toThrow(ConfigError);
      expect(() => logLevel({ LOG_LEVEL: level })).toThrow(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${level}"`);
    }
  });
});

// Configuration comes from the environment and is checked at start: a typo fails fast, in one
// line, instead of running with a setting that silently does nothing.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('CORS_ORIGINS', () => {
  it('takes origins as browsers send them', () => {
    const config = loadConfig({ CORS_ORIGINS: ' https://app.example.com , http://localhost:3000' });
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });

  it('refuses what no browser would send as an origin, naming it', () => {
    for (const origin of [
      'notanorigin',
      'https://app.example.com/',
      'app.example.com',
      'https://app.example.com/x',
    ])
      expect(() => loadConfig({ CORS_ORIGINS: origin })).toThrow(
        new ConfigError(
          `CORS_ORIGINS must be origins like https://app.example.com (scheme://host[:port], no path), got "${origin}"`,
        ),
      );
  });
});

describe('integer settings', () => {
  it('take decimal digits only, not the other spellings a number has in JavaScript (ops6 #5)', () => {
    expect(loadConfig({ PORT: '40094', WORKERS: '2' })).toMatchObject({ port: 40094, workers: 2 });
    for (const [name, raw] of [
      ['PORT', '1e3'],
      ['PORT', '0x9c9e'],
      ['PORT', ' 8080'],
      ['WORKERS', '0x2'],
      ['WORKERS', '0b10'],
      ['WORKERS', '2.0'],
    ] as const)
      expect(() => loadConfig({ [name]: raw })).toThrow(ConfigError);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has working defaults: embedded database, simulator, port 4000, Segmind base URL', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.segmind).toEqual({ apiKey: undefined, baseUrl: 'https://api.segmind.com' });
    expect(config.port).toBe(4000);
    expect(config.storageDir).toMatch(/data\/videos$/);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', SEGMIND_API_KEY: '' }).segmind.apiKey).toBeUndefined();
  });

  it.each([
    ['PORT', 'eighty'],
    ['DATABASE_URL', 'mysql://localhost/x'],
    ['SEGMIND_BASE_URL', 'not a url'],
    ['PUBLIC_BASE_URL', 'ftp://example.com'],
    ['POLL_INTERVAL_MS', '-5'],
  ])('stops on a bad %s and names it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('never puts the Segmind key in its error text', () => {
    try {
      loadConfig({ SEGMIND_API_KEY: 'sk-secret-value', PORT: 'x' });
      expect.unreachable();
    } catch (error) {
      expect(String(error)).not.toContain('sk-secret-value');
    }
  });
});

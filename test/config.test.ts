import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('configuration', () => {
  it('has working defaults: embedded database, simulator, port 4000, Segmind base URL', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.segmind).toEqual({ apiKey: undefined, baseUrl: 'https://api.segmind.com' });
    expect(config.port).toBe(4000);
    expect(config.storageDir).toMatch(/data\/videos$/);
  });

  it('keeps videos forever unless VIDEO_RETENTION_DAYS is set, and refuses a retention of zero days', () => {
    expect(loadConfig({}).retention).toBeNull();
    expect(loadConfig({ VIDEO_RETENTION_DAYS: '' }).retention).toBeNull();
    expect(loadConfig({ VIDEO_RETENTION_DAYS: '30' }).retention).toEqual({ videoDays: 30, intervalMs: 3_600_000 });
    expect(loadConfig({ VIDEO_RETENTION_DAYS: '0.5', VIDEO_RETENTION_SWEEP_INTERVAL_MS: '60000' }).retention).toEqual({ videoDays: 0.5, intervalMs: 60_000 });
    expect(() => loadConfig({ VIDEO_RETENTION_DAYS: '0' })).toThrow(/VIDEO_RETENTION_DAYS/);
    expect(() => loadConfig({ VIDEO_RETENTION_DAYS: 'forever' })).toThrow(ConfigError);
  });

  it('runs arbitrary operations unless ALLOW_ARBITRARY_OPERATIONS=false, with more trusted manifests from TRUSTED_DOCUMENTS', () => {
    expect(loadConfig({}).trustedDocuments).toEqual({ allowArbitraryOperations: true, manifests: [] });
    expect(loadConfig({ ALLOW_ARBITRARY_OPERATIONS: 'false', TRUSTED_DOCUMENTS: 'a.json, /srv/b.json,' }).trustedDocuments).toEqual({
      allowArbitraryOperations: false,
      manifests: [resolve('a.json'), '/srv/b.json'],
    });
    expect(() => loadConfig({ ALLOW_ARBITRARY_OPERATIONS: 'sometimes' })).toThrow(/ALLOW_ARBITRARY_OPERATIONS/);
    // The response cache's table is sized up front by its entry bound: one past reason is refused.
    expect(() => loadConfig({ RESPONSE_CACHE_MAX_ENTRIES: '1000000000' })).toThrow(/RESPONSE_CACHE_MAX_ENTRIES/);
    expect(loadConfig({ RESPONSE_CACHE_TTL_MS: '5000' }).responseCache).toEqual({ ttlMs: 5000, maxEntries: 1000, maxBytes: 64 * 1024 * 1024 });
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

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../db/client.ts';

const PREFIX = 'xq_';

export interface ApiKeyIdentity {
  id: string;
  name: string;
}

/** Keys carry 256 random bits, so one fast hash is enough; the secret itself is never stored. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export async function createApiKey(db: Db, name: string): Promise<{ id: string; key: string; prefix: string; webhookSecret: string }> {
  const key = `${PREFIX}${randomBytes(32).toString('base64url')}`;
  const prefix = key.slice(0, PREFIX.length + 6);
  const webhookSecret = `whsec_${randomBytes(32).toString('hex')}`;
  const row = await db.apiKey.create({ data: { id: uuidv7(), name, prefix, keyHash: hashApiKey(key), webhookSecret } });
  return { id: row.id, key, prefix, webhookSecret };
}

/** Revokes a key: at once in this process, within AUTH_CACHE_TTL_MS in every other one. */
export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const { count } = await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  clearApiKeyCache(db);
  return count === 1;
}

/**
 * How long an active key's identity is remembered after a lookup. Every request presents its key,
 * and the lookup was a statement of its own on every one; now a key costs one lookup per TTL.
 * The price: a key revoked elsewhere (`npm run apikey:revoke`, another server process) is still
 * accepted here until its entry expires, so for at most this long after the revocation.
 */
export const AUTH_CACHE_TTL_MS = 5_000;
/** Entries beyond this push out the oldest; only keys that exist and are active get in at all. */
const AUTH_CACHE_MAX_ENTRIES = 10_000;

interface CachedIdentity {
  expiresAt: number;
  /** Shared by the requests that arrive while the lookup runs, so a burst costs one lookup. */
  identity: Promise<ApiKeyIdentity | null>;
}

/** Per Db (per database), by the key's hash: the key itself is not kept. */
const caches = new WeakMap<Db, Map<string, CachedIdentity>>();

/** Forgets every remembered key of `db`, so that the next request of each is looked up again. */
export function clearApiKeyCache(db: Db): void {
  caches.delete(db);
}

/**
 * Resolves a presented key to its identity, or null when it is unknown or revoked. An active key
 * seen in the last AUTH_CACHE_TTL_MS is answered from memory (see there); unknown and revoked
 * keys are looked up every time, so guessing fills no memory and a new key works at once.
 */
export async function authenticate(db: Db, presented: string | null | undefined): Promise<ApiKeyIdentity | null> {
  if (!presented || !presented.startsWith(PREFIX) || presented.length > 128) return null;
  const hash = hashApiKey(presented);
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  const now = Date.now();
  const cached = cache.get(hash);
  if (cached && cached.expiresAt > now) return cached.identity;

  const entry: CachedIdentity = { expiresAt: now + AUTH_CACHE_TTL_MS, identity: lookUp(db, hash) };
  // Re-inserted, so the map's order stays oldest first for eviction.
  cache.delete(hash);
  if (cache.size >= AUTH_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  cache.set(hash, entry);
  const forget = () => {
    if (cache.get(hash) === entry) cache.delete(hash);
  };
  void entry.identity.then((identity) => {
    if (!identity) forget();
  }, forget);
  return entry.identity;
}

async function lookUp(db: Db, hash: string): Promise<ApiKeyIdentity | null> {
  const row = await db.apiKey.findUnique({ where: { keyHash: hash }, select: { id: true, name: true, keyHash: true, revokedAt: true, lastUsedAt: true } });
  if (!row || row.revokedAt) return null;
  // The lookup was by hash already; compare again in constant time so timing says nothing.
  if (!timingSafeEqual(Buffer.from(row.keyHash), Buffer.from(hash))) return null;
  if (!row.lastUsedAt || row.lastUsedAt.getTime() < Date.now() - LAST_USED_PRECISION_MS) recordUse(db, row.id);
  return { id: row.id, name: row.name };
}

/** `lastUsedAt` is written at most this often per key, so a busy key costs no write per request. */
const LAST_USED_PRECISION_MS = 60_000;

/**
 * Records that a key was used. Only ever called from a lookup (one per key per AUTH_CACHE_TTL_MS),
 * and only when the recorded time is over a minute old; the request does not wait for it. The
 * condition is repeated in the UPDATE, so that servers looking the key up at once write it once.
 */
function recordUse(db: Db, id: string): void {
  const stale = new Date(Date.now() - LAST_USED_PRECISION_MS);
  void db.apiKey
    .updateMany({ where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: stale } }] }, data: { lastUsedAt: new Date() } })
    .catch(() => {
      // A lost "last used" time is not worth failing (or logging from) a request for.
    });
}

export interface ApiKeySummary {
  id: string;
  name: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Every key, oldest first, without its hash or webhook secret. */
export function listApiKeys(db: Db): Promise<ApiKeySummary[]> {
  return db.apiKey.findMany({
    select: { id: true, name: true, prefix: true, createdAt: true, lastUsedAt: true, revokedAt: true },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
}

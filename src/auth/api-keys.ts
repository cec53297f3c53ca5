import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../db/client.js';

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

export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const { count } = await db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  return count === 1;
}

/** Resolves a presented key to its identity, or null when it is unknown or revoked. */
export async function authenticate(db: Db, presented: string | null | undefined): Promise<ApiKeyIdentity | null> {
  if (!presented || !presented.startsWith(PREFIX) || presented.length > 128) return null;
  const hash = hashApiKey(presented);
  const row = await db.apiKey.findUnique({ where: { keyHash: hash }, select: { id: true, name: true, keyHash: true, revokedAt: true } });
  if (!row || row.revokedAt) return null;
  // The lookup was by hash already; compare again in constant time so timing says nothing.
  if (!timingSafeEqual(Buffer.from(row.keyHash), Buffer.from(hash))) return null;
  return { id: row.id, name: row.name };
}

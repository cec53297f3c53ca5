/**
 * Helpers for the statements that go to plain `pg` instead of Prisma: the hot paths, all in
 * src/db/ (generations.ts: a generation's insert and steps; key-limits.ts: the per-key limits).
 * Each statement of a Prisma interactive transaction cost several milliseconds of client CPU. Values go in and come out as Prisma has
 * them, so rows written here read back the same through Prisma and the other way round.
 *
 * Statements here are named (prepared once per connection): PostgreSQL then parses and plans
 * them once per connection instead of on every request, which measured as a large part of the
 * database's CPU per request. A named statement must keep its result columns for as long as a
 * connection lives, so none of them returns `*`.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Prisma } from '../generated/prisma/client.ts';

const TIMESTAMP = 1114;
const NUMERIC = 1700;

/**
 * Prisma keeps DateTime in `timestamp(3)` columns (no time zone) as UTC wall time. A parameter
 * given as ISO text is stored as that UTC time (PostgreSQL ignores the zone of a timestamp
 * literal), whatever the session's or this process's time zone; a Date would be sent as local time.
 */
export const timestampParam = (date: Date): string => date.toISOString();

/** Parses results like Prisma: timestamps as UTC Dates, numerics as Prisma.Decimal. */
export const prismaTypes: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => {
    if (oid === TIMESTAMP) return (text: string) => new Date(`${text.replace(' ', 'T')}Z`);
    if (oid === NUMERIC) return (text: string) => new Prisma.Decimal(text);
    return pg.types.getTypeParser(oid, format);
  },
};

/**
 * Names for statements whose texts are made elsewhere (pg-boss's) or from a shape (a history
 * page): one text always gets one name, so PostgreSQL parses and plans it once per connection.
 * Each namer has its own bound (past it, texts run unnamed, so a source of ever-new texts can't
 * grow this) and may name a text only once it has come `after` times, so that rare texts cannot
 * take the names first.
 */
export function statementNamer(prefix: string, max: number, after = 1): (text: string) => string | undefined {
  const names = new Map<string, string>();
  const sightings = new Map<string, number>();
  return (text) => {
    const name = names.get(text);
    if (name || names.size >= max) return name;
    if (after > 1) {
      if (sightings.size >= 1024) sightings.clear();
      const seen = (sightings.get(text) ?? 0) + 1;
      sightings.set(text, seen);
      if (seen < after) return undefined;
      sightings.delete(text);
    }
    const made = `${prefix}_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, made);
    return made;
  };
}

const pgBossStatement = statementNamer('sql', 64);

/** Runs SQL written elsewhere (pg-boss's) as a named statement. Parameters and results are passed through unchanged. */
export function prepared(client: pg.ClientBase, text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const name = pgBossStatement(text);
  return client.query(name ? { name, text, values } : { text, values });
}

/**
 * Whether an id cannot name a row because no id can hold it: NUL and unpaired surrogates, which
 * PostgreSQL refuses in text (the query would fail instead of finding nothing).
 */
export function namesNothing(id: string): boolean {
  return id.includes('\0') || !id.isWellFormed();
}

export interface TransactionOptions {
  /** How long any one statement of the transaction may run, or wait for a lock. */
  statementTimeoutMs: number;
  /** Taken first (pg_advisory_xact_lock on its hash) and held until the transaction ends. */
  lockKey: string;
}

/**
 * Runs `work` in a transaction on one pooled connection, holding an advisory lock on `lockKey`:
 * BEGIN and the lock, then COMMIT, or ROLLBACK when anything throws. The connection always goes
 * back to the pool (destroyed if it cannot roll back).
 */
export async function inLockedTransaction<T>(pool: pg.Pool, options: TransactionOptions, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  // Waiting for a free connection is bounded by the pool's connectionTimeoutMillis (src/db/client.ts).
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection that breaks while checked out emits 'error' (the pool listens to idle ones only),
  // and an unheard 'error' takes the process down. The statement in flight fails by itself; the
  // connection is then destroyed on release instead of going back to the pool.
  const onError = (error: Error) => (broken ??= error);
  client.on('error', onError);
  try {
    // One round trip for all three: a simple query may hold several statements (but no
    // parameters, hence the escaped literal), and SET LOCAL ends with the transaction.
    await client.query(
      `BEGIN; SET LOCAL statement_timeout = ${Math.trunc(options.statementTimeoutMs)}; ` +
        `SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(options.lockKey)}))`,
    );
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** A unique-constraint violation (SQLSTATE 23505) on the named constraint or unique index. */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  return error instanceof pg.DatabaseError && error.code === '23505' && error.constraint === constraint;
}

export function isForeignKeyViolation(error: unknown, constraint: string): boolean {
  return error instanceof pg.DatabaseError && error.code === '23503' && error.constraint === constraint;
}

// isUnavailableError against real failures of pg, pg-pool and Prisma's pg adapter: an outage is
// told apart from a fault of the statement.

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { GraphQLError } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/db/client.ts';
import { isUnavailableError } from '../src/db/unavailable.ts';
import { createTestDatabase } from './helpers/stack.ts';

let databaseUrl: string;
/** A port where nothing listens. */
let closedPort: number;
/** Accepts TCP connections and never says a word, like a database behind a dead link. */
let silent: Server;
const silentSockets = new Set<Socket>();

const failure = async (fn: () => Promise<unknown>): Promise<unknown> => {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
};

const urlOnPort = (port: number) => Object.assign(new URL(databaseUrl), { port: String(port) }).toString();

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
});

describe('isUnavailableError', () => {
  it('recognises a refused connection, from pg and through Prisma', async () => {
    const client = new pg.Client({ connectionString: urlOnPort(closedPort) });
    expect(isUnavailableError(await failure(() => client.connect()))).toBe(true);
    const db = createDb(urlOnPort(closedPort), { max: 1 });
    try {
      expect(isUnavailableError(await failure(() => db.generation.count()))).toBe(true);
      expect(isUnavailableError(await failure(() => db.$queryRaw`SELECT 1`))).toBe(true);
    } finally {
      await db.$disconnect().catch(() => {});
    }
  });

  it('recognises a pool checkout that timed out against a database that does not answer', async () => {
    const pool = new pg.Pool({ connectionString: urlOnPort((silent.address() as AddressInfo).port), connectionTimeoutMillis: 200 });
    pool.on('error', () => {});
    try {
      const error = await failure(() => pool.query('SELECT 1'));
      expect(String(error)).toMatch(/timeout/i);
      expect(isUnavailableError(error)).toBe(true);
    } finally {
      await pool.end().catch(() => {});
    }
  });

  it('recognises a connection the server terminated (57P01), and a client whose connection ended', async () => {
    const victim = new pg.Client({ connectionString: databaseUrl });
    const admin = new pg.Client({ connectionString: databaseUrl });
    victim.on('error', () => {});
    await Promise.all([victim.connect(), admin.connect()]);
    try {
      const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const pending = failure(() => victim.query('SELECT pg_sleep(30)'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const terminated = (await pending) as { code?: string };
      expect(terminated.code).toBe('57P01');
      expect(isUnavailableError(terminated)).toBe(true);
      expect(isUnavailableError(await failure(() => victim.query('SELECT 1')))).toBe(true);
    } finally {
      await admin.end();
      await victim.end().catch(() => {});
    }
  });

  it('does not mistake faults of a statement, or errors of other kinds, for an outage', async () => {
    const db = createDb(databaseUrl, { max: 1 });
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      expect(isUnavailableError(await failure(() => client.query('SELEC 1')))).toBe(false);
      expect(isUnavailableError(await failure(() => client.query('SELECT 1/0')))).toBe(false);
      expect(isUnavailableError(await failure(() => db.$queryRaw`SELECT * FROM no_such_table`))).toBe(false);
      expect(isUnavailableError(await failure(() => db.generation.findUniqueOrThrow({ where: { id: 'none' } })))).toBe(false);
    } finally {
      await client.end();
      await db.$disconnect();
    }
    expect(isUnavailableError(new Error('Unexpected error.'))).toBe(false);
    expect(isUnavailableError(new GraphQLError('Invalid global ID: garbage'))).toBe(false);
    expect(isUnavailableError(null)).toBe(false);
    expect(isUnavailableError('ECONNREFUSED')).toBe(false);
  });
});

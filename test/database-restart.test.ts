import { afterEach, describe, expect, it } from 'vitest';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startKillablePostgres } from './helpers/killable-postgres.ts';
import { startStack, submissions, waitForTerminal } from './helpers/stack.ts';

// PostgreSQL goes away (kill -9 of the postmaster) while Segmind's answer to a submit is on its
// way, and comes back a little later on the same port. The request_id of that billed job must be
// logged at once and saved once the database is back, and the generation must finish normally.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, attempts = 300) {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a database restart right after Segmind accepts a submit', () => {
  it('logs the request_id at once, saves it when the database is back, and succeeds with one submission', async () => {
    const postgres = await startKillablePostgres();
    cleanups.push(() => postgres.close());
    const stack = await startStack({ env: { DATABASE_URL: await postgres.createDatabase(), LOG_LEVEL: 'debug' } });
    cleanups.push(() => stack.close());

    // The fake creates (and bills) the job at once, and answers 2 s later.
    stack.segmind.faults.inject('submit', { kind: 'delay', ms: 2000 });
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'through a database restart' } });
    const extended = result.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    await waitUntil('Segmind to accept the job', () => stack.segmind.jobs().length === 1);
    const requestId = stack.segmind.jobs()[0]!.requestId;

    await postgres.kill();
    // The answer arrives while the database is down: the id is logged, and its save keeps failing.
    await waitUntil('a failed save of the request_id', () => stack.logs.some((line) => line.includes('could not record the request_id yet')));
    const logged = stack.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.find((entry) => entry.msg === 'submitted to Segmind')).toMatchObject({ requestId });
    await sleep(1500);
    await postgres.restart();

    const generation = await waitForTerminal(stack, extended.generation.id);
    expect(generation.status).toBe('SUCCEEDED');
    expect(generation.error).toBeNull();
    expect(generation.video!.byteSize).toBeGreaterThan(0);
    expect(submissions(stack)).toHaveLength(1);
    expect(stack.segmind.jobs()).toHaveLength(1);
  }, 90_000);
});

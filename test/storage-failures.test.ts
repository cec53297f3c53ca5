import { isTerminal } from '../src/generations/lifecycle.ts';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, GenerationDocument, type ExtendVideoInput } from './gql/graphql.ts';
import { FailingStorage } from './helpers/failing-storage.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

// Storage that cannot take a write (a full disk, a read-only or failing one, an object store that
// refuses) is STORAGE_UNAVAILABLE: retried with backoff within the deadline, visible on the
// generation as `retrying` while it waits, and never a reason to download or submit again.

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function extend(stack: Stack, input: Partial<ExtendVideoInput> = {}): Promise<string> {
  const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'storage trouble', ...input } });
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
  return extended.generation.id;
}

/** Polls generation(id) over GraphQL until it shows `retrying` with this code. */
async function waitForRetrying(stack: Stack, id: string, code: string) {
  let generation;
  for (let attempt = 0; attempt < 600; attempt++) {
    generation = (await stack.execute(GenerationDocument, { id })).data?.generation;
    if (generation?.retrying?.code === code) return generation;
    if (generation && isTerminal(generation.status)) throw new Error(`ended ${JSON.stringify(generation)}`);
    await sleep(50);
  }
  throw new Error(`generation ${id} never showed retrying ${code}: ${JSON.stringify(generation)}\n${stack.logs.filter((line) => line.includes('"level":40') || line.includes('"level":50')).slice(-5).join('\n')}`);
}

const outputGets = (stack: Stack) => stack.segmind.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/outputs/'));

describe('storage failures', () => {
  it('a storage that refuses writes is STORAGE_UNAVAILABLE while it lasts, then the kept download is stored: one submission, one download', async () => {
    let failing: FailingStorage | undefined;
    const stack = await startStack({ wrapStorage: (storage) => (failing = new FailingStorage(storage)) });
    cleanups.push(() => stack.close());
    failing!.failNextPuts(Infinity);
    const id = await extend(stack);

    const waiting = await waitForRetrying(stack, id, 'STORAGE_UNAVAILABLE');
    expect(waiting.status).toBe('RUNNING');
    expect(waiting.upstreamStatus).toBe('COMPLETED');
    expect(waiting.retrying!.message).toContain('the disk is full');
    expect(new Date(waiting.retrying!.retryAt).getTime()).toBeGreaterThan(Date.now() - 5000);
    // Wait for a further try, so that more than one put has failed.
    while (failing!.puts < 3) await sleep(20);

    failing!.failNextPuts(0);
    const done = await waitForTerminal(stack, id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.retrying).toBeNull();
    expect(done.error).toBeNull();
    expect(submissions(stack)).toHaveLength(1);
    // Every retry stored the finished download again; none fetched it again.
    expect(outputGets(stack)).toHaveLength(1);
    const bytes = Buffer.from(await (await fetch(done.video!.url)).arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(done.video!.sha256);
  });

  it('storage that stays unavailable until the deadline fails the generation as STORAGE_UNAVAILABLE', async () => {
    let failing: FailingStorage | undefined;
    const stack = await startStack({ env: { GENERATION_DEADLINE_MS: '3000' }, wrapStorage: (storage) => (failing = new FailingStorage(storage, 'EIO')) });
    cleanups.push(() => stack.close());
    failing!.failNextPuts(Infinity);
    const done = await waitForTerminal(stack, await extend(stack));
    expect(done.status).toBe('FAILED');
    expect(done.error!.code).toBe('STORAGE_UNAVAILABLE');
    expect(done.error!.message).toContain('deadline');
    expect(done.upstreamStatus).toBe('COMPLETED');
    expect(done.retrying).toBeNull();
    expect(failing!.puts).toBeGreaterThan(1);
    expect(outputGets(stack)).toHaveLength(1);
    // The kept download goes with the generation.
    expect(await readdir(join(stack.config.storageDir, '.tmp'))).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'a full disk (a 1 MB tmpfs under a 2.4 MB video) waits visibly, then resumes the download once there is room',
    async () => {
      const mountpoint = await mkdtemp(join(tmpdir(), 'extendql-full-disk-'));
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountpoint]);
      cleanups.push(() => rm(mountpoint, { recursive: true, force: true }));
      cleanups.push(() => run('umount', [mountpoint]));
      const stack = await startStack({ env: { STORAGE_DIR: mountpoint } });
      cleanups.push(() => stack.close());

      // 1080p, 5 s: the fake's MP4 is about 2.4 MB, more than the file system holds.
      const id = await extend(stack, { quality: 'Q1080P', duration: 5 });
      const waiting = await waitForRetrying(stack, id, 'STORAGE_UNAVAILABLE');
      expect(waiting.status).toBe('RUNNING');
      expect(waiting.retrying!.message).toContain('ENOSPC');
      expect(waiting.retrying!.message).not.toContain(mountpoint);

      await run('mount', ['-o', 'remount,size=32m', mountpoint]);
      const done = await waitForTerminal(stack, id);
      expect(done.status).toBe('SUCCEEDED');
      expect(done.retrying).toBeNull();
      expect(submissions(stack)).toHaveLength(1);
      // One download from the start; every later request only asked for the rest.
      const gets = outputGets(stack);
      expect(gets.filter((r) => !r.headers.range)).toHaveLength(1);
      expect(gets.slice(1).every((r) => /^bytes=\d+-$/.test(r.headers.range ?? ''))).toBe(true);

      const [job] = stack.segmind.jobs();
      const original = Buffer.from(await (await fetch(job!.outputUrl!)).arrayBuffer());
      expect(original.length).toBeGreaterThan(1024 * 1024);
      expect(done.video!.byteSize).toBe(original.length);
      expect(done.video!.sha256).toBe(createHash('sha256').update(original).digest('hex'));
      const stored = Buffer.from(await (await fetch(done.video!.url)).arrayBuffer());
      expect(stored.equals(original)).toBe(true);
      expect(await readdir(join(mountpoint, '.tmp'))).toEqual([]);
    },
    60_000,
  );
});

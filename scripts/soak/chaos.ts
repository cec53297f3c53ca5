import { execFileSync } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KillablePostgres } from '../lib/killable-postgres.ts';
import type { RedisServer } from '../../test/helpers/redis.ts';

/** A tmpfs of its own for the videos, so that the run can fill it. Root only. */
export async function mountSmallDisk(dir: string, size: string): Promise<{ unmount(): Promise<void> } | null> {
  if (process.getuid?.() !== 0) return null;
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return {
    async unmount() {
      execFileSync('umount', ['-l', dir]);
    },
  };
}

/** Writes a filler file until the filesystem is full; removing it frees the space again. */
async function fillDisk(dir: string): Promise<{ bytes: number; release(): Promise<void> }> {
  const path = join(dir, 'chaos-filler');
  const file = await open(path, 'w');
  const chunk = Buffer.alloc(4 * 1024 * 1024);
  let bytes = 0;
  try {
    for (;;) bytes += (await file.write(chunk)).bytesWritten;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await file.close().catch(() => {});
  }
  return { bytes, release: () => rm(path, { force: true }) };
}

export interface ChaosParts {
  postgres: KillablePostgres;
  redis: RedisServer;
  /** The videos' filesystem, when the run could mount one. */
  storageDir: string | null;
}

/** One thing done to the service, at a time relative to the first mutation. */
interface ChaosStep {
  atS: number;
  what: string;
  run(): Promise<void>;
}

const pause = (s: number) => new Promise((resolve) => setTimeout(resolve, s * 1000));

function steps(parts: ChaosParts, burst: () => Promise<void>): ChaosStep[] {
  const list: ChaosStep[] = [
    { atS: 2, what: 'a burst of hostile requests from a second API key', run: burst },
    { atS: 8, what: 'PostgreSQL killed with SIGKILL, started again 5 s later', run: async () => (await parts.postgres.kill(), await pause(5), await parts.postgres.start()) },
    { atS: 30, what: 'Redis killed with SIGKILL, started again 5 s later', run: async () => (await parts.redis.kill(), await pause(5), await parts.redis.restart()) },
    { atS: 70, what: 'PostgreSQL killed with SIGKILL, started again 10 s later', run: async () => (await parts.postgres.kill(), await pause(10), await parts.postgres.start()) },
  ];
  const storage = parts.storageDir;
  if (storage) {
    list.push({
      atS: 45,
      what: 'the video storage filled up (ENOSPC) for 15 s',
      run: async () => {
        const filler = await fillDisk(storage);
        await pause(15);
        await filler.release();
      },
    });
  }
  return list.sort((a, b) => a.atS - b.atS);
}

/** Runs the chaos timeline; resolves with a line per step, saying when it began and ended. */
export async function runChaos(parts: ChaosParts, burst: () => Promise<void>): Promise<string[]> {
  const started = Date.now();
  const log: string[] = [];
  await Promise.all(
    steps(parts, burst).map(async (step) => {
      await pause(step.atS);
      const began = (Date.now() - started) / 1000;
      console.log(`chaos at ${began.toFixed(0)} s: ${step.what}`);
      await step.run();
      log.push(`${began.toFixed(0)}–${((Date.now() - started) / 1000).toFixed(0)} s: ${step.what}`);
    }),
  );
  if (!parts.storageDir) log.push('the storage was not filled: filling it needs a tmpfs, which only root can mount');
  return log.sort((a, b) => parseFloat(a) - parseFloat(b));
}

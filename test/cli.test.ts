import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenerationDocument, GenerationsDocument } from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

/** The checkout: `npx extendql` resolves the root package's own bin from here. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'extendql.mjs');
const SOURCE_URL = 'https://videos.example/clip.mp4';
const LONG_PROMPT = `and then night falls${', very slowly'.repeat(10)}`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let stack: Stack;
let dir: string;
/** Everything any CLI run printed, checked for API keys at the end. */
const printed: string[] = [];
const wrongKey = `xq_${'W'.repeat(43)}`;

/**
 * Runs the real CLI in a child process: `npx extendql …` from the checkout (the documented
 * invocation), `node bin/extendql.mjs …` from elsewhere, or under a pseudo-terminal (`script`).
 * The environment is this one without EXTENDQL_*, plus `env`; the node running the tests comes
 * first on PATH so that npx and the launcher run on it.
 */
function cli(
  args: string[],
  options: { env?: Record<string, string | undefined>; via?: 'npx' | 'node' | 'tty'; cwd?: string; interruptOn?: RegExp } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('EXTENDQL_') && name !== 'PATH') env[name] = value;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const via = options.via ?? 'node';
  const [command, argv] =
    via === 'npx'
      ? ['npx', ['extendql', ...args]]
      : via === 'node'
        ? [process.execPath, [BIN, ...args]]
        : ['script', ['-qec', [process.execPath, BIN, ...args].map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' '), '/dev/null']];
  const child = spawn(command, argv, { cwd: via === 'npx' ? ROOT : (options.cwd ?? dir), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    // Ctrl-C, as soon as the output shows it is time.
    if (options.interruptOn?.test(stdout)) {
      options.interruptOn = undefined;
      child.kill('SIGINT');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI against the test stack, with its API key from the environment. */
const extendql = (args: string[], options: Parameters<typeof cli>[1] = {}) =>
  cli(args, { ...options, env: { EXTENDQL_URL: stack.graphqlUrl, EXTENDQL_API_KEY: stack.key, ...options.env } });

const generationCount = async () => (await stack.execute(GenerationsDocument, { first: 1 })).data!.generations.totalCount;

/** The bytes at `path` are an MP4 and exactly the video the API describes and serves. */
async function expectStoredVideo(path: string, id: string) {
  const generation = (await stack.execute(GenerationDocument, { id })).data!.generation!;
  expect(generation.status).toBe('SUCCEEDED');
  const bytes = await readFile(path);
  expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(generation.video!.sha256);
  const served = Buffer.from(await (await fetch(generation.video!.url)).arrayBuffer());
  expect(bytes.equals(served)).toBe(true);
  return generation;
}

beforeAll(async () => {
  // A slow fake Segmind, so that a run goes through several states worth showing.
  stack = await startStack({ segmind: { queueMs: 600, processingMs: 1200 } });
  dir = await mkdtemp(join(tmpdir(), 'extendql-cli-'));
});

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('extendql CLI', () => {
  const created: string[] = [];

  it('`npx extendql --help` runs this checkout’s bin', async () => {
    const run = await cli(['--help'], { via: 'npx' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('extendql extend (--video-url <url> | --source <generationId>)');
    expect(run.stdout).toContain('extendql history');
  });

  it('extends a video with live progress and saves the MP4 the server stores', async () => {
    const out = join(dir, 'first.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'waves roll in', '--quality', 'q360p', '--out', out], { via: 'npx' });
    expect(run.stderr.replace(/^npm warn .*\n/gm, '')).toBe('');
    expect(run.code).toBe(0);

    const id = /^Generation (\S+) accepted: Q360P, 5s, NORMAL motion$/m.exec(run.stdout)![1]!;
    created.push(id);
    // Not a terminal: one line per change of status, in order, from the subscription.
    const progress = run.stdout.split('\n').filter((line) => line.startsWith('['));
    expect(progress.length).toBeGreaterThanOrEqual(4);
    expect(progress[0]).toMatch(/^\[-{20}\] QUEUED /);
    // Submitted (Segmind's QUEUED is not announced on its own), then generating, then done.
    expect(progress.some((line) => /\] RUNNING +(submitting to Segmind|Segmind QUEUED) +\d+\.\ds$/.test(line))).toBe(true);
    expect(progress.some((line) => /\] RUNNING +Segmind PROCESSING +\d+\.\ds$/.test(line))).toBe(true);
    expect(progress.at(-1)).toMatch(/^\[#{20}\] SUCCEEDED +Segmind COMPLETED +\d+\.\ds$/);
    const elapsed = progress.map((line) => Number(/(\d+\.\d)s$/.exec(line)![1]));
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b));
    expect(elapsed.at(-1)).toBeGreaterThanOrEqual(1.8);
    expect(run.stdout).not.toContain('\r');

    const generation = await expectStoredVideo(out, id);
    expect(run.stdout).toContain(`Saved ${out}: `);
    expect(run.stdout).toContain(`sha256 ${generation.video!.sha256}`);
    // Nothing but the MP4 is left behind.
    expect(await readdir(dir)).toEqual(['first.mp4']);
  });

  it('chains with --source, from any working directory, with --json output', async () => {
    const out = join(dir, 'second.mp4');
    const run = await extendql(['extend', '--source', created[0]!, '--prompt', LONG_PROMPT, '--seed', '7', '--out', out, '--json'], {
      cwd: tmpdir(),
    });
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { generation: { id: string; status: string }; file: { path: string; bytes: number; sha256: string } };
    expect(result.generation.status).toBe('SUCCEEDED');
    expect(result.file.path).toBe(out);
    created.push(result.generation.id);
    const generation = await expectStoredVideo(out, result.generation.id);
    expect(generation.source).toEqual({ id: created[0] });
    expect(generation.seed).toBe(7);
    expect(result.file).toEqual({ path: out, bytes: generation.video!.byteSize, sha256: generation.video!.sha256 });
    // With --json, progress goes to stderr and stdout is the result alone.
    expect(run.stderr).toMatch(/SUCCEEDED/);
  });

  // util-linux's `script` runs the CLI on a real pseudo-terminal.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('shows a single redrawn progress line on a terminal', async () => {
    const out = join(dir, 'tty.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'on a terminal', '--out', out], { via: 'tty' });
    expect(run.code).toBe(0);
    const id = /Generation (\S+) accepted/.exec(run.stdout)![1]!;
    created.push(id);
    await expectStoredVideo(out, id);
    // Progress is redrawn in place: carriage returns, one final line, no line per update.
    const redraws = run.stdout.split('\r').length - 1;
    expect(redraws).toBeGreaterThan(5);
    expect(run.stdout).toMatch(/\r[|/\\-] \[-{20}\] QUEUED /);
    expect(run.stdout).toMatch(/RUNNING +Segmind PROCESSING/);
    const lines = run.stdout.replace(/\r\n/g, '\n').split('\n').filter(Boolean);
    expect(lines).toHaveLength(3); // accepted, the progress line (its final state), saved
    expect(lines[2]).toContain(`Saved ${out}`);
  });

  it('prints the InvalidInputError and its field, exits non-zero and creates nothing', async () => {
    const before = { generations: await generationCount(), submissions: submissions(stack).length };
    const out = join(dir, 'invalid.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'too long', '--duration', '8', '--quality', 'Q1080P', '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('InvalidInputError: input.duration: Q1080P quality requires a duration of 5 seconds');
    expect(run.stderr).toContain('--duration (input.duration): Q1080P quality requires a duration of 5 seconds');
    expect(run.stdout).toBe('');

    const json = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'too long', '--duration', '8', '--quality', 'Q1080P', '--out', out, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      error: {
        type: 'InvalidInputError',
        message: 'input.duration: Q1080P quality requires a duration of 5 seconds',
        fields: [{ path: ['input', 'duration'], message: 'Q1080P quality requires a duration of 5 seconds' }],
      },
    });
    expect(await generationCount()).toBe(before.generations);
    expect(submissions(stack)).toHaveLength(before.submissions);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it('exits non-zero with the error code and message of a FAILED generation', async () => {
    stack.segmind.failNextJob('Source video could not be decoded');
    const out = join(dir, 'failed.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'this one fails', '--out', out]);
    expect(run.code).toBe(1);
    const id = /^Generation (\S+) accepted/m.exec(run.stdout)![1]!;
    created.push(id);
    expect(run.stdout).toMatch(/^\[#{20}\] FAILED /m);
    expect(run.stderr).toBe(`extendql: Generation ${id} FAILED: GENERATION_FAILED: Source video could not be decoded (Segmind HTTP 422)\n`);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it('says clearly when the API key is missing or wrong, and never prints it', async () => {
    const missing = await extendql(['history'], { env: { EXTENDQL_API_KEY: undefined } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      'extendql: An API key is required: pass --api-key <key> or set EXTENDQL_API_KEY (an operator creates one with `npm run apikey:create -- --name <name>`)\n',
    );

    const before = await generationCount();
    const wrong = await extendql(['extend', '--api-key', wrongKey, '--video-url', SOURCE_URL, '--prompt', 'x', '--out', join(dir, 'nope.mp4')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe('extendql: The server rejected the API key (unknown or revoked): check --api-key or EXTENDQL_API_KEY\n');
    expect(await generationCount()).toBe(before);

    // An unknown option echoes nothing secret either.
    const usage = await extendql(['history', `--api-key=${stack.key}`, '--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("Unknown option '--bogus'");
  });

  it('stops on Ctrl-C, saying which generation goes on', async () => {
    const out = join(dir, 'interrupted.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'interrupted', '--out', out], { interruptOn: /\] RUNNING / });
    expect(run.code).toBe(130);
    const id = /^Generation (\S+) accepted/m.exec(run.stdout)![1]!;
    created.push(id);
    expect(run.stderr).toBe(`extendql: Interrupted; generation ${id} continues on the server (\`extendql history\` shows how it ends)\n`);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
    await waitForTerminal(stack, id);
  });

  it('lists recent generations as a table, with --first and --status', async () => {
    const run = await extendql(['history'], { via: 'npx' });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +STATUS +DURATION +QUALITY +CREATED \(UTC\) +PROMPT$/);
    expect(lines.at(-1)).toBe(`${created.length} of ${created.length} generations`);
    // Newest first, one row each.
    const rows = lines.slice(1, -1);
    expect(rows.map((row) => row.split(/ +/)[0])).toEqual([...created].reverse());
    expect(rows.at(-1)).toMatch(/^\S+ +SUCCEEDED +5s +Q360P +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +waves roll in$/);
    expect(rows[0]).toMatch(/ SUCCEEDED +5s +Q540P .* interrupted$/);
    expect(rows[1]).toMatch(/ FAILED +5s +Q540P .* this one fails$/);

    const failed = await extendql(['history', '--status', 'failed']);
    const failedId = created.at(-2);
    expect(failed.stdout.trimEnd().split('\n').slice(1, -1).map((row) => row.split(/ +/)[0])).toEqual([failedId]);
    expect(failed.stdout).toContain('1 of 1 FAILED generations');

    const first = await extendql(['history', '--first', '1', '--json']);
    const json = JSON.parse(first.stdout) as { totalCount: number; generations: { id: string; prompt: string }[] };
    expect(json.totalCount).toBe(created.length);
    expect(json.generations.map((g) => g.id)).toEqual([created.at(-1)]);

    // Long prompts are cut short.
    const chained = rows.find((row) => row.startsWith(`${created[1]} `))!;
    expect(chained).toMatch(/ and then night falls, very slowly, .*…$/);
    expect(chained.length).toBeLessThan(created[1]!.length + LONG_PROMPT.length);
  });

  it('never prints an API key', () => {
    expect(printed.length).toBeGreaterThan(10);
    for (const output of printed) {
      expect(output).not.toContain(stack.key);
      expect(output).not.toContain(wrongKey);
    }
  });
});

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadCutShort, downloadVideo, partialPath } from '../src/cli/download.ts';
import { GenerationDocument, GenerationsDocument } from './gql/graphql.ts';
import { runCli, type CliOptions, type Run } from './helpers/cli.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

const SOURCE_URL = 'https://videos.example/clip.mp4';
const LONG_PROMPT = `and then night falls${', very slowly'.repeat(10)}`;

let stack: Stack;
let dir: string;
/** Everything any CLI run printed, checked for API keys at the end. */
const printed: string[] = [];
const wrongKey = `xq_${'W'.repeat(43)}`;

/** The real CLI in a child process (see runCli), from `dir` unless told otherwise. */
async function cli(args: string[], options: Partial<CliOptions> = {}): Promise<Run> {
  const run = await runCli(args, { cwd: dir, ...options });
  printed.push(run.stdout, run.stderr);
  return run;
}

/** The CLI against the test stack, with its API key from the environment. */
const extendql = (args: string[], options: Partial<CliOptions> = {}) =>
  cli(args, { ...options, env: { EXTENDQL_URL: stack.graphqlUrl, EXTENDQL_API_KEY: stack.key, ...options.env } });

const generationCount = async () => (await stack.execute(GenerationsDocument, { first: 1 })).data!.generations.totalCount;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const generationOf = async (id: string) => (await stack.execute(GenerationDocument, { id })).data!.generation!;

/** The bytes at `path` are an MP4 and exactly the video the API describes and serves. */
async function expectStoredVideo(path: string, id: string) {
  const generation = await generationOf(id);
  expect(generation.status).toBe('SUCCEEDED');
  const bytes = await readFile(path);
  expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
  expect(sha256(bytes)).toBe(generation.video!.sha256);
  const served = Buffer.from(await (await fetch(generation.video!.url)).arrayBuffer());
  expect(bytes.equals(served)).toBe(true);
  return generation;
}

/** The access-log lines of requests for one path (each with its status). */
const requestsFor = (path: string) =>
  stack.logs.map((line) => JSON.parse(line) as { msg: string; path?: string; status?: number }).filter((line) => line.msg === 'request' && line.path === path);

/** requestsFor, once no new line has come for a while: a line is written when its response has closed. */
async function settledRequestsFor(path: string) {
  for (let seen = -1; ; ) {
    const now = requestsFor(path).length;
    if (now === seen) return requestsFor(path);
    seen = now;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
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
  /** Every generation the CLI created, oldest first, and what became of it. */
  const created: { id: string; prompt: string; status: string }[] = [];
  const idOf = (run: Run) => /^Generation (\S+) accepted/m.exec(run.stdout)![1]!;

  it('`npx extendql --help` runs this checkout’s bin and lists every command; help and usage errors come as JSON with --json', async () => {
    const run = await cli(['--help'], { via: 'npx' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('extendql extend (--video-url <url> | --source <generationId> | --video <file>)');
    for (const command of ['history', 'download <generationId>', 'cancel <generationId>']) expect(run.stdout).toContain(`extendql ${command}`);

    const help = await cli(['cancel', '--help', '--json']);
    expect(help.code).toBe(0);
    expect((JSON.parse(help.stdout) as { help: string }).help).toMatch(/^extendql cancel: stop a QUEUED or RUNNING generation/);

    const usage = await cli(['download', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toEqual({ error: { type: 'UsageError', message: 'Give one generation id: extendql download <generationId>' } });
  });

  it('extends a video with live progress and saves the MP4 the server stores', async () => {
    const out = join(dir, 'first.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'waves roll in', '--quality', 'q360p', '--out', out], { via: 'npx' });
    expect(run.stderr.replace(/^npm warn .*\n/gm, '')).toBe('');
    expect(run.code).toBe(0);

    const id = /^Generation (\S+) accepted: Q360P, 5s, NORMAL motion$/m.exec(run.stdout)![1]!;
    created.push({ id, prompt: 'waves roll in', status: 'SUCCEEDED' });
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

    // An existing --out is kept, unless --force; nothing is spent on a refused run.
    const before = submissions(stack).length;
    const again = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'waves roll in', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`extendql: ${out} exists; pass --force to replace it, or choose another --out\n`);
    expect(submissions(stack)).toHaveLength(before);
  });

  it('chains with --source, from any working directory, with --json output', async () => {
    const out = join(dir, 'second.mp4');
    const run = await extendql(['extend', '--source', created[0]!.id, '--prompt', LONG_PROMPT, '--seed', '7', '--out', out, '--json'], { cwd: tmpdir() });
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { generation: { id: string; status: string }; file: { path: string; bytes: number; sha256: string } };
    expect(result.generation.status).toBe('SUCCEEDED');
    created.push({ id: result.generation.id, prompt: LONG_PROMPT, status: 'SUCCEEDED' });
    const generation = await expectStoredVideo(out, result.generation.id);
    expect(generation.source).toEqual({ id: created[0]!.id });
    expect(generation.seed).toBe(7);
    expect(result.file).toEqual({ path: out, bytes: generation.video!.byteSize, sha256: generation.video!.sha256, resumedFrom: 0, alreadyComplete: false });
    // With --json, progress goes to stderr and stdout is the result alone.
    expect(run.stderr).toMatch(/SUCCEEDED/);
  });

  it('uploads a local file with --video, streamed with its own progress, and extends it', async () => {
    const sample = Buffer.from(await (await fetch(`${stack.app.url}/samples/beach.mp4`)).arrayBuffer());
    const source = join(dir, 'my clip.mp4');
    await writeFile(source, sample);
    const out = join(dir, 'uploaded.mp4');
    const run = await extendql(['extend', '--video', source, '--prompt', 'from my disk', '--out', out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    // The upload is announced before the generation exists.
    expect(lines[0]).toMatch(/^Uploading \d+\.\d (KB|MB)$/);
    expect(lines[1]).toMatch(/^Generation \S+ accepted: Q540P, 5s, NORMAL motion$/);
    const id = idOf(run);
    created.push({ id, prompt: 'from my disk', status: 'SUCCEEDED' });
    const generation = await expectStoredVideo(out, id);
    // The server stored exactly the file on disk, and extended that.
    expect(generation.sourceVideoUrl).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]+\\.mp4$`));
    expect(sha256(new Uint8Array(await (await fetch(generation.sourceVideoUrl)).arrayBuffer()))).toBe(sha256(sample));

    const missing = await extendql(['extend', '--video', join(dir, 'nope.mp4'), '--prompt', 'x', '--out', join(dir, 'never.mp4')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`extendql: --video ${join(dir, 'nope.mp4')}: no such file\n`);
  });

  // util-linux's `script` runs the CLI on a real pseudo-terminal.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('shows a single redrawn progress line on a terminal, for an upload too', async () => {
    const out = join(dir, 'tty.mp4');
    const run = await extendql(['extend', '--video', join(dir, 'my clip.mp4'), '--prompt', 'on a terminal', '--out', out], { via: 'tty' });
    expect(run.code).toBe(0);
    const id = idOf(run);
    created.push({ id, prompt: 'on a terminal', status: 'SUCCEEDED' });
    await expectStoredVideo(out, id);
    // Progress is redrawn in place: carriage returns, one final line per phase, no line per update.
    const redraws = run.stdout.split('\r').length - 1;
    expect(redraws).toBeGreaterThan(5);
    expect(run.stdout).toMatch(/\r[|/\\-] \[#{20}\] uploading (\S+ \S+) of \1/);
    expect(run.stdout).toMatch(/\r[|/\\-] \[-{20}\] QUEUED /);
    expect(run.stdout).toMatch(/RUNNING +Segmind PROCESSING/);
    const lines = run.stdout.replace(/\r\n/g, '\n').split('\n').filter(Boolean);
    expect(lines).toHaveLength(4); // the upload's line, accepted, the progress line (its final state), saved
    expect(lines[0]).toMatch(/ {2}\[#{20}\] uploading /);
    expect(lines[3]).toContain(`Saved ${out}`);
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
    const id = idOf(run);
    created.push({ id, prompt: 'this one fails', status: 'FAILED' });
    expect(run.stdout).toMatch(/^\[#{20}\] FAILED /m);
    expect(run.stderr).toBe(`extendql: Generation ${id} FAILED: GENERATION_FAILED: Source video could not be decoded (Segmind HTTP 422)\n`);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);

    const download = await extendql(['download', id, '--json']);
    expect(download.code).toBe(1);
    expect(JSON.parse(download.stdout)).toMatchObject({ error: { type: 'GenerationFailed', generation: { id, status: 'FAILED' } } });
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

  it('stops on Ctrl-C, saying which generation goes on and how to fetch or stop it', async () => {
    const out = join(dir, 'interrupted.mp4');
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'interrupted', '--out', out], {
      when: { pattern: /\] RUNNING /, then: (child) => child.kill('SIGINT') },
    });
    expect(run.code).toBe(130);
    const id = idOf(run);
    created.push({ id, prompt: 'interrupted', status: 'SUCCEEDED' });
    expect(run.stderr).toBe(
      `extendql: Interrupted; generation ${id} continues on the server: \`extendql download ${id} --out ${out}\` saves it once it is done, \`extendql cancel ${id}\` stops it\n`,
    );
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
    await waitForTerminal(stack, id);

    // What it said to run saves the video.
    const later = await extendql(['download', id, '--out', out]);
    expect(later.code).toBe(0);
    await expectStoredVideo(out, id);
  });

  it('cancels a generation in flight (the extend following it says so), harmlessly again, and explains what cannot be canceled', async () => {
    let canceling: Promise<Run> | undefined;
    // While the extend follows the generation, a second CLI cancels it.
    const run = await extendql(['extend', '--video-url', SOURCE_URL, '--prompt', 'canceled midway', '--out', join(dir, 'canceled.mp4')], {
      when: { pattern: /\] RUNNING /, then: (_child, stdout) => void (canceling = extendql(['cancel', /^Generation (\S+) accepted/m.exec(stdout)![1]!])) },
    });
    const id = idOf(run);
    created.push({ id, prompt: 'canceled midway', status: 'CANCELED' });
    const cancel = await canceling!;
    expect(cancel.stdout).toBe(`Generation ${id} is CANCELED\n`);
    expect(cancel.code).toBe(0);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`extendql: Generation ${id} ended CANCELED without a video\n`);
    expect((await generationOf(id)).status).toBe('CANCELED');

    const again = await extendql(['cancel', id, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ generation: { id, status: 'CANCELED' } });

    const finished = await extendql(['cancel', created[0]!.id, '--json']);
    expect(finished.code).toBe(1);
    expect(JSON.parse(finished.stdout)).toEqual({ error: { type: 'NotCancelableError', id: created[0]!.id, status: 'SUCCEEDED', message: expect.stringMatching(/SUCCEEDED/) } });
    expect(finished.stderr).toMatch(/^extendql: NotCancelableError: .*SUCCEEDED/);

    const unknown = await extendql(['cancel', 'R2VuZXJhdGlvbjowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^extendql: NotFoundError: /);
  });

  describe('download', () => {
    let video: { url: string; byteSize: number; sha256: string };
    let bytes: Buffer;
    let where: string;
    beforeAll(async () => {
      video = (await generationOf(created[0]!.id)).video!;
      bytes = Buffer.from(await (await fetch(video.url)).arrayBuffer());
      where = new URL(video.url).pathname;
      await mkdir(join(dir, 'downloads'));
    });
    const inDownloads = (name: string) => join(dir, 'downloads', name);

    it('saves a SUCCEEDED generation’s video under the name in its URL, checked, and leaves a file that already is it alone', async () => {
      const run = await extendql(['download', created[0]!.id], { cwd: join(dir, 'downloads') });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const name = basename(where);
      expect(run.stdout).toContain(`Downloading `);
      expect(run.stdout).toContain(`Saved ${name}: `);
      await expectStoredVideo(inDownloads(name), created[0]!.id);

      const fetched = (await settledRequestsFor(where)).length;
      const again = await extendql(['download', created[0]!.id, '--json'], { cwd: join(dir, 'downloads') });
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ file: { path: inDownloads(name), bytes: video.byteSize, sha256: video.sha256, alreadyComplete: true } });
      expect(await settledRequestsFor(where)).toHaveLength(fetched);
    });

    it('resumes a truncated file with a Range request and checks the whole', async () => {
      const out = inDownloads('truncated.mp4');
      const kept = Math.floor(bytes.length / 3);
      await writeFile(out, bytes.subarray(0, kept));
      const run = await extendql(['download', created[0]!.id, '--out', out, '--json']);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ file: { path: out, bytes: video.byteSize, sha256: video.sha256, resumedFrom: kept, alreadyComplete: false } });
      expect(run.stderr).toMatch(/^Resuming the download at \S+ KB of \S+ KB$/m);
      expect((await settledRequestsFor(where)).at(-1)!.status).toBe(206);
      expect((await readFile(out)).equals(bytes)).toBe(true);
      expect(await readdir(join(dir, 'downloads'))).not.toContainEqual(expect.stringMatching(/\.part$/));
    });

    it('resumes its own partial file from a download that was cut short', async () => {
      const out = inDownloads('cut.mp4');
      await writeFile(partialPath(out, video.sha256), bytes.subarray(0, 1000));
      const run = await extendql(['download', created[0]!.id, '--out', out]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Resuming the download at 1000 B of /m);
      expect((await readFile(out)).equals(bytes)).toBe(true);
      await expect(readFile(partialPath(out, video.sha256))).rejects.toThrow(/ENOENT/);
    });

    it('keeps what a cut connection delivered, and resumes it with a Range request', async () => {
      // A server that cuts the first response short and honours Range after that.
      const ranges: (string | undefined)[] = [];
      const server = createServer((req, res) => {
        ranges.push(req.headers.range);
        const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        if (ranges.length === 1) {
          res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'video/mp4' });
          // Once the client has had the first bytes, the connection goes away.
          res.write(bytes.subarray(0, 5000), () => setTimeout(() => res.destroy(), 100));
          return;
        }
        res.writeHead(from ? 206 : 200, { 'content-length': bytes.length - from, ...(from && { 'content-range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` }) });
        res.end(bytes.subarray(from));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const cut = { ...video, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cut.mp4` };
        const out = inDownloads('cut-connection.mp4');
        const options = { base: new URL(stack.graphqlUrl), signal: new AbortController().signal, force: false, onProgress: () => {} };
        const error = await downloadVideo(cut, out, options).catch((e: unknown) => e);
        expect(error, String(error)).toBeInstanceOf(DownloadCutShort);
        expect((await readFile(partialPath(out, video.sha256))).equals(bytes.subarray(0, 5000))).toBe(true);
        await expect(readFile(out)).rejects.toThrow(/ENOENT/);

        const file = await downloadVideo(cut, out, options);
        expect(file).toEqual({ path: out, bytes: bytes.length, sha256: video.sha256, resumedFrom: 5000, alreadyComplete: false });
        expect(ranges).toEqual([undefined, 'bytes=5000-']);
        expect((await readFile(out)).equals(bytes)).toBe(true);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('keeps a different file unless --force, even one shorter than the video', async () => {
      for (const other of [randomBytes(bytes.length + 10), randomBytes(1000)]) {
        const out = inDownloads(`other-${other.length}.mp4`);
        await writeFile(out, other);
        const run = await extendql(['download', created[0]!.id, '--out', out, '--json']);
        expect(run.code).toBe(1);
        expect(JSON.parse(run.stdout)).toEqual({ error: { type: 'FileExists', path: out, message: `${out} exists (${other.length} bytes) and is not this video; pass --force to replace it` } });
        expect((await readFile(out)).equals(other)).toBe(true);

        const forced = await extendql(['download', created[0]!.id, '--out', out, '--force']);
        expect(forced.code).toBe(0);
        expect((await readFile(out)).equals(bytes)).toBe(true);
      }
      expect(await readdir(join(dir, 'downloads'))).not.toContainEqual(expect.stringMatching(/\.part$/));
    });

    it('refuses a download whose SHA-256 differs from the API’s, and keeps nothing of it', async () => {
      // The stored MP4 of the chained generation changes behind the API's back (same size, one byte).
      const chained = (await generationOf(created[1]!.id)).video!;
      const stored = join(stack.config.storageDir, basename(new URL(chained.url).pathname));
      const original = await readFile(stored);
      const tampered = Buffer.from(original);
      const middle = tampered.length >> 1;
      tampered.writeUInt8(tampered.readUInt8(middle) ^ 0xff, middle);
      await writeFile(stored, tampered);
      try {
        const out = inDownloads('tampered.mp4');
        const run = await extendql(['download', created[1]!.id, '--out', out, '--json']);
        expect(run.code).toBe(1);
        const { error } = JSON.parse(run.stdout) as { error: { type: string; message: string } };
        expect(error.type).toBe('ChecksumMismatch');
        expect(error.message).toBe(`Downloading ${chained.url} failed: its SHA-256 is ${sha256(tampered)}, expected ${chained.sha256}`);
        await expect(readFile(out)).rejects.toThrow(/ENOENT/);
        expect(await readdir(join(dir, 'downloads'))).not.toContainEqual(expect.stringMatching(/tampered/));
      } finally {
        await writeFile(stored, original);
      }
    });
  });

  it('lists recent generations as a table with cost and URL, with --first and --status', async () => {
    const run = await extendql(['history'], { via: 'npx' });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +STATUS +DURATION +QUALITY +COST +CREATED \(UTC\) +PROMPT +URL$/);
    expect(lines.at(-1)).toMatch(new RegExp(`^${created.length} of ${created.length} generations`));
    // Newest first, one row each.
    const rows = lines.slice(1, -1);
    expect(rows.map((row) => row.split(/ +/)[0])).toEqual(created.map((c) => c.id).reverse());
    const rowOf = (id: string) => rows.find((row) => row.startsWith(`${id} `))!;
    for (const generation of created) {
      const video = (await generationOf(generation.id)).video;
      expect(rowOf(generation.id)).toMatch(new RegExp(` ${generation.status} +5s `));
      if (generation.status === 'SUCCEEDED') expect(rowOf(generation.id).endsWith(` ${video!.url}`)).toBe(true);
      else expect(rowOf(generation.id)).toMatch(/ -$/);
    }
    expect(rowOf(created[0]!.id)).toMatch(/ SUCCEEDED +5s +Q360P +~?\$\d\.\d\d\d? +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +waves roll in +http/);

    const failed = await extendql(['history', '--status', 'failed']);
    const failedIds = created.filter((c) => c.status === 'FAILED').map((c) => c.id);
    expect(failed.stdout.trimEnd().split('\n').slice(1, -1).map((row) => row.split(/ +/)[0])).toEqual(failedIds);
    expect(failed.stdout).toContain('1 of 1 FAILED generations');

    const first = await extendql(['history', '--first', '1', '--json']);
    const json = JSON.parse(first.stdout) as { totalCount: number; generations: { id: string; cost: number | null; estimatedCost: number; video: { url: string } | null }[] };
    expect(json.totalCount).toBe(created.length);
    expect(json.generations.map((g) => g.id)).toEqual([created.at(-1)!.id]);
    expect(json.generations[0]!.estimatedCost).toBeGreaterThan(0);

    // Long prompts are cut short; the URL after them is whole.
    const chained = rowOf(created[1]!.id);
    expect(chained).toMatch(/ and then night falls, very slowly, .*… +http:\/\/\S+\.mp4$/);
  });

  it('never prints an API key', () => {
    expect(printed.length).toBeGreaterThan(10);
    for (const output of printed) {
      expect(output).not.toContain(stack.key);
      expect(output).not.toContain(wrongKey);
    }
  });
});

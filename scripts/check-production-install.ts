// Proves the container image's recipe without a docker engine: replays the Dockerfile's stages on
// a scratch copy of the repository (the tracked files, minus .dockerignore), each stage in its own
// directory standing in for the image's filesystem: COPY copies, RUN runs (except steps marked
// `# image only`), ENV is kept. Then it starts the runtime stage's ENTRYPOINT + CMD with the
// embedded PostgreSQL and the simulator, waits for /health, runs the HEALTHCHECK command, sends
// SIGTERM and expects exit 0; and the same for compose.yaml's worker command.
//
//   node scripts/check-production-install.ts      (KEEP_SCRATCH=1 keeps the copy)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { dockerIgnored, envOf, execForm, last, parseDockerfile, parseDockerignore, type Stage } from './lib/dockerfile.ts';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
/** PostgreSQL refuses root; the image runs as `node`. As root, the replay runs the app as nobody. */
const NOBODY = 65534;
/** Started processes, killed if the check fails half-way. */
const running = new Set<ChildProcess>();

interface Replayed {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
}

const started = Date.now();
const elapsed = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const say = (message: string) => console.log(`[check-production-install ${elapsed(started)}] ${message}`);

async function main(): Promise<void> {
  const stages = parseDockerfile(await readFile(join(repo, 'Dockerfile'), 'utf8'));
  const compose = parse(await readFile(join(repo, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { command?: string[] }>;
  };
  const scratch = await mkdtemp(join(tmpdir(), 'extendql-install-'));
  await chmod(scratch, 0o755);
  try {
    const context = await buildContext(join(scratch, 'context'));
    const roots = new Map<string, string>();
    let runtime: Replayed | undefined;
    for (const stage of stages) {
      runtime = await replayStage(stage, context, roots, scratch);
      roots.set(stage.name, runtime.root);
    }
    const final = stages.at(-1)!;
    await reportDevDependencies(runtime!);
    const entrypoint = execForm(last(final, 'ENTRYPOINT')?.args ?? '[]');
    const cmd = execForm(last(final, 'CMD')!.args);
    const app = await appEnvironment(runtime!, scratch);
    await checkServer(runtime!, app, [...entrypoint, ...cmd], healthcheckCommand(final));
    const worker = compose.services.worker?.command;
    if (!worker) throw new Error('compose.yaml: the worker service has no command');
    await checkWorker(runtime!, app, [...entrypoint, ...worker]);
    say(`production install checked in ${elapsed(started)}`);
  } finally {
    for (const child of running) child.kill('SIGKILL');
    if (process.env.KEEP_SCRATCH) say(`scratch copy kept in ${scratch}`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

/** The build context: the repository's tracked files, as docker would see them after .dockerignore. */
async function buildContext(dir: string): Promise<string> {
  const ignore = parseDockerignore(await readFile(join(repo, '.dockerignore'), 'utf8'));
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: repo, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  const files = listed.stdout.split('\0').filter((f) => f && !dockerIgnored(ignore, f));
  for (const file of files) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await cp(join(repo, file), join(dir, file), { verbatimSymlinks: true });
  }
  say(`build context: ${files.length} tracked files`);
  return dir;
}

async function replayStage(stage: Stage, context: string, roots: Map<string, string>, scratch: string): Promise<Replayed> {
  const state: Replayed = { root: join(scratch, `stage-${stage.name}`), workdir: '/', env: {}, user: undefined };
  await mkdir(state.root, { recursive: true });
  say(`stage ${stage.name} (${stage.image}) in ${state.root}`);
  for (const step of stage.instructions) {
    const here = join(state.root, state.workdir);
    if (step.keyword === 'WORKDIR') {
      state.workdir = posix.resolve(state.workdir, step.args);
      await mkdir(join(state.root, state.workdir), { recursive: true });
    } else if (step.keyword === 'ENV') {
      const [name, value] = envOf(step);
      state.env[name] = value;
    } else if (step.keyword === 'USER') {
      state.user = step.args;
    } else if (step.keyword === 'COPY') {
      const from = step.flags.from === undefined ? undefined : roots.get(step.flags.from);
      if (step.flags.from !== undefined && !from) throw new Error(`line ${step.line}: no stage ${step.flags.from}`);
      await copyStep(step.args.split(/\s+/), from ?? context, from !== undefined, state);
    } else if (step.keyword === 'RUN') {
      if (step.imageOnly) {
        say(`skipped (image only): RUN ${step.args}`);
        continue;
      }
      const t = Date.now();
      say(`RUN ${step.args}`);
      const run = spawnSync('/bin/sh', ['-c', step.args], { cwd: here, env: { ...process.env, ...state.env }, stdio: 'inherit' });
      if (run.status !== 0) throw new Error(`line ${step.line}: RUN exited with ${run.status ?? run.signal}: ${step.args}`);
      say(`RUN done in ${elapsed(t)}`);
    }
  }
  return state;
}

/** COPY src... dest: a directory's contents, or files, into dest (relative to WORKDIR). */
async function copyStep(words: string[], base: string, fromStage: boolean, state: Replayed): Promise<void> {
  const dest = words.at(-1)!;
  const sources = words.slice(0, -1);
  const target = join(state.root, posix.resolve(state.workdir, dest));
  for (const source of sources) {
    const from = fromStage ? join(base, posix.resolve('/', source)) : join(base, source);
    const into = dest.endsWith('/') || sources.length > 1 ? join(target, posix.basename(source)) : target;
    await cp(from, into, { recursive: true, errorOnExist: false, force: true });
  }
}

/**
 * Which dev dependencies the runtime stage holds anyway: npm keeps those that production
 * dependencies also need or take as optional peers (the Prisma CLI for @prisma/client, TypeScript
 * for the CLI, some type packages). The test runner and the linter must not be among them.
 */
async function reportDevDependencies(runtime: Replayed): Promise<void> {
  const app = join(runtime.root, runtime.workdir);
  const manifest = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const present = Object.keys(manifest.devDependencies).filter((name) => existsSync(join(app, 'node_modules', name)));
  say(`runtime node_modules: dev dependencies present: ${present.join(', ') || 'none'}`);
  const unwanted = present.filter((name) => ['vitest', 'eslint'].includes(name));
  if (unwanted.length) throw new Error(`the runtime stage installed dev dependencies: ${unwanted.join(', ')}`);
}

/** The runtime stage's ENV, plus a scratch DATA_DIR, a free port, and nothing from this shell's configuration. */
async function appEnvironment(runtime: Replayed, scratch: string): Promise<Record<string, string>> {
  const dataDir = join(scratch, 'data');
  const home = join(scratch, 'home');
  for (const dir of [dataDir, home]) {
    await mkdir(dir, { recursive: true });
    if (asNobody(runtime)) await chown(dir, NOBODY, NOBODY);
  }
  return {
    // `node` is the Node running this check, as in the image it is the base image's.
    PATH: [dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(delimiter),
    HOME: home,
    ...runtime.env,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  };
}

/**
 * Whether to run the app as nobody: when the image names a non-root USER and this check runs as
 * root, if nobody may run this Node (a Node under root's 0700 home it may not; then root it is,
 * and the embedded PostgreSQL runs as its own `postgres` user).
 */
function asNobody(runtime: Replayed): boolean {
  if (runtime.user === undefined || runtime.user === 'root' || process.getuid?.() !== 0) return false;
  nobodyRunsNode ??= spawnSync(process.execPath, ['-e', ''], { uid: NOBODY, gid: NOBODY, cwd: '/' }).status === 0;
  return nobodyRunsNode;
}
let nobodyRunsNode: boolean | undefined;

function identity(runtime: Replayed): { uid?: number; gid?: number } {
  return asNobody(runtime) ? { uid: NOBODY, gid: NOBODY } : {};
}

/** `node` is the Node running this check, as in the image it is the base image's. */
function program(name: string): string {
  return name === 'node' ? process.execPath : name;
}

function healthcheckCommand(stage: Stage): string[] {
  const healthcheck = last(stage, 'HEALTHCHECK');
  if (!healthcheck?.args.startsWith('CMD ')) throw new Error('the runtime stage has no HEALTHCHECK CMD');
  return execForm(healthcheck.args.slice(4));
}

function startProcess(runtime: Replayed, env: Record<string, string>, command: string[], log: string[]): ChildProcess {
  const user = asNobody(runtime) ? 'nobody' : (process.env.USER ?? `uid ${process.getuid?.()}`);
  say(`start: ${command.join(' ')} (PORT=${env.PORT}, DATA_DIR=${env.DATA_DIR}, as ${user}, ${process.execPath})`);
  const child = spawn(program(command[0]!), command.slice(1), { cwd: join(runtime.root, runtime.workdir), env, stdio: ['ignore', 'pipe', 'pipe'], ...identity(runtime) });
  running.add(child);
  child.once('exit', () => running.delete(child));
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      log.push(chunk);
      process.stdout.write(chunk);
    });
  }
  return child;
}

async function checkServer(runtime: Replayed, env: Record<string, string>, command: string[], healthcheck: string[]): Promise<void> {
  const log: string[] = [];
  const child = startProcess(runtime, env, command, log);
  const exited = exitOf(child);
  const t = Date.now();
  await waitFor(async () => (await fetch(`http://127.0.0.1:${env.PORT}/health`).catch(() => null))?.status === 200, exited, 180_000, '/health to answer 200');
  say(`/health answered 200, ${elapsed(t)} after start`);
  await checkStudio(env);
  const probe = spawnSync(program(healthcheck[0]!), healthcheck.slice(1), { cwd: join(runtime.root, runtime.workdir), env, timeout: 10_000, encoding: 'utf8', ...identity(runtime) });
  if (probe.status !== 0) throw new Error(`the Dockerfile's HEALTHCHECK exited with ${probe.status ?? probe.signal}: ${probe.stderr}`);
  say('the HEALTHCHECK command exits 0');
  await stopWithSigterm(child, exited, 'server');
}

/** The studio's page and its script, as built by the build stage and copied into the runtime stage. */
async function checkStudio(env: Record<string, string>): Promise<void> {
  const origin = `http://127.0.0.1:${env.PORT}`;
  const page = await fetch(`${origin}/`);
  const html = await page.text();
  const script = /<script type="module"[^>]* src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  if (page.status !== 200 || !script) throw new Error(`/ answered ${page.status} without the studio's page: ${html.slice(0, 200)}`);
  const asset = await fetch(`${origin}${script}`);
  await asset.arrayBuffer();
  if (asset.status !== 200 || !asset.headers.get('content-type')?.startsWith('text/javascript')) {
    throw new Error(`${script} answered ${asset.status} (${asset.headers.get('content-type')})`);
  }
  say(`/ serves the studio (${script})`);
}

async function checkWorker(runtime: Replayed, env: Record<string, string>, command: string[]): Promise<void> {
  const log: string[] = [];
  const child = startProcess(runtime, env, command, log);
  const exited = exitOf(child);
  await waitFor(async () => log.join('').includes('extendql worker is running'), exited, 180_000, 'the worker to report that it runs');
  say('the worker runs');
  await stopWithSigterm(child, exited, 'worker');
}

async function stopWithSigterm(child: ChildProcess, exited: Promise<Exit>, what: string): Promise<void> {
  const t = Date.now();
  child.kill('SIGTERM');
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const { code, signal } = await exited;
  clearTimeout(timeout);
  if (code !== 0) throw new Error(`the ${what} exited with ${code ?? signal} after SIGTERM, expected 0`);
  say(`the ${what} exited 0 on SIGTERM in ${elapsed(t)}`);
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function waitFor(check: () => Promise<boolean>, exited: Promise<Exit>, ms: number, what: string): Promise<void> {
  let done: Exit | undefined;
  void exited.then((exit) => (done = exit));
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (done) throw new Error(`exited with ${done.code ?? done.signal} while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

main().catch((error: unknown) => {
  console.error(`check-production-install FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

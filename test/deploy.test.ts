// The deployment files against the code: compose.yaml's services and variables against
// src/config.ts, the Dockerfile's stages against compose.yaml and .dockerignore, and the
// postinstall's behaviour when the Prisma CLI is absent. Nothing here needs a docker engine; the
// Dockerfile's steps themselves are replayed by scripts/check-production-install.ts in CI.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dockerIgnored, envOf, execForm, last, parseDockerfile, parseDockerignore } from '../scripts/lib/dockerfile.ts';
import { ENV_NAMES, loadConfig } from '../src/config.ts';
import { PROJECT_MANIFESTS } from '../src/http/trusted-documents.ts';

const root = join(import.meta.dirname, '..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');

interface Service {
  image?: string;
  build?: string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
/** The services that run extendql, i.e. are built from the Dockerfile. */
const extendql = Object.entries(services).filter(([, s]) => s.build !== undefined);
const [build, runtime] = parseDockerfile(read('Dockerfile'));

describe('compose.yaml', () => {
  it('runs the API, a worker, PostgreSQL, Redis, MinIO and the bucket creation', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'minio', 'minio-init', 'postgres', 'redis', 'worker']);
    expect(extendql.map(([name]) => name).sort()).toEqual(['api', 'worker']);
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, `${name} has an image or a build`).toBeTruthy();
    }
    expect(services.postgres!.image).toMatch(/^postgres:/);
    expect(services.redis!.image).toMatch(/^redis:/);
    expect(services.minio!.image).toMatch(/^minio\/minio/);
    expect(services['minio-init']!.image).toMatch(/^minio\/mc/);
  });

  it('gives extendql only variables that src/config.ts reads', () => {
    for (const [name, service] of extendql) {
      const unknown = Object.keys(service.environment ?? {}).filter((key) => !(ENV_NAMES as string[]).includes(key));
      expect(unknown, `${name}: variables src/config.ts does not read`).toEqual([]);
      expect(Object.keys(service.environment ?? {})).toEqual(
        expect.arrayContaining(['DATABASE_URL', 'REDIS_URL', 'S3_BUCKET', 'S3_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_FORCE_PATH_STYLE', 'PUBLIC_BASE_URL', 'SEGMIND_API_KEY']),
      );
      expect(service.environment!.DATABASE_URL).toMatch(/@postgres:5432\//);
      expect(service.environment!.REDIS_URL).toBe('redis://redis:6379');
      expect(service.environment!.S3_ENDPOINT).toBe('http://minio:9000');
      // From the host's environment; empty means unset, and then the simulator answers.
      expect(service.environment!.SEGMIND_API_KEY).toBe('${SEGMIND_API_KEY:-}');
    }
  });

  it('splits the API from the worker, which runs the worker entry point', () => {
    expect(services.api!.environment!.WORKER_ENABLED).toBe('false');
    expect(services.api!.command).toBeUndefined();
    expect(services.worker!.environment!.WORKER_ENABLED).toBeUndefined();
    expect(execForm(last(runtime!, 'CMD')!.args)).toEqual(['src/server.ts']);
    expect(services.worker!.command).toEqual(['src/worker.ts']);
    expect(existsSync(join(root, 'src/worker.ts'))).toBe(true);
  });

  it('publishes the port the server listens on, which the image exposes', () => {
    const port = String(loadConfig({}).port);
    expect(last(runtime!, 'EXPOSE')!.args).toBe(port);
    expect(services.api!.ports!.map((p) => p.split(':').at(-1))).toEqual([port]);
    for (const name of ['worker', 'postgres', 'redis', 'minio', 'minio-init']) expect(services[name]!.ports, name).toBeUndefined();
  });

  it('starts each service only once what it depends on is healthy or done', () => {
    for (const [name, service] of extendql) {
      expect(service.depends_on, name).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        'minio-init': { condition: 'service_completed_successfully' },
      });
    }
    expect(services['minio-init']!.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(services[dependency], `${name} depends on ${dependency}`).toBeDefined();
        if (condition === 'service_healthy') expect(services[dependency]!.healthcheck?.test, `${dependency} has a healthcheck`).toBeDefined();
      }
    }
    // The API keeps the image's HEALTHCHECK; a worker has no HTTP server to ask.
    expect(services.api!.healthcheck).toBeUndefined();
    expect(services.worker!.healthcheck).toEqual({ disable: true });
  });

  it('creates the bucket that extendql is given', () => {
    const init = services['minio-init']!;
    expect(JSON.stringify(init.command)).toContain('mc mb --ignore-existing');
    expect(init.environment!.S3_BUCKET).toBe(services.api!.environment!.S3_BUCKET);
    expect(services.minio!.environment!.MINIO_ROOT_PASSWORD).toBe(init.environment!.MINIO_ROOT_PASSWORD);
    expect(services.api!.environment!.S3_SECRET_ACCESS_KEY).toBe(init.environment!.MINIO_ROOT_PASSWORD);
  });
});

describe('Dockerfile', () => {
  it('builds with dev dependencies and runs with production dependencies only', () => {
    expect([build!.name, runtime!.name]).toEqual(['build', 'runtime']);
    for (const stage of [build!, runtime!]) expect(stage.image).toMatch(/^node:24-/);
    const runs = (stage: typeof build) => stage!.instructions.filter((i) => i.keyword === 'RUN' && !i.imageOnly).map((i) => i.args);
    expect(runs(build)).toEqual([expect.stringMatching(/^npm ci --no-audit --no-fund$/)]);
    expect(runs(runtime)).toEqual([expect.stringMatching(/^npm ci --omit=dev --no-audit --no-fund$/)]);
    // What the replay skips: only the volume's directory, which needs the image's `node` user.
    expect(runtime!.instructions.filter((i) => i.imageOnly).map((i) => i.args)).toEqual(['mkdir -p /data && chown node:node /data']);
    const copied = runtime!.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from === 'build').map((i) => i.args);
    expect(copied).toEqual(['/app/src/generated ./src/generated', '/app/web/dist ./web/dist']);
  });

  it('ships every trusted-documents manifest the server reads (the CLI\'s and the studio\'s)', () => {
    const sources = runtime!.instructions.filter((i) => i.keyword === 'COPY' && !i.flags.from).map((i) => i.args.split(/\s+/).slice(0, -1)).flat();
    for (const manifest of PROJECT_MANIFESTS) {
      expect(sources.some((source) => manifest === source || manifest.startsWith(`${source.replace(/\/$/, '')}/`)), manifest).toBe(true);
    }
  });

  it('runs as a non-root user, in production mode, with DATA_DIR on a volume', () => {
    const env = Object.fromEntries(runtime!.instructions.filter((i) => i.keyword === 'ENV').map(envOf));
    expect(env.NODE_ENV).toBe('production');
    expect(execForm(last(runtime!, 'VOLUME')!.args)).toEqual([env.DATA_DIR]);
    expect(last(runtime!, 'USER')!.args).toBe('node');
  });

  it('starts node itself (exec form) so that it receives SIGTERM, and checks /health', () => {
    const command = [...execForm(last(runtime!, 'ENTRYPOINT')!.args), ...execForm(last(runtime!, 'CMD')!.args)];
    expect(command[0]).toBe('node');
    expect(command.at(-1)).toBe('src/server.ts');
    const healthcheck = last(runtime!, 'HEALTHCHECK')!;
    expect(healthcheck.args.startsWith('CMD [')).toBe(true);
    const probe = execForm(healthcheck.args.slice(4));
    expect(probe[0]).toBe('node');
    expect(probe.join(' ')).toContain('/health');
  });

  it('copies only tracked files that .dockerignore lets through, and keeps the generated client out of the context', () => {
    const ignore = parseDockerignore(read('.dockerignore'));
    for (const path of ['node_modules/x', 'data/postgres/PG_VERSION', '.git', 'src/generated/prisma/client.ts', 'web/dist/index.html', 'server.log', '.env']) {
      expect(dockerIgnored(ignore, path), path).toBe(true);
    }
    const tracked = spawnSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).stdout.split('\n');
    for (const stage of [build!, runtime!]) {
      for (const copy of stage.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from === undefined)) {
        for (const source of copy.args.split(/\s+/).slice(0, -1)) {
          expect(dockerIgnored(ignore, source), `${source} is in the context`).toBe(false);
          expect(tracked.some((f) => f === source || f.startsWith(`${source}/`)), `${source} is tracked`).toBe(true);
        }
      }
    }
  });

  it('is replayed in CI by the production-install check', () => {
    expect(read('.ci/run')).toMatch(/^npm run check:production-install$/m);
    expect(JSON.parse(read('package.json')).scripts['check:production-install']).toBe('node scripts/check-production-install.ts');
  });
});

describe('postinstall without the Prisma CLI (a production install may lack it)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** scripts/prisma.mjs alone in a directory with no node_modules: the CLI cannot be found. */
  function runWithoutCli(withGeneratedClient: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'extendql-postinstall-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'scripts'));
    writeFileSync(join(dir, 'scripts/prisma.mjs'), read('scripts/prisma.mjs'));
    if (withGeneratedClient) {
      mkdirSync(join(dir, 'src/generated/prisma'), { recursive: true });
      writeFileSync(join(dir, 'src/generated/prisma/client.ts'), '// generated\n');
    }
    return spawnSync(process.execPath, ['scripts/prisma.mjs', 'generate'], { cwd: dir, encoding: 'utf8' });
  }

  it('keeps a client that was generated already and succeeds', () => {
    const result = runWithoutCli(true);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('prisma CLI not installed: keeping the client already generated in src/generated');
    expect(result.status).toBe(0);
  });

  it('fails with a message that says what to do when there is no client either', () => {
    const result = runWithoutCli(false);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('src/generated/prisma is missing');
    expect(result.stderr).not.toContain('MODULE_NOT_FOUND');
  });
});

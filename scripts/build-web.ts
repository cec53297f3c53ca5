// Builds the studio's bundle (web/ → web/dist) with Vite. Run by `npm install` (postinstall) and
// `npm run build:web`; the test suite's global setup rebuilds it when web/ changed since.
//
//   node scripts/build-web.ts [--if-stale]
//
// Vite is a dev dependency: a production install (`npm ci --omit=dev`) has none, and keeps the
// bundle it was given (the Dockerfile copies web/dist from its build stage). Without either, the
// server still starts, and `/` answers a page that says how to build the studio.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const web = join(repo, 'web');
const bundle = join(web, 'dist', 'index.html');

/** The newest modification time among the studio's sources (web/ without dist/ and node_modules/). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules') continue;
    const file = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(file) : statSync(file).mtimeMs);
  }
  return newest;
}

/** Whether web/dist is missing or older than a source of the studio. */
export function webBundleStale(): boolean {
  return !existsSync(bundle) || newestSource(web) > statSync(bundle).mtimeMs;
}

export function viteInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('vite');
    return true;
  } catch {
    return false;
  }
}

export async function buildWebBundle(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' });
}

/** Builds the bundle when it is missing or stale; a no-op otherwise. */
export async function ensureWebBundle(): Promise<void> {
  if (webBundleStale()) await buildWebBundle();
}

async function main(): Promise<void> {
  // A production install has no Vite; the runtime stage of the image has no sources either.
  if (!viteInstalled() || !existsSync(join(web, 'vite.config.ts'))) {
    console.log(
      existsSync(bundle)
        ? 'vite or web/ sources not installed: keeping the studio already built in web/dist'
        : 'vite or web/ sources not installed (a production install): the studio is not built; `/` says how to build it (npm install, then npm run build:web)',
    );
    return;
  }
  const onlyIfStale = process.argv.includes('--if-stale');
  if (onlyIfStale && !webBundleStale()) return console.log('the studio in web/dist is up to date');
  const started = Date.now();
  await buildWebBundle();
  console.log(`built the studio into web/dist in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(`building the studio failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

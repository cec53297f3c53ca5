#!/usr/bin/env node
// Runs the Prisma CLI without native engines: extendql uses the JS client engine and applies
// migrations itself, so the CLI is pointed at placeholder files instead of downloading engines.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = dirname(dirname(self));
const args = process.argv.slice(2);

let cli;
try {
  cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
} catch {
  // The CLI is a dev dependency: `npm ci --omit=dev` installs it only because it is also an
  // optional peer of @prisma/client, so a production install may lack it. The client it
  // generates is all the server needs.
  const generated = join(root, 'src', 'generated', 'prisma', 'client.ts');
  if (args[0] === 'generate' && existsSync(generated)) {
    console.log('prisma CLI not installed: keeping the client already generated in src/generated');
    process.exit(0);
  }
  console.error(
    args[0] === 'generate'
      ? 'prisma CLI not installed and src/generated/prisma is missing: install with dev dependencies (npm ci), or copy src/generated from a build that did'
      : 'prisma CLI not installed: it is a dev dependency (npm ci without --omit=dev)',
  );
  process.exit(1);
}

const env = {
  ...process.env,
  // Generators such as prisma-pothos-types are found on PATH.
  PATH: [join(root, 'node_modules', '.bin'), process.env.PATH].join(delimiter),
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? self,
  PRISMA_QUERY_ENGINE_LIBRARY: process.env.PRISMA_QUERY_ENGINE_LIBRARY ?? self,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/unused',
};
const result = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit', env });
process.exit(result.status ?? 1);

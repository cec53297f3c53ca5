#!/usr/bin/env node
// Runs the Prisma CLI without native engines: extendql uses the JS client engine and applies
// migrations itself, so the CLI is pointed at placeholder files instead of downloading engines.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = dirname(dirname(self));
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
const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(result.status ?? 1);

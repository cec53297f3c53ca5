#!/usr/bin/env node
// `extendql`: the command line of extendql (src/cli/main.ts). It runs the TypeScript sources with
// tsx, found next to this file, so it works from any working directory.
// First: a one-line refusal on a Node too old for what follows.
import '../src/require-node.mjs';
import { URL, fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// This project's tsconfig, not one that happens to be in the caller's directory.
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

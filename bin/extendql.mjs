#!/usr/bin/env node
// `extendql`: the command line of extendql (src/cli/main.ts), run from the TypeScript sources by
// Node's type stripping. Resolved next to this file, so it works from any working directory.
// First: a one-line refusal on a Node too old for what follows.
import '../src/require-node.mjs';

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

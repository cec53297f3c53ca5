// Loaded before every entry point (`node --import ./src/require-node.mjs src/server.ts` in the npm
// scripts; the first import of bin/extendql.mjs). extendql runs its TypeScript sources on Node's
// own type stripping, on by default from Node 22.18: an older Node would fail on the `.ts` entry
// file with an error that names no version (and on Node 20 undici fails to load as well). Plain
// JavaScript with no imports, so that any Node parses and runs it first.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18) || (major === 23 && minor < 6)) {
  process.stderr.write(
    `extendql needs Node.js >= 22.18, but this is Node.js ${process.version}. Install Node 24 (nvm install 24, or run through npx -p node@24, see README "Run it").\n`,
  );
  process.exit(1);
}

// Node's compile cache: the modules loaded after this point (about 1,400, the type-stripped
// sources included) are compiled from a cache on disk after the first run, which makes a start
// noticeably shorter. Node keeps it in NODE_COMPILE_CACHE, else in the system's temporary
// directory, one per Node version, and checks each entry against its source.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; where the directory cannot be written, Node runs
// without it.
process.getBuiltinModule('node:module').enableCompileCache?.();

// Imported first by every entry point (server, worker, commands, the CLI), before anything that
// needs a newer Node: on Node 20, undici fails while loading with a TypeError that names no
// version. Plain JavaScript with no imports, so that any Node parses and runs it, with or without
// tsx; ES module imports are evaluated in order, so nothing imported after it runs on an old Node.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `extendql needs Node.js >= 22.12, but this is Node.js ${process.version}. Install Node 24 (nvm install 24, or run through npx -p node@24, see README "Run it").\n`,
  );
  process.exit(1);
}

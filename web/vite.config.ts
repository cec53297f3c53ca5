import { defineConfig } from 'vite';

/**
 * The studio's bundle: web/dist, served by the extendql server at `/` (src/http/studio.ts).
 * `npm run web:dev` serves the sources with hot reload instead, in front of a server on :4000.
 */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // Preact's JSX runtime, without Babel.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // One small bundle: nothing to gain from a separate modulepreload polyfill or inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    port: 5173,
    proxy: {
      '/graphql': { target: process.env.EXTENDQL_ORIGIN ?? 'http://localhost:4000', ws: true },
      '/videos': process.env.EXTENDQL_ORIGIN ?? 'http://localhost:4000',
      '/samples': process.env.EXTENDQL_ORIGIN ?? 'http://localhost:4000',
    },
  },
});

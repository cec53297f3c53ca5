import type { CodegenConfig } from '@graphql-codegen/cli';

// Node's type stripping runs the sources as they are: relative imports name the .ts file.
const typescript = { enumsAsTypes: true, useTypeImports: true, importExtension: '.ts' as const, scalars: { DateTime: 'string', Upload: 'Blob' }, emitLegacyCommonJSImports: false };

/** Typed documents from the committed schema, one output per set of documents. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    // For the tests (and any TypeScript client).
    'test/gql/': {
      documents: ['test/documents/**/*.graphql'],
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: typescript,
    },
    // For the `extendql` command line. String documents, sent with fetch, so the CLI needs no
    // GraphQL client library at run time. Each carries its SHA-256 document id, which the CLI sends
    // instead of the text; persisted-documents.json (id -> text) is part of the server's manifest
    // of trusted documents (src/http/trusted-documents.ts).
    'src/cli/gql/': {
      documents: ['src/cli/documents.graphql'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, persistedDocuments: { mode: 'embedHashInDocument', hashAlgorithm: 'sha256' } },
      config: { ...typescript, documentMode: 'string' },
    },
    // For the studio (web/): document nodes for urql. Upload is the browser's File.
    'web/src/gql/': {
      documents: ['web/src/documents.graphql'],
      preset: 'client',
      // The studio sends each operation's id, not its text (web/src/api.ts), so it works against
      // a server in allowlist mode; the server reads this manifest (src/http/trusted-documents.ts).
      presetConfig: { fragmentMasking: false, persistedDocuments: { mode: 'embedHashInDocument', hashAlgorithm: 'sha256' } },
      config: { ...typescript, scalars: { ...typescript.scalars, Upload: 'File' } },
    },
  },
};

export default config;

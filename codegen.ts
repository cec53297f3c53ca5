import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed documents for the tests (and any TypeScript client) from the committed schema. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/documents/**/*.graphql'],
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    'test/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      // ESM with NodeNext resolution: relative imports carry .js
      config: { enumsAsTypes: true, useTypeImports: true, scalars: { DateTime: 'string' }, emitLegacyCommonJSImports: false },
    },
  },
};

export default config;

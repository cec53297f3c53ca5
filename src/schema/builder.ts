import SchemaBuilder from '@pothos/core';
import DirectivesPlugin from '@pothos/plugin-directives';
import ErrorsPlugin from '@pothos/plugin-errors';
import FederationPlugin from '@pothos/plugin-federation';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import type { AuthenticatedContext, Context } from '../context.ts';
import type { UploadedFile } from '../generations/rules.ts';
import type PrismaTypes from '../generated/pothos-prisma-types.ts';
import { getDatamodel } from '../generated/pothos-prisma-types.ts';
import { decodeArgumentId } from './generation-ids.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: { apiKey: boolean };
  // Fields built with t.withAuth({ apiKey: true }) resolve with the key known to be there.
  AuthContexts: { apiKey: AuthenticatedContext };
  DefaultFieldNullability: false;
  Scalars: { DateTime: { Input: Date; Output: Date }; Upload: { Input: UploadedFile; Output: never } };
}>({
  // Scope auth first so that no resolver or loader runs for an unauthenticated request;
  // federation last, after the plugins that wrap resolvers.
  plugins: [ScopeAuthPlugin, RelayPlugin, ErrorsPlugin, DirectivesPlugin, PrismaPlugin, FederationPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (context) => ({ apiKey: context.apiKey !== null }),
    unauthorizedError: () =>
      new GraphQLError('A valid API key is required: send it in the x-api-key header', {
        extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
      }),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // node(id:) is defined with the Generation type (schema/generation.ts).
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    // globalID arguments take a Generation's global ID or its raw id (see generation-ids.ts).
    decodeGlobalID: decodeArgumentId,
  },
  errors: { defaultTypes: [] },
  prisma: {
    client: (context) => context.db,
    dmmf: getDatamodel(),
    exposeDescriptions: true,
    filterConnectionTotalCount: true,
    // Pages (generations, extensions) hold at most this many, whatever `first`/`last` asks for;
    // Pothos' own defaults, stated so that they are not changed unawares.
    maxConnectionSize: 100,
    defaultConnectionSize: 20,
    onUnusedQuery: process.env.NODE_ENV === 'production' ? null : 'warn',
  },
});

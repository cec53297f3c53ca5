import { NotCancelableError, NotFoundError } from '../errors.ts';
import type { Generation as GenerationRow } from '../generated/prisma/client.ts';
import { builder } from './builder.ts';
import { Generation, withGenerationId } from './generation.ts';

const CancelGenerationSuccess = builder.objectRef<{ generation: GenerationRow }>('CancelGenerationSuccess').implement({
  fields: (t) => ({ generation: t.field({ type: Generation, resolve: (result) => result.generation }) }),
});

builder.mutationField('cancelGeneration', (t) =>
  t.withAuth({ apiKey: true }).field({
    type: CancelGenerationSuccess,
    description: 'Cancels a QUEUED or RUNNING generation. Repeating it is harmless. A job Segmind already accepted still runs there, and its result is discarded.',
    errors: { types: [NotFoundError, NotCancelableError], directResult: true, union: { name: 'CancelGenerationResult' } },
    args: { id: t.arg.globalID({ required: true, for: Generation }) },
    resolve: async (_root, args, ctx) => ({
      generation: await withGenerationId(args.id, (id) => ctx.generations.cancel(ctx.apiKey.id, id)),
    }),
  }),
);

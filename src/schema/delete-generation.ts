import { HasExtensionsError, NotDeletableError, NotFoundError } from '../errors.js';
import { builder } from './builder.js';
import { withGenerationId } from './generation.js';

const DeleteGenerationSuccess = builder.objectRef<{ deletedId: string }>('DeleteGenerationSuccess').implement({
  fields: (t) => ({ deletedId: t.exposeID('deletedId', { description: 'The id of the generation that is gone' }) }),
});

builder.mutationField('deleteGeneration', (t) =>
  t.withAuth({ apiKey: true }).field({
    type: DeleteGenerationSuccess,
    description:
      'Deletes a finished (SUCCEEDED, FAILED or CANCELED) generation for good: its row and webhook attempts, its stored MP4 ' +
      '(/videos/<id>.mp4 then answers 404) and the uploaded source video when no other generation uses it. ' +
      'A QUEUED or RUNNING generation is refused (NotDeletableError), and so is one that other generations extend ' +
      '(HasExtensionsError, with their count): delete those first. The daily budget still counts what it cost. ' +
      'Deleting it again answers NotFoundError.',
    errors: { types: [NotFoundError, NotDeletableError, HasExtensionsError], directResult: true, union: { name: 'DeleteGenerationResult' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await withGenerationId(String(args.id), (id) => ctx.generations.delete(ctx.apiKey.id, id));
      ctx.log.info({ generationId: String(args.id) }, 'generation deleted');
      return { deletedId: String(args.id) };
    },
  }),
);

import { HasExtensionsError, NotDeletableError, NotFoundError } from '../errors.ts';
import { builder } from './builder.ts';
import { Generation, withGenerationId } from './generation.ts';
import { givenId } from './generation-ids.ts';

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
    args: { id: t.arg.globalID({ required: true, for: Generation }) },
    resolve: async (_root, args, ctx) => {
      await withGenerationId(args.id, (id) => ctx.generations.delete(ctx.apiKey.id, id));
      ctx.log.info({ generationId: givenId(args.id) }, 'generation deleted');
      return { deletedId: givenId(args.id) };
    },
  }),
);

import { IdempotencyConflictError, InsufficientCreditsError, InvalidInputError, NotFoundError, RateLimitedError } from '../errors.ts';
import type { Generation as GenerationRow } from '../generated/prisma/client.ts';
import { builder } from './builder.ts';
import { MotionMode, VideoQuality, VideoStyle } from './enums.ts';
import { Generation, rowAnswering, withGenerationId } from './generation.ts';

export const ExtendVideoInput = builder.inputType('ExtendVideoInput', {
  description: 'What to extend and how. Give exactly one of videoUrl, sourceGenerationId and video.',
  fields: (t) => ({
    videoUrl: t.string({ description: 'Absolute http(s) URL of an MP4 or MOV (at most 2048 characters, 50 MB, 30 s, 1920 px)' }),
    sourceGenerationId: t.globalID({ for: Generation, description: 'Extend the video of one of your earlier SUCCEEDED generations (chaining)' }),
    video: t.field({
      type: 'Upload',
      description: 'The video itself, as a multipart upload: MP4 or MOV, at most 50 MB, 30 s and 1920 px. Stored, and fetched by Segmind from our public URL (or from S3 storage through a signed link).',
    }),
    prompt: t.string({ required: true, description: 'What happens next. Not blank; at most 2048 characters.' }),
    negativePrompt: t.string({ description: "What to avoid; at most 2048 characters. Segmind's default applies when omitted." }),
    duration: t.int({ required: true, defaultValue: 5, description: 'Seconds to add: 5 or 8. 8 needs NORMAL motion and at most Q720P.' }),
    quality: t.field({
      type: VideoQuality,
      description: "Omitted means Q540P, or the source's quality when chaining (sourceGenerationId), so a chain keeps its resolution",
    }),
    motionMode: t.field({ type: MotionMode, required: true, defaultValue: 'NORMAL' }),
    seed: t.int({ description: '1 to 999999, for repeatable results' }),
    style: t.field({ type: VideoStyle }),
    callbackUrl: t.string({
      description: 'Absolute http(s) URL that receives the generation as signed JSON (POST) when it ends; see webhookSigningSecret',
    }),
    idempotencyKey: t.string({
      description: 'Retrying with the same key and parameters returns the same generation and spends nothing again',
    }),
  }),
});

const ExtendVideoSuccess = builder.objectRef<{ generation: GenerationRow }>('ExtendVideoSuccess').implement({
  fields: (t) => ({
    // A prismaField, so the plugin knows which row answers the selection: the service returns every
    // column of the row it inserted, so scalar fields are read from it without another query, and
    // only relations asked for (source, video, extensions) are loaded.
    generation: t.prismaField({ type: Generation, resolve: (query, result) => rowAnswering(query, result.generation) }),
  }),
});

builder.mutationType({});

builder.mutationField('extendVideo', (t) =>
  t.withAuth({ apiKey: true }).field({
    type: ExtendVideoSuccess,
    description: 'Validates the request, records a QUEUED generation and returns at once. Follow it with generationUpdated or generation(id:).',
    errors: {
      types: [InvalidInputError, NotFoundError, InsufficientCreditsError, IdempotencyConflictError, RateLimitedError],
      directResult: true,
      union: { name: 'ExtendVideoResult' },
    },
    args: { input: t.arg({ type: ExtendVideoInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const extend = (sourceGenerationId: string | null | undefined) => ctx.generations.extend(ctx.apiKey.id, { ...input, sourceGenerationId });
      const given = input.sourceGenerationId;
      const generation = await (given == null ? extend(given) : withGenerationId(given, extend));
      ctx.log.info({ generationId: generation.id, upload: input.video != null }, 'generation accepted');
      return { generation };
    },
  }),
);

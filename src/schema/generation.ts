import { decodeGlobalID, resolveNodes } from '@pothos/plugin-relay';
import { GraphQLError, isObjectType } from 'graphql';
import { HasExtensionsError, NotCancelableError, NotDeletableError, NotFoundError } from '../errors.ts';
import type { AuthenticatedContext } from '../context.ts';
import { estimatedCostUsd } from '../generations/rules.ts';
import { isTerminal } from '../generations/lifecycle.ts';
import { publicCost, publicError, publicRetry, type PublicError, type PublicRetry } from '../generations/public-view.ts';
import { holdingSlot } from '../realtime/subscription-slots.ts';
import { builder } from './builder.ts';
import { decodeArgumentId, givenId, namesNothing, type GenerationGlobalId } from './generation-ids.ts';
import { GenerationErrorCode, GenerationStatus, MotionMode, VideoQuality, VideoStyle } from './enums.ts';

/**
 * Runs `fn` with the raw id behind a client's ID (a globalID argument), and names the generation
 * in any error the way the client did (usually its global ID).
 */
export async function withGenerationId<T>(decoded: GenerationGlobalId, fn: (id: string) => Promise<T>): Promise<T> {
  const given = givenId(decoded);
  try {
    return await fn(decoded.id);
  } catch (error) {
    if (error instanceof NotFoundError) throw new NotFoundError('Generation', given);
    if (error instanceof NotCancelableError) throw new NotCancelableError(given, error.status);
    if (error instanceof NotDeletableError) throw new NotDeletableError(given, error.status);
    if (error instanceof HasExtensionsError) throw new HasExtensionsError(given, error.extensionCount);
    throw error;
  }
}

const GenerationError = builder.objectRef<PublicError>('GenerationError').implement({
  description: 'Why a generation failed.',
  fields: (t) => ({
    code: t.expose('code', { type: GenerationErrorCode, description: 'Stable machine-readable code' }),
    message: t.exposeString('message'),
    upstreamStatus: t.exposeInt('upstreamStatus', { nullable: true, description: "Segmind's HTTP status, when it gave one" }),
  }),
});

const GenerationRetry = builder.objectRef<PublicRetry>('GenerationRetry').implement({
  description: 'Why a running generation is waiting: a transient failure, tried again at retryAt (within the deadline).',
  fields: (t) => ({
    code: t.expose('code', { type: GenerationErrorCode, description: 'The failure being waited out, e.g. RATE_LIMITED, UPSTREAM_UNAVAILABLE, STORAGE_UNAVAILABLE' }),
    message: t.exposeString('message'),
    retryAt: t.expose('retryAt', { type: 'DateTime', description: 'When the next try is due' }),
  }),
});

builder.prismaObject('Video', {
  description: 'An MP4 stored by extendql.',
  // Select mode: only the columns a query asks for are read (and mapped) from the database.
  select: { id: true },
  fields: (t) => ({
    url: t.string({ description: 'Absolute download URL (supports Range requests)', resolve: (video, _args, ctx) => ctx.videoUrl(video.id) }),
    contentType: t.exposeString('contentType'),
    byteSize: t.exposeInt('byteSize'),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    durationSeconds: t.exposeFloat('durationSeconds'),
    sha256: t.exposeString('sha256'),
  }),
});

/**
 * A whole row standing for a planned Generation query: every column the query selects must be on
 * it (relations, selected as objects, are loaded by the plugin when the row lacks them).
 */
export function rowAnswering<Row extends object>(query: { select?: Record<string, unknown> }, row: Row): Row {
  for (const [column, selection] of Object.entries(query.select ?? {})) {
    if (selection === true && !(column in row)) throw new Error(`the Generation row lacks the selected column ${column}`);
  }
  return row;
}

export const Generation = builder.prismaNode('Generation', {
  id: { field: 'id' },
  description: 'One extendVideo request and what became of it.',
  // node(id:) only finds the caller's own generations; another key's is null, not an error.
  findUnique: (id, ctx) => ({ id, apiKeyId: ctx.apiKey?.id ?? '' }),
  nullable: true,
  // Select mode: a page of generations reads only the columns its query asks for; mapping
  // whole rows was most of the cost of a large page.
  select: { id: true },
  fields: (t) => ({
    status: t.expose('status', { type: GenerationStatus }),
    prompt: t.exposeString('prompt'),
    negativePrompt: t.exposeString('negativePrompt', { nullable: true }),
    duration: t.exposeInt('duration', { description: 'Seconds of new video: 5 or 8' }),
    quality: t.expose('quality', { type: VideoQuality }),
    motionMode: t.expose('motionMode', { type: MotionMode }),
    seed: t.exposeInt('seed', { nullable: true }),
    style: t.expose('style', { type: VideoStyle, nullable: true }),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    sourceVideoUrl: t.exposeString('sourceVideoUrl', {
      description:
        'The video extended: your videoUrl, or our URL of the chained or uploaded video. With S3 storage, Segmind is given a short-lived signed link to the same object instead, which is not shown.',
    }),
    source: t.relation('source', { nullable: true, description: 'The generation this one extends, when chained' }),
    extensions: t.relatedConnection('extensions', {
      cursor: 'id',
      totalCount: true,
      query: { orderBy: { id: 'desc' } },
      description: 'Generations that extend this one, newest first',
    }),
    video: t.relation('video', { nullable: true, description: 'The stored MP4 once SUCCEEDED; null again after VIDEO_RETENTION_DAYS removed it (see videoExpiredAt)' }),
    upstreamStatus: t.exposeString('upstreamStatus', {
      nullable: true,
      description: "Segmind's last reported job status (QUEUED, PROCESSING, COMPLETED, FAILED): where a RUNNING generation is",
    }),
    elapsedSeconds: t.float({
      description: 'Seconds since it was accepted, until it ended (or until now): for progress displays',
      select: { createdAt: true, completedAt: true },
      resolve: (g) => ((g.completedAt ?? new Date()).getTime() - g.createdAt.getTime()) / 1000,
    }),
    error: t.field({
      type: GenerationError,
      nullable: true,
      select: { errorCode: true, errorMessage: true, errorUpstreamStatus: true },
      resolve: publicError,
    }),
    retrying: t.field({
      type: GenerationRetry,
      nullable: true,
      description: 'Set while a step is waiting to be tried again after a transient failure; null otherwise',
      select: { retryCode: true, retryMessage: true, retryAt: true },
      resolve: publicRetry,
    }),
    cost: t.float({
      nullable: true,
      description: 'USD, as reported by Segmind once it ran the job; null until then (and when it does not say)',
      select: { cost: true },
      resolve: publicCost,
    }),
    estimatedCost: t.float({
      description: "USD from extendql's price table (see estimateCost): what the key's daily budget counts, unless the generation FAILED",
      select: { quality: true, duration: true },
      resolve: (g) => estimatedCostUsd({ quality: g.quality, duration: g.duration as 5 | 8 }),
    }),
    videoExpiredAt: t.expose('videoExpiredAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the stored video was removed because it outlived VIDEO_RETENTION_DAYS; video is null from then on',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
  }),
});

// A federation entity: other subgraphs can extend Generation by its (global) id. Like node(id:),
// it resolves only the caller's own generations; the gateway forwards x-api-key.
builder.asEntity(Generation, {
  key: builder.selection<{ id: string }>('id'),
  // A representation without a string id names no generation: null, like an unknown id.
  resolveReference: (reference, ctx) =>
    ctx.apiKey && typeof reference.id === 'string'
      ? ctx.db.generation.findUnique({ where: { id: decodeArgumentId(reference.id).id, apiKeyId: ctx.apiKey.id } })
      : null,
});

builder.queryType({});

builder.queryFields((t) => ({
  // Relay's node(id:), with the id read here rather than parsed by the plugin: an id that names
  // nothing of the caller's (another key's, made up, not a global ID at all) is null, as it is
  // for generation(id:), instead of an error.
  node: t.withAuth({ apiKey: true }).field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx, info) => {
      let decoded: { typename: string; id: string };
      try {
        decoded = decodeGlobalID(String(args.id));
      } catch {
        return null;
      }
      if (namesNothing(decoded.id)) return null;
      // Only types that are nodes here (Generation, ApiKey); each finds nothing but the caller's own.
      const type = info.schema.getType(decoded.typename);
      if (!isObjectType(type) || !type.getInterfaces().some((i) => i.name === 'Node')) return null;
      const [node] = await resolveNodes(builder, ctx, info, [decoded]);
      return node ?? null;
    },
  }),
  generation: t.withAuth({ apiKey: true }).prismaField({
    type: 'Generation',
    nullable: true,
    description: 'One of your generations, by its id',
    args: { id: t.arg.globalID({ required: true, for: Generation }) },
    // The whole row in one named statement (src/db/generations.ts): a Prisma query planned per call
    // cost about six times its CPU. Relations the query selects are loaded by the plugin.
    resolve: async (query, _root, args, ctx) => {
      const row = await ctx.generations.find(ctx.apiKey.id, args.id.id);
      return row && rowAnswering(query, row);
    },
  }),
  generations: t.withAuth({ apiKey: true }).prismaConnection({
    type: 'Generation',
    cursor: 'id',
    description: 'Your generations, newest first',
    args: { status: t.arg({ type: GenerationStatus, required: false }) },
    totalCount: (_connection, args, ctx) => ctx.generations.count({ apiKeyId: ctx.apiKey.id, status: args.status ?? null }),
    // One statement for the usual page shapes (src/db/history.ts), Prisma for the others.
    resolve: (query, _root, args, ctx) => ctx.generations.page({ apiKeyId: ctx.apiKey.id, status: args.status ?? null }, query),
  }),
}));

builder.subscriptionType({});

builder.subscriptionField('generationUpdated', (t) =>
  t.withAuth({ apiKey: true }).prismaField({
    type: 'Generation',
    description: 'The generation now, then again at every change; ends after a terminal status',
    args: { id: t.arg.globalID({ required: true, for: Generation }) },
    subscribe: (_root, args, ctx) => {
      const release = ctx.subscriptionSlots.take(ctx.apiKey.id);
      if (!release) {
        const max = ctx.subscriptionSlots.maxPerKey;
        throw new GraphQLError(`This API key may have ${max} subscriptions open at once; end one first`, {
          extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', max },
        });
      }
      return holdingSlot(generationUpdates(args.id, ctx), release);
    },
    resolve: (query, id: string, _args, ctx) => ctx.db.generation.findUniqueOrThrow({ ...query, where: { id } }),
  }),
);

/** The generation's id now and after every change (or wake-up), until it is terminal. */
async function* generationUpdates(decoded: GenerationGlobalId, ctx: AuthenticatedContext): AsyncGenerator<string> {
  const { id } = decoded;
  // Listen before reading, so a change between the read and the listen is not missed.
  const changes = ctx.generationEvents(id)[Symbol.asyncIterator]();
  try {
    const current = await ctx.generations.find(ctx.apiKey.id, id);
    if (!current) throw new GraphQLError(`Generation ${givenId(decoded)} was not found`, { extensions: { code: 'NOT_FOUND' } });
    yield id;
    let status = current.status;
    while (!isTerminal(status)) {
      const next = await changes.next();
      if (next.done) return;
      status = (await ctx.db.generation.findUniqueOrThrow({ where: { id }, select: { status: true } })).status;
      yield id;
    }
  } finally {
    await changes.return?.();
  }
}

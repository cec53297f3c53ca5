import { InvalidInputError, NotFoundError } from '../errors.ts';
import type { KeyLimits, KeyUsage } from '../generations/limits.ts';
import { utcDayStart } from '../generations/limits.ts';
import { builder } from './builder.ts';
import { VideoQuality } from './enums.ts';
import { ExtendVideoInput } from './extend-video.ts';
import { withGenerationId } from './generation.ts';

const ApiKeyLimits = builder.objectRef<KeyLimits>('ApiKeyLimits').implement({
  description: 'The per-key limits this server enforces (the same for every key).',
  fields: (t) => ({
    requestsPerMinute: t.exposeInt('perMinute', { description: 'Generations started per rolling minute (RATE_LIMIT_PER_MINUTE)' }),
    concurrentGenerations: t.exposeInt('concurrent', { description: 'Generations QUEUED or RUNNING at once (MAX_CONCURRENT_PER_KEY)' }),
    dailyBudgetUsd: t.exposeFloat('dailyBudgetUsd', { nullable: true, description: 'Estimated USD per UTC day (DAILY_BUDGET_USD); null for no budget' }),
  }),
});

const ApiKeyUsage = builder.objectRef<KeyUsage & { since: Date; budgetUsd: number | null }>('ApiKeyUsage').implement({
  description: 'What the key used since the start of the UTC day, counted as the daily budget counts it (deleted generations included).',
  fields: (t) => ({
    since: t.expose('since', { type: 'DateTime', description: 'Midnight UTC: when the count (and the budget) started' }),
    generationsStarted: t.exposeInt('generationsStarted', { description: 'Generations started today, whatever became of them' }),
    estimatedSpentUsd: t.exposeFloat('estimatedUsd', { description: "Estimated USD of today's generations that did not fail" }),
    budgetRemainingUsd: t.float({
      nullable: true,
      description: 'dailyBudgetUsd less estimatedSpentUsd (not below 0); null when there is no budget',
      resolve: (usage) => (usage.budgetUsd === null ? null : Math.max(0, usage.budgetUsd - usage.estimatedUsd)),
    }),
  }),
});

const ApiKey = builder.prismaNode('ApiKey', {
  id: { field: 'id' },
  description: 'An API key: its name, its limits and what it used of them today. The key itself is never shown again after creation.',
  // node(id:) finds only the key that asks; any other key's id is null, not an error.
  findUnique: (id, ctx) => ({ id: id === ctx.apiKey?.id ? id : '' }),
  nullable: true,
  select: { id: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to tell keys apart' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    limits: t.field({ type: ApiKeyLimits, resolve: (_key, _args, ctx) => ctx.generations.limits }),
    usageToday: t.field({
      type: ApiKeyUsage,
      resolve: async (key, _args, ctx) => {
        const since = utcDayStart(new Date());
        return { ...(await ctx.generations.usageToday(key.id)), since, budgetUsd: ctx.generations.limits.dailyBudgetUsd };
      },
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.withAuth({ apiKey: true }).prismaField({
    type: ApiKey,
    description: 'The API key making the request',
    resolve: (query, _root, _args, ctx) => ctx.db.apiKey.findUniqueOrThrow({ ...query, where: { id: ctx.apiKey.id } }),
  }),
);

const CostEstimate = builder.objectRef<{ usd: number; quality: 'Q360P' | 'Q540P' | 'Q720P' | 'Q1080P'; duration: number }>('CostEstimate').implement({
  description: 'What extendVideo would count against the daily budget for this input.',
  fields: (t) => ({
    usd: t.exposeFloat('usd', { description: "Estimated USD, from the price table the daily budget uses (Segmind's bill may differ slightly)" }),
    quality: t.expose('quality', { type: VideoQuality, description: 'The quality it was priced at, defaults filled in (a chain takes its source’s)' }),
    duration: t.exposeInt('duration'),
  }),
});

builder.queryField('estimateCost', (t) =>
  t.withAuth({ apiKey: true }).field({
    type: CostEstimate,
    description:
      'Prices an extendVideo input without running it: the same rules and defaults apply (an invalid input answers InvalidInputError), ' +
      'nothing is recorded or spent and Segmind is not asked. An uploaded video is not read.',
    errors: { types: [InvalidInputError, NotFoundError], directResult: true, union: { name: 'EstimateCostResult' } },
    args: { input: t.arg({ type: ExtendVideoInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const estimate = (sourceGenerationId: string | null | undefined) => ctx.generations.estimate(ctx.apiKey.id, { ...input, sourceGenerationId });
      const given = input.sourceGenerationId;
      const { usd, params } = await (given == null ? estimate(given) : withGenerationId(given, estimate));
      return { usd, quality: params.quality, duration: params.duration };
    },
  }),
);

import { builder } from './builder.ts';
import { Generation } from './generation.ts';

export const WebhookAttempt = builder.prismaObject('WebhookAttempt', {
  description: "One try at POSTing a generation to its callbackUrl. Failed tries are retried with backoff; every try is kept.",
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: '1 for the first try' }),
    event: t.exposeString('event', { description: 'e.g. generation.succeeded' }),
    url: t.exposeString('url'),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: "The receiver's HTTP status, when it answered" }),
    error: t.exposeString('error', { nullable: true, description: 'Why the try failed (a non-2xx status, a timeout, a refused connection)' }),
    succeeded: t.exposeBoolean('succeeded'),
    durationMs: t.exposeInt('durationMs'),
    attemptedAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectFields(Generation, (t) => ({
  callbackUrl: t.exposeString('callbackUrl', { nullable: true, description: 'Receives the generation as signed JSON when it ends' }),
  webhookAttempts: t.relation('webhookAttempts', {
    description: 'Every delivery try to callbackUrl, first first',
    query: { orderBy: { attempt: 'asc' } },
  }),
}));

builder.queryField('webhookSigningSecret', (t) =>
  t.withAuth({ apiKey: true }).string({
    description:
      'The secret that signs webhooks for your API key. Each delivery carries `extendql-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.',
    resolve: async (_root, _args, ctx) => {
      const key = await ctx.db.apiKey.findUniqueOrThrow({ where: { id: ctx.apiKey.id }, select: { webhookSecret: true } });
      return key.webhookSecret;
    },
  }),
);

import { HasExtensionsError, IdempotencyConflictError, InsufficientCreditsError, InvalidInputError, NotCancelableError, NotDeletableError, NotFoundError, RateLimitedError } from '../errors.ts';
import { GenerationStatus } from './enums.ts';
import { builder } from './builder.ts';

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  description: 'Every typed error. Clients can switch on __typename for the specific kinds.',
  fields: (t) => ({ message: t.exposeString('message') }),
});

const FieldError = builder.objectRef<{ path: string[]; message: string }>('FieldError').implement({
  description: 'One offending input field.',
  fields: (t) => ({
    path: t.exposeStringList('path', { description: 'Path from the argument, e.g. ["input", "duration"]' }),
    message: t.exposeString('message'),
  }),
});

builder.objectType(InvalidInputError, {
  name: 'InvalidInputError',
  description: 'The input broke a rule of the Segmind contract. Nothing was recorded or spent.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ fields: t.field({ type: [FieldError], resolve: (error) => error.issues }) }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ id: t.exposeID('id') }),
});

builder.objectType(InsufficientCreditsError, {
  name: 'InsufficientCreditsError',
  description: 'The Segmind account cannot pay for this generation. Nothing was submitted.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    requiredUsd: t.exposeFloat('requiredUsd'),
    availableUsd: t.exposeFloat('availableUsd', { nullable: true }),
    creditLimit: t.field({
      type: builder.enumType('CreditLimit', {
        values: {
          SEGMIND_BALANCE: { description: "The Segmind account's balance" },
          DAILY_BUDGET: { description: "This API key's daily budget (DAILY_BUDGET_USD)" },
        },
      }),
      resolve: (error) => error.limit,
    }),
  }),
});

builder.objectType(IdempotencyConflictError, {
  name: 'IdempotencyConflictError',
  description: 'The idempotency key was used before with different parameters.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ idempotencyKey: t.exposeString('idempotencyKey') }),
});

builder.objectType(NotCancelableError, {
  name: 'NotCancelableError',
  description: 'The generation already ended (SUCCEEDED or FAILED).',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: GenerationStatus, resolve: (error) => error.status as 'SUCCEEDED' | 'FAILED' }),
  }),
});

builder.objectType(RateLimitedError, {
  name: 'RateLimitedError',
  description: 'A per-key limit was reached. Nothing was recorded or spent; retry after retryAfterSeconds.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    rateLimit: t.field({
      type: builder.enumType('RateLimit', {
        values: {
          REQUESTS_PER_MINUTE: { description: 'Generations started per rolling minute (RATE_LIMIT_PER_MINUTE)' },
          CONCURRENT_GENERATIONS: { description: 'Generations QUEUED or RUNNING at once (MAX_CONCURRENT_PER_KEY)' },
        },
      }),
      resolve: (error) => error.limit,
    }),
    max: t.exposeInt('max'),
    retryAfterSeconds: t.exposeInt('retryAfterSeconds'),
  }),
});

builder.objectType(NotDeletableError, {
  name: 'NotDeletableError',
  description: 'The generation is still QUEUED or RUNNING: cancel it first, or wait for it to end.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    id: t.exposeID('id'),
    status: t.field({ type: GenerationStatus, resolve: (error) => error.status as 'QUEUED' | 'RUNNING' }),
  }),
});

builder.objectType(HasExtensionsError, {
  name: 'HasExtensionsError',
  description: 'Other generations extend this one (see extensions); delete them first, so that no chain loses a link.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ id: t.exposeID('id'), extensionCount: t.exposeInt('extensionCount') }),
});

import { OPTION_OF_FIELD } from './args.ts';
import { CliError } from './errors.ts';
import { clean } from './format.ts';
import type { CliExtendVideoMutation, ExtendVideoInput } from './gql/graphql.ts';

type ExtendResult = CliExtendVideoMutation['extendVideo'];
export type ExtendFailure = Exclude<ExtendResult, { __typename: 'ExtendVideoSuccess' }>;

/** "--duration (input.duration)" for a path from the server. */
function fieldName(path: readonly string[]): string {
  const dotted = path.map(clean).join('.');
  const field = path[0] === 'input' ? path[1] : undefined;
  const option = field === undefined ? undefined : OPTION_OF_FIELD[field as keyof ExtendVideoInput];
  return option ? `${option} (${dotted})` : dotted;
}

/** The human message for each typed error of extendVideo; --json gets the error as it came. */
function describe(failure: ExtendFailure): string {
  const message = clean(failure.message);
  switch (failure.__typename) {
    case 'InvalidInputError':
      return [`InvalidInputError: ${message}`, ...failure.fields.map((field) => `  ${fieldName(field.path)}: ${clean(field.message)}`)].join('\n');
    case 'RateLimitedError':
      return `RateLimitedError: ${message} (${failure.rateLimit}, at most ${failure.max}); retry in ${failure.retryAfterSeconds}s`;
    case 'InsufficientCreditsError':
      return `InsufficientCreditsError: ${message}`;
    case 'NotFoundError':
      return `NotFoundError: ${message}`;
    case 'IdempotencyConflictError':
      return `IdempotencyConflictError: ${message}`;
  }
}

export function extendError(failure: ExtendFailure): CliError {
  const { __typename, ...rest } = failure;
  return new CliError(describe(failure), { type: __typename, ...rest });
}

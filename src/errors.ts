/** Domain errors. The GraphQL layer maps each class to a typed member of a result union. */

export class AppError extends Error {
  override name = 'AppError';
}

export interface FieldIssue {
  /** Path of the offending field inside the input, e.g. ["input", "duration"]. */
  path: string[];
  message: string;
}

export class InvalidInputError extends AppError {
  override name = 'InvalidInputError';
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  }
}

export class NotFoundError extends AppError {
  override name = 'NotFoundError';
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} ${id} was not found`);
  }
}

export type CreditLimit = 'SEGMIND_BALANCE' | 'DAILY_BUDGET';

export class InsufficientCreditsError extends AppError {
  override name = 'InsufficientCreditsError';
  constructor(
    readonly requiredUsd: number,
    readonly availableUsd: number | null,
    readonly limit: CreditLimit = 'SEGMIND_BALANCE',
  ) {
    const cost = `about $${requiredUsd.toFixed(3)}`;
    const left = `$${(availableUsd ?? 0).toFixed(3)}`;
    super(
      limit === 'DAILY_BUDGET'
        ? `This generation costs ${cost} but only ${left} of this API key's daily budget is left`
        : availableUsd === null
          ? `Segmind reports insufficient credits for this generation (${cost})`
          : `This generation costs ${cost} but only ${left} of Segmind credit is left`,
    );
  }
}

export type RateLimit = 'REQUESTS_PER_MINUTE' | 'CONCURRENT_GENERATIONS';

export class RateLimitedError extends AppError {
  override name = 'RateLimitedError';
  constructor(
    readonly limit: RateLimit,
    readonly max: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      limit === 'REQUESTS_PER_MINUTE'
        ? `This API key may start ${max} generations per minute; retry in ${retryAfterSeconds} s`
        : `This API key may have ${max} generations in progress at once; retry when one finishes (in about ${retryAfterSeconds} s)`,
    );
  }
}

export class IdempotencyConflictError extends AppError {
  override name = 'IdempotencyConflictError';
  constructor(readonly idempotencyKey: string) {
    super(`Idempotency key "${idempotencyKey}" was already used with different parameters`);
  }
}

export class NotCancelableError extends AppError {
  override name = 'NotCancelableError';
  constructor(
    readonly id: string,
    readonly status: string,
  ) {
    super(`Generation ${id} already ended as ${status} and cannot be canceled`);
  }
}

export class NotDeletableError extends AppError {
  override name = 'NotDeletableError';
  constructor(
    readonly id: string,
    readonly status: string,
  ) {
    super(`Generation ${id} is ${status}: only a finished generation can be deleted (cancel it first)`);
  }
}

export class HasExtensionsError extends AppError {
  override name = 'HasExtensionsError';
  constructor(
    readonly id: string,
    readonly extensionCount: number,
  ) {
    super(`Generation ${id} is the source of ${extensionCount} other generation${extensionCount === 1 ? '' : 's'}: delete ${extensionCount === 1 ? 'it' : 'them'} first`);
  }
}

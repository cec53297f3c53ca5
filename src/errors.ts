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
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[]) {
    super(issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
    this.issues = issues;
  }
}

export class NotFoundError extends AppError {
  override name = 'NotFoundError';
  readonly resource: string;
  readonly id: string;
  constructor(
    resource: string,
    id: string,
  ) {
    super(`${resource} ${id} was not found`);
    this.resource = resource;
    this.id = id;
  }
}

export type CreditLimit = 'SEGMIND_BALANCE' | 'DAILY_BUDGET';

export class InsufficientCreditsError extends AppError {
  override name = 'InsufficientCreditsError';
  readonly requiredUsd: number;
  readonly availableUsd: number | null;
  readonly limit: CreditLimit;
  constructor(
    requiredUsd: number,
    availableUsd: number | null,
    limit: CreditLimit = 'SEGMIND_BALANCE',
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
    this.requiredUsd = requiredUsd;
    this.availableUsd = availableUsd;
    this.limit = limit;
  }
}

export type RateLimit = 'REQUESTS_PER_MINUTE' | 'CONCURRENT_GENERATIONS';

export class RateLimitedError extends AppError {
  override name = 'RateLimitedError';
  readonly limit: RateLimit;
  readonly max: number;
  readonly retryAfterSeconds: number;
  constructor(
    limit: RateLimit,
    max: number,
    retryAfterSeconds: number,
  ) {
    super(
      limit === 'REQUESTS_PER_MINUTE'
        ? `This API key may start ${max} generations per minute; retry in ${retryAfterSeconds} s`
        : `This API key may have ${max} generations in progress at once; retry when one finishes (in about ${retryAfterSeconds} s)`,
    );
    this.limit = limit;
    this.max = max;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class IdempotencyConflictError extends AppError {
  override name = 'IdempotencyConflictError';
  readonly idempotencyKey: string;
  constructor(idempotencyKey: string) {
    super(`Idempotency key "${idempotencyKey}" was already used with different parameters`);
    this.idempotencyKey = idempotencyKey;
  }
}

export class NotCancelableError extends AppError {
  override name = 'NotCancelableError';
  readonly id: string;
  readonly status: string;
  constructor(
    id: string,
    status: string,
  ) {
    super(`Generation ${id} already ended as ${status} and cannot be canceled`);
    this.id = id;
    this.status = status;
  }
}

export class NotDeletableError extends AppError {
  override name = 'NotDeletableError';
  readonly id: string;
  readonly status: string;
  constructor(
    id: string,
    status: string,
  ) {
    super(`Generation ${id} is ${status}: only a finished generation can be deleted (cancel it first)`);
    this.id = id;
    this.status = status;
  }
}

export class HasExtensionsError extends AppError {
  override name = 'HasExtensionsError';
  readonly id: string;
  readonly extensionCount: number;
  constructor(
    id: string,
    extensionCount: number,
  ) {
    super(`Generation ${id} is the source of ${extensionCount} other generation${extensionCount === 1 ? '' : 's'}: delete ${extensionCount === 1 ? 'it' : 'them'} first`);
    this.id = id;
    this.extensionCount = extensionCount;
  }
}

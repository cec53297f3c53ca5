/** Exit codes of the `extendql` command. */
export const EXIT = {
  OK: 0,
  /** The server refused or failed the request, the generation failed, or the download did. */
  FAILURE: 1,
  /** The command line itself was wrong; nothing was sent. */
  USAGE: 2,
  /** Ctrl-C. */
  INTERRUPTED: 130,
} as const;

/** What --json prints about an error: `type` names its kind, the rest depends on it. */
export type ErrorDetails = { type: string } & Record<string, unknown>;

/** A failure the CLI reports on stderr (and on stdout with --json) before exiting non-zero. */
export class CliError extends Error {
  override name = 'CliError';
  readonly details: ErrorDetails;
  readonly exitCode: number;
  readonly retryable;
  constructor(
    message: string,
    details: ErrorDetails = { type: 'Error' },
    exitCode: number = EXIT.FAILURE,
    /** True when trying again later may work (the connection dropped, the server was down). */
    retryable = false,
  ) {
    super(message);
    this.details = details;
    this.exitCode = exitCode;
    this.retryable = retryable;
  }
}

/** Bad options or arguments. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, { type: 'UsageError' }, EXIT.USAGE);
  }
}

/** The user pressed Ctrl-C. */
export class InterruptedError extends CliError {
  override name = 'InterruptedError';
  constructor(message = 'Interrupted') {
    super(message, { type: 'Interrupted' }, EXIT.INTERRUPTED);
  }
}

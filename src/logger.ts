import { pino } from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs. Header and key fields are redacted wherever they appear. */
const destinations = new WeakMap<Logger, ReturnType<typeof pino.destination>>();

export function createLogger(level: string = 'info'): Logger {
  const destination = pino.destination({ dest: 1, sync: false });
  const logger = pino(
    {
      level,
      redact: {
        paths: ['apiKey', '*.apiKey', 'headers["x-api-key"]', '*.headers["x-api-key"]', 'key', '*.key'],
        censor: '[redacted]',
      },
    },
    // Asynchronous writes: a synchronous write per line (pino's default for stdout) was a system
    // call per request on the hot path. Lines still queued are flushed on exit (flushLogs).
    destination,
  );
  destinations.set(logger, destination);
  return logger;
}

/** Writes out log lines still buffered, before the process exits. */
export function flushLogs(logger: Logger): void {
  try {
    destinations.get(logger)?.flushSync();
  } catch {
    // Nothing more can be done about a log that cannot be written.
  }
}

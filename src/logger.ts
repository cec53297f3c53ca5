import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { PrettyOptions, PrettyStream } from 'pino-pretty';

/** pino-pretty, loaded only for a terminal outside production: every other process skips its modules at start. */
function pretty(options: PrettyOptions): PrettyStream {
  const build = createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => PrettyStream;
  return build(options);
}

export type Logger = pino.Logger;

const destinations = new WeakMap<Logger, ReturnType<typeof pino.destination>>();

/**
 * Structured JSON logs. Header and key fields are redacted wherever they appear. With
 * `humanOnTerminal` (everywhere but production) and stdout a terminal, the lines are rendered for
 * reading instead by pino-pretty (time, level, message, then the fields); pipes and files always
 * get JSON.
 */
export function createLogger(level: string = 'info', options: { humanOnTerminal?: boolean } = {}): Logger {
  const redact = { paths: ['apiKey', '*.apiKey', 'headers["x-api-key"]', '*.headers["x-api-key"]', 'key', '*.key'], censor: '[redacted]' };
  if (options.humanOnTerminal && process.stdout.isTTY) {
    const colorize = process.stdout.hasColors?.() ?? false;
    return pino({ level, redact }, pretty({ colorize, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true }));
  }
  const destination = pino.destination({ dest: 1, sync: false });
  const logger = pino(
    { level, redact },
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

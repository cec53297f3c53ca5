import { pino } from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs. Header and key fields are redacted wherever they appear. */
export function createLogger(level: string = 'info'): Logger {
  return pino({
    level,
    redact: {
      paths: ['apiKey', '*.apiKey', 'headers["x-api-key"]', '*.headers["x-api-key"]', 'key', '*.key'],
      censor: '[redacted]',
    },
  });
}

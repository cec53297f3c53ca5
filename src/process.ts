import type { App } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { flushLogs, type Logger } from './logger.ts';
import { DatabaseUnreachableError } from './db/connect.ts';

/** The configuration, or exit 2 with the offending variables named. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * SIGINT/SIGTERM, and SIGHUP (the terminal that ran `npm start` was closed): stop taking work,
 * let running steps finish within SHUTDOWN_GRACE_MS, exit 0. Whatever is still running after the
 * grace period is retried by another process later. A second SIGINT or SIGTERM exits at once.
 * Installed while the app is still starting: a signal then lets the start finish and stops
 * everything it started (the embedded PostgreSQL included), rather than killing the process with
 * what it started left running.
 */
export function stopOnSignals(starting: App | Promise<App>, config: Config, logger: Logger): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stopping) {
        // A hangup may follow the Ctrl-C that began the stop (the terminal closed meanwhile): it asks for no hurry.
        if (signal === 'SIGHUP') return;
        logger.warn({ signal }, 'second signal: exiting without waiting');
        flushLogs(logger);
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down: no new work is taken; running steps may finish');
      const exit = (code: number) => {
        flushLogs(logger);
        process.exit(code);
      };
      Promise.resolve(starting)
        .then((app) => {
          setTimeout(() => exit(1), config.shutdownGraceMs + 5000).unref();
          return app.close();
        })
        .then(
          () => exit(0),
          () => exit(1),
        );
    });
  }
}

/**
 * A start that failed (startApp has already stopped what it started, the embedded PostgreSQL
 * included). Failures a newcomer causes by configuration get one line that says what to change.
 */
export function exitOnFailure(error: unknown, logger?: Logger): never {
  if (logger) flushLogs(logger);
  console.error(startFailureLine(error) ?? error);
  process.exit(1);
}

function startFailureLine(error: unknown): string | null {
  if (error instanceof DatabaseUnreachableError || error instanceof ConfigError) return error.message;
  const { code, port } = (error ?? {}) as NodeJS.ErrnoException & { port?: number };
  if (typeof port !== 'number') return null;
  if (code === 'EADDRINUSE') return `Port ${port} is in use (EADDRINUSE). Set PORT to another port, e.g. PORT=${port + 1} npm start.`;
  if (code === 'EACCES') return `Port ${port} needs privileges this process lacks (EACCES). Set PORT to a port above 1023, e.g. PORT=4000 npm start.`;
  return null;
}

// First: a one-line refusal on a Node too old for what follows.
import './require-node.mjs';
import { createLogger } from './logger.ts';
import { exitOnFailure, loadConfigOrExit, stopOnSignals } from './process.ts';
import { bootApp } from './start/boot.ts';

/**
 * `npm run worker`: works the job queue with no HTTP server. Run as many as you like beside the
 * servers; they share the queue in PostgreSQL (and subscription events through REDIS_URL). The
 * database starts while the app loads (src/start/boot.ts).
 */
const config = loadConfigOrExit();
const logger = createLogger(config.logLevel, { humanOnTerminal: !config.production });
const starting = bootApp(config, logger, { http: false });
stopOnSignals(starting, config, logger);
starting.catch(exitOnFailure);

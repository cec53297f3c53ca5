// First: a one-line refusal on a Node too old for what follows.
import './require-node.mjs';
import { startApp } from './app.ts';
import { createLogger } from './logger.ts';
import { exitOnFailure, loadConfigOrExit, stopOnSignals } from './process.ts';

/** `npm start`: the whole service in one process. */
const config = loadConfigOrExit();
const logger = createLogger(config.logLevel, { humanOnTerminal: !config.production });
const starting = startApp(config, { logger, worker: config.workerEnabled });
stopOnSignals(starting, config, logger);
starting.catch((error: unknown) => exitOnFailure(error, logger));

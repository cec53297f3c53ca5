// First: a one-line refusal on a Node too old for what follows.
import './require-node.mjs';
import { createLogger } from './logger.ts';
import { exitOnFailure, loadConfigOrExit, stopOnSignals } from './process.ts';
import { bootApp } from './start/boot.ts';

/** `npm start`: the whole service in one process. The database starts while the app loads (src/start/boot.ts). */
const config = loadConfigOrExit();
const logger = createLogger(config.logLevel, { humanOnTerminal: !config.production });
const starting = bootApp(config, logger, { worker: config.workerEnabled });
stopOnSignals(starting, config, logger);
starting.catch((error: unknown) => exitOnFailure(error, logger));

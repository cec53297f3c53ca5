// First: a one-line refusal on a Node too old for what follows.
import '../require-node.mjs';
import { loadConfig } from '../config.ts';
import { provisionDatabase } from '../db/connect.ts';
import { createLogger } from '../logger.ts';

/** `npm run db:migrate`: applies pending migrations (the server also does this at start). */
const config = loadConfig();
const database = await provisionDatabase(config, createLogger(config.logLevel, { humanOnTerminal: !config.production }), { ownSession: false });
await database.stop();
console.log('Database is up to date.');

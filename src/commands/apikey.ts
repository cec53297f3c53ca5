// First: a one-line refusal on a Node too old for what follows.
import '../require-node.mjs';
import { parseArgs } from 'node:util';
import { createApiKey, revokeApiKey } from '../auth/api-keys.js';
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { openDatabase } from '../db/connect.js';
import { createLogger } from '../logger.js';

const USAGE = `Usage:
  npm run apikey:create -- --name <name>   create a key; it is printed once, as the last line
  npm run apikey:revoke -- --id <id>       revoke a key by its id`;

/** Manages client API keys. Only a hash is stored, so a lost key must be replaced. */
async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, id: { type: 'string' } } });
  if ((command === 'create' && !values.name?.trim()) || (command === 'revoke' && !values.id) || !['create', 'revoke'].includes(command ?? '')) {
    console.error(USAGE);
    process.exit(2);
  }
  const config = loadConfig();
  const database = await openDatabase(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, { humanOnTerminal: !config.production }));
  const db = createDb(database.url, { max: 1 });
  try {
    if (command === 'create') {
      const created = await createApiKey(db, values.name!.trim());
      console.log(`Created API key ${created.id} (${created.prefix}…) named "${values.name!.trim()}".`);
      console.log(`Its webhooks are signed with ${created.webhookSecret} (the webhookSigningSecret query shows it again).`);
      // The key stays the last line, so scripts can take it with `tail -n 1`.
      console.log('Send it as the x-api-key header. It is shown only now:');
      console.log(created.key);
    } else {
      const revoked = await revokeApiKey(db, values.id!);
      console.log(revoked ? `Revoked ${values.id}` : `No active key ${values.id}`);
      if (!revoked) process.exitCode = 1;
    }
  } finally {
    await db.$disconnect();
    await database.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

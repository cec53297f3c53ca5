// First: a one-line refusal on a Node too old for what follows.
import '../require-node.mjs';
import { parseArgs } from 'node:util';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeySummary } from '../auth/api-keys.ts';
import { loadConfig } from '../config.ts';
import { createDb } from '../db/client.ts';
import { provisionDatabase } from '../db/connect.ts';
import { createLogger } from '../logger.ts';

const USAGE = `Usage:
  npm run apikey:create -- --name <name>   create a key; it is printed once, as the last line
  npm run apikey:revoke -- --id <id>       revoke a key by its id
  npm run apikey:list                      every key: name, id, prefix, created, last used, revoked`;

const COMMANDS = ['create', 'revoke', 'list'];

/** A time to the second, in UTC; `empty` when there is none. */
const when = (date: Date | null, empty: string) => (date ? `${date.toISOString().slice(0, 19).replace('T', ' ')}Z` : empty);

/** One row per key, in aligned columns; listApiKeys reads neither the hash nor the webhook secret. */
function keyTable(keys: ApiKeySummary[]): string {
  const rows = [
    ['NAME', 'ID', 'PREFIX', 'CREATED', 'LAST USED', 'REVOKED'],
    ...keys.map((key) => [key.name, key.id, `${key.prefix}…`, when(key.createdAt, ''), when(key.lastUsedAt, 'never'), when(key.revokedAt, '-')]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/** Manages client API keys. Only a hash is stored, so a lost key must be replaced. */
async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, id: { type: 'string' } } });
  if ((command === 'create' && !values.name?.trim()) || (command === 'revoke' && !values.id) || !COMMANDS.includes(command ?? '')) {
    console.error(USAGE);
    process.exit(2);
  }
  const config = loadConfig();
  const database = await provisionDatabase(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, { humanOnTerminal: !config.production }), { ownSession: false });
  const db = createDb(database.url, { max: 1 });
  try {
    if (command === 'create') {
      const created = await createApiKey(db, values.name!.trim());
      console.log(`Created API key ${created.id} (${created.prefix}…) named "${values.name!.trim()}".`);
      console.log(`Its webhooks are signed with ${created.webhookSecret} (the webhookSigningSecret query shows it again).`);
      // The key stays the last line, so scripts can take it with `tail -n 1`.
      console.log('Send it as the x-api-key header. It is shown only now:');
      console.log(created.key);
    } else if (command === 'list') {
      const keys = await listApiKeys(db);
      console.log(keys.length ? keyTable(keys) : 'No API keys yet: npm run apikey:create -- --name <name>');
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

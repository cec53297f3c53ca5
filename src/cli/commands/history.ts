import type { Command } from '../args.ts';
import { GraphQLClient } from '../client.ts';
import { clean, formatTimestamp, formatUsd, truncate } from '../format.ts';
import { CliHistoryDocument, type CliHistoryQuery } from '../gql/graphql.ts';
import type { Io } from '../io.ts';
import { renderTable, type Column } from '../table.ts';

export type HistoryCommand = Extract<Command, { kind: 'history' }>;
type HistoryNode = CliHistoryQuery['generations']['edges'][number]['node'];

/** The server's largest page (Pothos' default maxSize); longer histories take several. */
const PAGE_SIZE = 100;
/** Prompts are cut to this many characters, and shorter still to fit a terminal's width. */
const PROMPT_WIDTH = 60;

const COLUMNS: Column[] = [
  { header: 'ID' },
  { header: 'STATUS' },
  { header: 'DURATION', align: 'right' },
  { header: 'QUALITY' },
  { header: 'COST', align: 'right' },
  { header: 'CREATED (UTC)' },
  { header: 'PROMPT', shrink: { min: 20 } },
  // Last and never cut short: a URL is only of use whole.
  { header: 'URL' },
];

/**
 * Segmind's figure once it ran the job; until then (or when it gave none) ~ and extendql's
 * estimate, which the daily budget counts, except for FAILED generations, which it does not.
 */
function cost(node: HistoryNode): string {
  if (node.cost != null) return formatUsd(node.cost);
  return node.status === 'FAILED' ? '-' : `~${formatUsd(node.estimatedCost)}`;
}

/** The video's URL; for a SUCCEEDED generation whose video was removed, when. */
function url(node: HistoryNode): string {
  if (node.video) return clean(node.video.url);
  return node.videoExpiredAt ? `(removed ${formatTimestamp(node.videoExpiredAt)})` : '-';
}

async function fetchHistory(client: GraphQLClient, command: HistoryCommand): Promise<{ totalCount: number; nodes: HistoryNode[] }> {
  const nodes: HistoryNode[] = [];
  let after: string | null = null;
  for (;;) {
    const page: CliHistoryQuery['generations'] = (
      await client.request(CliHistoryDocument, { first: Math.min(PAGE_SIZE, command.first - nodes.length), after, status: command.status ?? null })
    ).generations;
    nodes.push(...page.edges.map((edge) => edge.node));
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor || nodes.length >= command.first) return { totalCount: page.totalCount, nodes: nodes.slice(0, command.first) };
    after = page.pageInfo.endCursor;
  }
}

/** Your most recent generations, newest first, as a table (or JSON). */
export async function history(command: HistoryCommand, io: Io, signal: AbortSignal): Promise<void> {
  const client = new GraphQLClient({ ...command.connection, signal });
  const { totalCount, nodes } = await fetchHistory(client, command);
  if (command.json) {
    io.stdout.write(`${JSON.stringify({ totalCount, generations: nodes })}\n`);
    return;
  }
  const which = command.status ? `${command.status} generations` : 'generations';
  if (nodes.length === 0) {
    io.stdout.write(`No ${which} yet.\n`);
    return;
  }
  const rows = nodes.map((node) => [
    clean(node.id),
    node.status,
    `${node.duration}s`,
    node.quality,
    cost(node),
    formatTimestamp(node.createdAt),
    truncate(clean(node.prompt), PROMPT_WIDTH),
    url(node),
  ]);
  io.stdout.write(renderTable(COLUMNS, rows, io.stdout.columns ?? Infinity));
  io.stdout.write(`${nodes.length} of ${totalCount} ${which}${nodes.some((node) => node.cost == null && node.status !== 'FAILED') ? ' (~: estimated cost)' : ''}\n`);
}

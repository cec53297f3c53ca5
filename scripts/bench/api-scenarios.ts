/**
 * Scenarios 1 to 3 of `npm run bench`, against the API-only server and the baseline server, and the
 * client cost of one lookup by each way of reaching PostgreSQL.
 */
import { compare, load, medianOf, type Comparison, type RunFigures } from './lib.ts';
import { queryCost } from './query-cost.ts';
import { comparisonRows, fmt, profiled, runsText, verdict, type BenchOptions, type Findings } from './report.ts';
import { countSql, globalId, postJson, type ApiBench } from './servers.ts';

/** Baseline and subject alternately, as `compare` runs them, with this run's settings. */
const compared = (api: ApiBench, o: BenchOptions, baseline: (duration: number) => Promise<RunFigures>, subject: (duration: number) => Promise<RunFigures>): Promise<Comparison> =>
  compare(o.runs, o.warmupS, baseline, subject, o.durationS, api.settle, api.probed);

const oneExtraRun = (o: BenchOptions) => `one extra ${o.durationS} s run`;

/** Scenario 1: `generation(id)` with 100 connections against the same Prisma lookup. */
export async function scenario1(api: ApiBench, o: BenchOptions, findings: Findings): Promise<void> {
  const { graphqlUrl, reader, oneId, baseline, server } = api;
  const query = 'query One($id: ID!) { generation(id: $id) { id status prompt duration quality createdAt } }';
  const body = JSON.stringify({ query, variables: { id: globalId(oneId) } });
  const check = await postJson(graphqlUrl, { query, variables: { id: globalId(oneId) } }, { 'x-api-key': reader.key });
  if (check.errors || !check.data) throw new Error(`scenario 1 query failed: ${JSON.stringify(check)}`);
  console.log('scenario 1: generation(id), 100 connections');
  const subjectRun = (duration: number) => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 100, duration });
  const c = await compared(api, o, (duration) => load({ url: `${baseline.url}/generation?id=${oneId}`, headers: { 'x-api-key': reader.key }, connections: 100, duration }), subjectRun);
  findings.rows.push(...comparisonRows('1. generation(id), 100 connections', c, { rps: 0.75, p99: 2 }));
  findings.quoted.s1p99 = medianOf(c.subject, 'p99');
  findings.quoted.s1ServedP99 = medianOf(c.subject, 'servedP99');
  findings.notes.push(`Scenario 1 — ${runsText(c)}.`);
  findings.notes.push(await profiled(server, 'Scenario 1', () => subjectRun(o.durationS), oneExtraRun(o)));
  await api.settle();
}

const PAGE_QUERY = `query Page($first: Int!) { generations(first: $first) { totalCount edges { node { id source { id } video { url } extensions { totalCount } } } } }`;

/** Scenario 2, first part: the SQL statements of one history page, for N = 5, 50 and 100. */
async function pageStatements(api: ApiBench, findings: Findings): Promise<void> {
  const { graphqlUrl, reader, server } = api;
  const counts: { first: number; total: number; forQuery: number; sql: string[] }[] = [];
  await api.settle();
  // One uncounted request first: the first of a process may do one-off work.
  await postJson(graphqlUrl, { query: PAGE_QUERY, variables: { first: 5 } }, { 'x-api-key': reader.key });
  for (const first of [5, 50, 100]) {
    let result: Awaited<ReturnType<typeof postJson>> = {};
    const sql = await countSql(server, async () => (result = await postJson(graphqlUrl, { query: PAGE_QUERY, variables: { first } }, { 'x-api-key': reader.key })));
    if (result.errors || !result.data) throw new Error(`scenario 2 query failed: ${JSON.stringify(result)}`);
    counts.push({ first, total: sql.length, forQuery: sql.filter((text) => !text.includes('"ApiKey"')).length, sql });
  }
  const constant = counts.every((c) => c.total === counts[0]!.total);
  const withinTarget = counts.every((c) => c.forQuery <= 4);
  const withinTargetWithKey = counts.every((c) => c.total <= 4);
  if (!constant || !withinTarget) findings.failed = true;
  findings.rows.push({
    scenario: '2. generations(first: N) + source, video, extensions { totalCount }',
    figure: 'SQL statements per request (N = 5 / 50 / 100)',
    subject: `${counts.map((c) => c.total).join(' / ')} (${counts.map((c) => c.forQuery).join(' / ')} without the API-key lookup)`,
    baseline: '2 (key lookup + one page statement)',
    ratio: '—',
    target: 'constant in N, ≤ 4',
    verdict: `${constant ? 'constant: met' : 'NOT constant: **missed**'}; ≤ 4: ${verdict(withinTarget)} without the key lookup, ${verdict(withinTargetWithKey)} with it`,
  });
  findings.notes.push(`Scenario 2 — statements the server sent for first: 100:\n\n${counts[2]!.sql.map((text) => `    ${text}`).join('\n')}`);
}

/** Scenario 2: the statement count, then a page of 100 with 10 connections against one hand-written statement. */
export async function scenario2(api: ApiBench, o: BenchOptions, findings: Findings): Promise<void> {
  const { graphqlUrl, reader, baseline, server } = api;
  await pageStatements(api, findings);
  const body = JSON.stringify({ query: PAGE_QUERY, variables: { first: 100 } });
  console.log('scenario 2: generations(first: 100), 10 connections');
  const subjectRun = (duration: number) => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 10, duration });
  const c = await compared(api, o, (duration) => load({ url: `${baseline.url}/page?first=100`, headers: { 'x-api-key': reader.key }, connections: 10, duration }), subjectRun);
  findings.rows.push(...comparisonRows('2. generations(first: 100), 10 connections', c, { p50: 4, cpuMs: 4 }));
  findings.notes.push(`Scenario 2 — ${runsText(c)}.`);
  findings.notes.push(await profiled(server, 'Scenario 2', () => subjectRun(o.durationS), oneExtraRun(o)));
  await api.settle();
}

/**
 * Scenario 2 with the response cache on (RESPONSE_CACHE_TTL_MS, off by default), on a second
 * API-only server: a dashboard re-reading the same page, and the same load with every request a
 * miss (a variable that changes each time), each against the same hand-written baseline.
 */
export async function scenario2Cached(api: ApiBench, o: BenchOptions, findings: Findings): Promise<void> {
  const { reader, baseline } = api;
  const cached = await api.startVariant({ RESPONSE_CACHE_TTL_MS: '5000' });
  try {
    const url = `${cached.url}/graphql`;
    const headers = { 'content-type': 'application/json', 'x-api-key': reader.key };
    const baselineRun = (duration: number) => load({ url: `${baseline.url}/page?first=100`, headers: { 'x-api-key': reader.key }, connections: 10, duration });
    const probed = { subject: cached, baseline };
    const run = (subject: (duration: number) => Promise<RunFigures>) => compare(o.runs, o.warmupS, baselineRun, subject, o.durationS, api.settle, probed);
    console.log('scenario 2: the same page with the response cache on, repeated reads and misses');
    const repeated = await run((duration) => load({ url, method: 'POST', headers, body: JSON.stringify({ query: PAGE_QUERY, variables: { first: 100 } }), connections: 10, duration }));
    let n = 0;
    const miss = { method: 'POST' as const, path: '/graphql', headers, setupRequest: (req: object) => ({ ...req, body: JSON.stringify({ query: PAGE_QUERY, variables: { first: 100, miss: n++ } }) }) };
    const misses = await run((duration) => load({ url: cached.url, requests: [miss], connections: 10, duration }));
    findings.rows.push(
      ...comparisonRows('2. the same page, response cache on (RESPONSE_CACHE_TTL_MS=5000): repeated reads', repeated, {}),
      ...comparisonRows('2. the same page, response cache on: every request a miss', misses, {}),
    );
    findings.notes.push(
      `Scenario 2 with the response cache on (a second API-only server, \`RESPONSE_CACHE_TTL_MS=5000\`; the cache is off by default) — repeated reads of one page: ${runsText(repeated)}. Every request a miss (an unused variable that changes with each request, so no two cache keys are equal): ${runsText(misses)}.`,
    );
  } finally {
    await cached.stop();
  }
}

const EXTEND_QUERY = 'mutation Extend($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id status } } } }';
const EXTEND_VARIABLES = { input: { videoUrl: 'https://videos.example/bench.mp4', prompt: 'the camera keeps rolling down the street', quality: 'Q540P' } };

const rotate = <T>(items: T[]) => {
  let i = 0;
  return () => items[i++ % items.length]!;
};

/** Scenario 3 with one set of keys: `extendVideo` with 50 connections against one INSERT. */
async function extendWithKeys(api: ApiBench, o: BenchOptions, findings: Findings, label: string, keys: ApiBench['writers'], baselineKeys: ApiBench['writers']): Promise<void> {
  const { server, baseline, db, writers, baselineWriters } = api;
  const body = JSON.stringify({ query: EXTEND_QUERY, variables: EXTEND_VARIABLES });
  const nextKey = rotate(keys);
  const nextKeyId = rotate(baselineKeys);
  const subjectRun = (duration: number) =>
    load({
      url: server.url,
      connections: 50,
      duration,
      requests: [{ method: 'POST', path: '/graphql', headers: { 'content-type': 'application/json' }, body, setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-api-key': nextKey().key } }) }],
    });
  const baselineRun = (duration: number) =>
    load({
      url: baseline.url,
      connections: 50,
      duration,
      requests: [{ method: 'POST', path: '/extend', headers: { 'content-type': 'application/json' }, body, setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-key-id': nextKeyId().id } }) }],
    });
  const allWriters = [...writers, ...baselineWriters].map((w) => w.id);
  const before = await db.generation.count({ where: { apiKeyId: { in: allWriters } } });
  console.log(`scenario 3: extendVideo, 50 connections, ${label}`);
  const c = await compared(api, o, baselineRun, subjectRun);
  const after = await db.generation.count({ where: { apiKeyId: { in: allWriters } } });
  const inserted = after - before;
  const okResponses = c.subject.reduce((n, r) => n + r.ok, 0) + c.baseline.reduce((n, r) => n + r.ok, 0);
  findings.rows.push(...comparisonRows(`3. extendVideo accepted, 50 connections, ${label}`, c, { rps: 0.3, p99AbsMs: 100 }));
  findings.notes.push(
    `Scenario 3 (${label}) — ${runsText(c)}. Rows for the writer keys grew by ${inserted}; 2xx responses over the measured runs of both sides: ${okResponses} (warm-ups insert rows too, so rows ≥ responses is expected).`,
  );
  findings.notes.push(await profiled(server, `Scenario 3 (${label})`, () => subjectRun(o.durationS), oneExtraRun(o)));
  await api.settle();
}

/** Scenario 3: the statements of one `extendVideo`, then its load runs with 50 keys and with one. */
export async function scenario3(api: ApiBench, o: BenchOptions, findings: Findings): Promise<void> {
  const { graphqlUrl, server, writers, baselineWriters } = api;
  const check = (await postJson(graphqlUrl, { query: EXTEND_QUERY, variables: EXTEND_VARIABLES }, { 'x-api-key': writers[0]!.key })) as { data?: { extendVideo?: { __typename: string } } };
  if (check.data?.extendVideo?.__typename !== 'ExtendVideoSuccess') throw new Error(`scenario 3 mutation failed: ${JSON.stringify(check)}`);
  await api.settle();
  const extendSql = await countSql(server, () => postJson(graphqlUrl, { query: EXTEND_QUERY, variables: EXTEND_VARIABLES }, { 'x-api-key': writers[1]!.key }));
  findings.notes.push(
    `Scenario 3 — statements the server sent during one extendVideo request (${extendSql.length}; pg-boss's own statements are not counted, and a worker step that ran in the same moment would be):\n\n${extendSql.map((text) => `    ${text}`).join('\n')}`,
  );
  await extendWithKeys(api, o, findings, `${o.writeKeys} API keys`, writers, baselineWriters);
  await extendWithKeys(api, o, findings, 'one API key', writers.slice(0, 1), baselineWriters.slice(0, 1));
}

/** The note on the client CPU of one lookup by each way of reaching PostgreSQL (scenarios 1 and 2). */
export async function queryCostNote(api: ApiBench, findings: Findings): Promise<void> {
  await api.settle();
  const cost = await queryCost(api.databaseUrl, api.reader.id, api.oneId);
  findings.notes.push(
    `Client CPU of one lookup (scenario 1's row by id and key, 5,000 lookups with 20 in flight, in the bench process while the servers are idle; scripts/bench/query-cost.ts): ` +
      `Prisma \`findFirst\` ${fmt(cost.prismaFindFirstUs, 0)} µs, Prisma \`findUnique\` ${fmt(cost.prismaFindUniqueUs, 0)} µs, Prisma \`$queryRaw\` ${fmt(cost.prismaQueryRawUs, 0)} µs, a named \`pg\` statement ${fmt(cost.pgNamedUs, 0)} µs. ` +
      `Each Prisma model query is planned by the query compiler (WebAssembly) when it runs; \`findUnique\` calls made in the same tick share one plan and one statement. Scenario 1's baseline uses \`findUnique\`; extendql reads the row with a named \`pg\` statement, and a history page with another.`,
  );
}

/** Scenarios 1 to 3 as chosen with --only, and the lookup cost when 1 or 2 ran. */
export async function apiScenarios(api: ApiBench, o: BenchOptions, findings: Findings): Promise<void> {
  if (o.only.has(1)) await scenario1(api, o, findings);
  if (o.only.has(2)) {
    await scenario2(api, o, findings);
    await scenario2Cached(api, o, findings);
  }
  if (o.only.has(3)) await scenario3(api, o, findings);
  if (o.only.has(1) || o.only.has(2)) await queryCostNote(api, findings);
}

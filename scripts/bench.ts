/**
 * `npm run bench`: starts the real server (a child process, on real PostgreSQL: DATABASE_URL or an
 * embedded cluster) with a fake Segmind, runs each scenario against it and against a baseline in
 * its own child process (scripts/bench/baseline-server.ts), alternating, and writes BENCHMARKS.md.
 * The load generator (autocannon) runs in this process. Everything is on 127.0.0.1.
 *
 * Options: --runs 3 --duration 5 (seconds per run) --only 1,2,3,4,5,6,7,8 --in-flight 2000.
 * BENCH_NODE_FLAGS adds Node flags to the server's command (default: none, as npm start runs it).
 *
 * Scenarios 1 to 3 (scripts/bench/api-scenarios.ts) run against an API-only server and the
 * baseline server; 4 to 7 (scripts/bench/job-scenarios.ts) each against a server of their own that
 * works its jobs; 8 (scripts/bench/start-time.ts) times `npm start` itself.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from '../src/upstream/simulator/index.ts';
import { apiScenarios } from './bench/api-scenarios.ts';
import { realtimeScenarios, scenario4, scenario5 } from './bench/job-scenarios.ts';
import { addUnmeasured, newFindings, writeReport, type BenchOptions } from './bench/report.ts';
import { benchServers, startApiBench } from './bench/servers.ts';
import { scenario8 } from './bench/start-time.ts';
import { scratchPostgres } from './lib/scratch-postgres.ts';

function benchOptions(): BenchOptions {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, 'in-flight': { type: 'string', default: '2000' }, only: { type: 'string', default: '1,2,3,4,5,6,7,8' } },
  });
  return {
    runs: Number(values.runs),
    durationS: Number(values.duration),
    warmupS: 1,
    inFlight: Number(values['in-flight']),
    only: new Set(values.only.split(',').map(Number)),
    seeded: 120,
    writeKeys: 50,
  };
}

async function main() {
  const wallStart = Date.now();
  const options = benchOptions();
  const scratch = await scratchPostgres('bench');
  const databaseUrl = await scratch.createDatabase();
  // The first server's fake only answers the credit balance: that server works no jobs.
  const segmindKey = `sk-bench-${randomBytes(12).toString('hex')}`;
  const fake = await startSimulator({ apiKey: segmindKey, mediaDir: join(scratch.work, 'media'), credits: 1e9, queueMs: 600_000, processingMs: 1000 });
  const servers = benchServers(options, scratch, databaseUrl, { url: fake.url, key: segmindKey });
  const findings = newFindings();

  const api = await startApiBench(servers, databaseUrl, fake);
  await apiScenarios(api, options, findings);
  findings.peakRss = await api.stop();
  await fake.close();

  if (options.only.has(6) || options.only.has(7)) await realtimeScenarios(servers, findings);
  if (options.only.has(4)) await scenario4(servers, findings);
  if (options.only.has(5)) await scenario5(servers, findings);
  if (options.only.has(8)) await scenario8(servers, findings);
  addUnmeasured(findings, options);
  await writeReport(findings, options, servers.command, (Date.now() - wallStart) / 1000);

  await scratch.close();
  if (findings.failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

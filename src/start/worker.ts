import type { Config } from '../config.ts';
import { startRetentionSweep } from '../generations/cleanup.ts';
import { submitSourceUrls } from '../generations/source-links.ts';
import { GenerationWorker } from '../generations/worker.ts';
import type { Lifecycle } from '../lifecycle.ts';
import type { Core } from './core.ts';

/**
 * Works the job queue in this process: generation steps, webhooks and the sweeps. Its stops are
 * registered at once; the returned promise resolves once the workers take jobs, which is after the
 * job engine has started.
 */
export function startWorker(config: Config, core: Core, lifecycle: Lifecycle): Promise<void> {
  const { db, pool, segmind, storage, events, logger, metrics, webhooks, queue } = core;
  const worker = new GenerationWorker({
    db,
    pool,
    segmind,
    storage,
    events,
    logger,
    poll: config.poll,
    deadlineMs: config.generationDeadlineMs,
    maxVideoBytes: config.maxVideoBytes,
    onRetry: (code) => metrics.retries.inc({ code }),
    webhooks,
    sourceUrl: submitSourceUrls({ db, storage, deadlineMs: config.generationDeadlineMs, logger }),
  });
  const working = (async () => {
    await queue.work(config.workerConcurrency, (job) => worker.step(job.generationId));
    await queue.workWebhooks(4, (job) => webhooks.deliver(job.generationId));
  })();
  startStallSweep(config, core, worker, lifecycle);
  if (config.retention) lifecycle.add('retention sweep', startRetentionSweep({ db, storage, logger }, config.retention));
  // Stopped before the upstream client and the database: steps in flight finish first.
  lifecycle.add('job workers', () => queue.stop({ graceful: true, timeoutMs: config.shutdownGraceMs }));
  return working;
}

/**
 * A safety net for steps that were lost: looks for quiet unfinished generations now and then,
 * and for ended ones whose webhook was never scheduled.
 */
function startStallSweep(config: Config, core: Core, worker: GenerationWorker, lifecycle: Lifecycle): void {
  const { queue, webhooks, logger } = core;
  const sweep = async () => {
    for (const id of await worker.stalled(config.sweep.stallAfterMs)) await queue.enqueue(id);
    await webhooks.scheduleMissed(10_000);
  };
  const sweeper = setInterval(
    () => void sweep().catch((error: Error) => logger.warn({ err: error.message }, 'stalled-generation sweep failed')),
    config.sweep.intervalMs,
  );
  sweeper.unref();
  lifecycle.add('stalled-generation sweep', async () => clearInterval(sweeper));
}

import { PgBoss, type Db as BossDb } from 'pg-boss';
import { isUnavailableError } from '../db/unavailable.ts';
import type { Logger } from '../logger.ts';

/** One queue: each job advances one generation by one step (submit, poll, or copy). */
export const GENERATION_QUEUE = 'extend-video';

/** Webhook deliveries: one job per ended generation, retried with backoff by the engine. */
export const WEBHOOK_QUEUE = 'deliver-webhook';

export interface WebhookRetryPolicy {
  maxAttempts: number;
  retryDelaySeconds: number;
}

export interface GenerationJob {
  generationId: string;
}

/** What a step asks for next: nothing (terminal or handled elsewhere), or another step later. */
export type StepOutcome = { next: 'done' } | { next: 'again'; afterMs: number };

/** Runs a SQL statement inside the caller's transaction, so an enqueue commits with it. */
export type SqlExecutor = BossDb;

/** The queues' settings; createQueue leaves an existing queue as it was, so changed ones are applied too. */
async function createQueues(boss: PgBoss, webhooks: WebhookRetryPolicy): Promise<void> {
  await boss.createQueue(GENERATION_QUEUE, {
    // At most one waiting and one running step per generation (singletonKey = generation id):
    // a step can enqueue its successor while it runs, and duplicates collapse.
    policy: 'stately',
    notify: true,
    // A step whose process stops sending heartbeats (kill -9, lost machine) is retried.
    heartbeatSeconds: 10,
    // A step that throws (a database blip, a bug) is retried; upstream retries are steps.
    retryLimit: 20,
    retryDelay: 1,
    retryBackoff: true,
    retryDelayMax: 60,
    expireInSeconds: 60 * 60,
    deleteAfterSeconds: 7 * 24 * 3600,
  });
  await boss.createQueue(WEBHOOK_QUEUE, {
    // One pending delivery per generation, however often it is scheduled.
    policy: 'stately',
    notify: true,
    heartbeatSeconds: 10,
    retryLimit: webhooks.maxAttempts - 1,
    retryDelay: webhooks.retryDelaySeconds,
    retryBackoff: true,
    retryDelayMax: 3600,
    expireInSeconds: 5 * 60,
    deleteAfterSeconds: 7 * 24 * 3600,
  });
  await boss.updateQueue(GENERATION_QUEUE, { notify: true });
  await boss.updateQueue(WEBHOOK_QUEUE, { notify: true, retryLimit: webhooks.maxAttempts - 1, retryDelay: webhooks.retryDelaySeconds });
}

/**
 * The job engine: pg-boss on the same PostgreSQL. Jobs survive restarts, and any number of
 * server or worker processes share the queue.
 */
export class JobQueue {
  private readonly boss: PgBoss;
  private readonly logger: Logger;
  /** Resolves once pg-boss runs and both queues exist; rejects when it could not start. */
  readonly started: Promise<void>;
  private running = false;

  private constructor(boss: PgBoss, logger: Logger, webhooks: WebhookRetryPolicy) {
    this.boss = boss;
    this.logger = logger;
    this.started = boss
      .start()
      .then(() => createQueues(boss, webhooks))
      .then(() => void (this.running = true));
    // Whoever needs the queue awaits `started`; a failure before anyone does is not unhandled.
    this.started.catch(() => {});
  }

  /**
   * The engine on `databaseUrl`, starting: pg-boss checks its schema, starts its supervision and
   * creates the queues in the background (`started`), so the process can go on starting, and
   * serving, meanwhile. Every method waits for the start.
   */
  static start(
    databaseUrl: string,
    logger: Logger,
    options: { superviseIntervalSeconds?: number; webhooks?: WebhookRetryPolicy } = {},
  ): JobQueue {
    const supervise = options.superviseIntervalSeconds ?? 10;
    const boss = new PgBoss({
      connectionString: databaseUrl,
      schema: 'pgboss',
      max: 10,
      // How soon the jobs of a process that died are noticed (with the heartbeat below).
      superviseIntervalSeconds: supervise,
      monitorIntervalSeconds: supervise,
      // New jobs wake idle workers at once (LISTEN/NOTIFY) instead of at their next poll.
      useListenNotify: true,
    });
    // While PostgreSQL is away, every poll of the engine fails the same way: a warning without a stack
    // says so (it recovers by itself once the database is back); anything else is a real error.
    boss.on('error', (error) => {
      if (isUnavailableError(error)) logger.warn({ err: error.message }, 'job engine cannot reach the database; retrying');
      else logger.error({ err: error }, 'job engine error');
    });
    return new JobQueue(boss, logger, options.webhooks ?? { maxAttempts: 8, retryDelaySeconds: 10 });
  }

  /** Whether the engine has started (for /ready: until then it is "starting"). */
  get isStarted(): boolean {
    return this.running;
  }

  /** Enqueues a step for a generation, inside `db`'s transaction when one is given. */
  async enqueue(generationId: string, options: { afterMs?: number; db?: SqlExecutor } = {}): Promise<void> {
    if (!this.running) await this.started;
    const startAfter = options.afterMs ? new Date(Date.now() + options.afterMs) : undefined;
    await this.boss.send(GENERATION_QUEUE, { generationId } satisfies GenerationJob, {
      singletonKey: generationId,
      ...(startAfter && { startAfter }),
      ...(options.db && { db: options.db }),
    });
  }

  /**
   * Works the queue. The next step is enqueued before the current one completes; if the process
   * dies in between, the stately policy keeps the chain from forking.
   */
  async work(concurrency: number, step: (job: GenerationJob) => Promise<StepOutcome>): Promise<void> {
    // Each fetch takes up to `batch` due steps and runs them side by side; while fetches come back
    // full, workers fetch again at once instead of waiting for the next poll.
    const batch = 8;
    if (!this.running) await this.started;
    if (this.stopped) return;
    this.workerId = await this.boss.work(
      GENERATION_QUEUE,
      {
        localConcurrency: Math.max(1, Math.ceil(concurrency / batch)),
        batchSize: Math.min(batch, concurrency),
        pollingIntervalSeconds: 0.5,
        // Delayed steps (the next poll) send no NOTIFY when they fall due: keep polling often.
        notifyPollingIntervalSeconds: 0.5,
        burstWhenBatchFull: true,
        perJobResults: true,
      },
      async (jobs: { id: string; data: GenerationJob }[]) =>
        Promise.all(
          jobs.map(async (job) => {
            try {
              const outcome = await step(job.data);
              if (outcome.next === 'again') {
                await this.enqueue(job.data.generationId, { afterMs: outcome.afterMs });
                this.wakeAfter(outcome.afterMs);
              }
              return { id: job.id, status: 'completed' as const };
            } catch (error) {
              this.logger.error({ err: error, generationId: job.data.generationId }, 'generation step failed; it will be retried');
              return { id: job.id, status: 'failed' as const, output: { message: (error as Error).message } };
            }
          }),
        ),
    );
  }

  /** This process's generation worker, once it runs (steps may start before `work` returns). */
  private workerId: string | undefined;
  private readonly wakes = new Set<number>();

  /**
   * A delayed step sends no NOTIFY when it falls due, and polling would find it up to half a
   * second late, a delay that adds up over a generation's polls. So the process that scheduled
   * it wakes its own worker then. Wake-ups share 50 ms slots, so many steps cost one fetch.
   */
  private wakeAfter(afterMs: number): void {
    const slot = Math.ceil((Date.now() + afterMs) / 50) * 50;
    const workerId = this.workerId;
    if (!workerId || this.stopped || this.wakes.has(slot)) return;
    this.wakes.add(slot);
    setTimeout(() => {
      this.wakes.delete(slot);
      if (!this.stopped) this.boss.notifyWorker(workerId);
    }, slot - Date.now() + 5).unref();
  }

  /** Schedules the webhook delivery of an ended generation; a pending one absorbs duplicates. */
  async enqueueWebhook(generationId: string): Promise<void> {
    if (!this.running) await this.started;
    await this.boss.send(WEBHOOK_QUEUE, { generationId } satisfies GenerationJob, { singletonKey: generationId });
  }

  /** Delivers webhooks; a delivery that throws is retried with backoff until its attempts run out. */
  async workWebhooks(concurrency: number, deliver: (job: GenerationJob) => Promise<void>): Promise<void> {
    if (!this.running) await this.started;
    if (this.stopped) return;
    await this.boss.work(
      WEBHOOK_QUEUE,
      { localConcurrency: concurrency, batchSize: 1, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 },
      async (jobs: { id: string; data: GenerationJob }[]) => {
        for (const job of jobs) await deliver(job.data);
      },
    );
  }

  /** Jobs waiting or running, for readiness and metrics. */
  async depth(): Promise<number> {
    if (!this.running) await this.started;
    const queue = await this.boss.getQueue(GENERATION_QUEUE);
    return (queue?.queuedCount ?? 0) + (queue?.activeCount ?? 0);
  }

  private stopped = false;

  /**
   * Stops taking steps and waits up to timeoutMs for running ones; later calls do nothing. A queue
   * still starting finishes its start first, so no part of it is left running.
   */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.started.catch(() => {});
    await this.boss.stop({ graceful: options.graceful ?? true, timeout: options.timeoutMs ?? 10_000 });
    this.logger.debug('job engine stopped');
  }
}

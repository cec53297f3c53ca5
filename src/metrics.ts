import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Operational metrics, served at /metrics next to yoga's own GraphQL metrics. */
export class Metrics {
  /** One registry per app, so several apps in one process (tests) don't collide. */
  readonly registry = new Registry();

  readonly upstreamSeconds = new Histogram({
    name: 'extendql_upstream_request_duration_seconds',
    help: 'Duration of calls to Segmind, by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'extendql_generation_retries_total',
    help: 'Generation steps retried after a transient failure, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  constructor(sources: { generationsByStatus(): Promise<Record<string, number>>; queueDepth(): Promise<number> }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'extendql_' });
    new Gauge({
      name: 'extendql_generations',
      help: 'Generations by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [status, count] of Object.entries(await sources.generationsByStatus())) this.set({ status }, count);
      },
    });
    new Gauge({
      name: 'extendql_queue_depth',
      help: 'Generation steps waiting or running in the job queue',
      registers: [this.registry],
      async collect() {
        this.set(await sources.queueDepth());
      },
    });
  }
}

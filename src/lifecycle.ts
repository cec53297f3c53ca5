import type { Logger } from './logger.js';

export type Cleanup = () => Promise<unknown>;

/**
 * The cleanups of what was started, run in reverse order of start by `close()`. Closing is
 * idempotent: a second call (concurrent or later) waits for the first and runs nothing again. A
 * cleanup that fails is logged and the next one still runs.
 */
export class Lifecycle {
  private readonly cleanups: Cleanup[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  /** Registers a cleanup; it runs before every cleanup added earlier. */
  add(cleanup: Cleanup): void {
    this.cleanups.push(cleanup);
  }

  close(): Promise<void> {
    this.closing ??= this.runAll();
    return this.closing;
  }

  private async runAll(): Promise<void> {
    for (const cleanup of [...this.cleanups].reverse()) {
      await cleanup().catch((error: Error) => this.logger.error({ err: error }, 'shutdown step failed'));
    }
  }
}

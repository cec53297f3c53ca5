import type { Logger } from './logger.ts';

export type Cleanup = () => Promise<unknown>;

/**
 * The cleanups of what was started, run in reverse order of start by `close()`. Closing is
 * idempotent: a second call (concurrent or later) waits for the first and runs nothing again. A
 * cleanup that fails is logged and the next one still runs; each one done is logged at debug.
 */
export class Lifecycle {
  private readonly cleanups: { name: string; cleanup: Cleanup }[] = [];
  private closing: Promise<void> | null = null;

  private readonly logger: Logger;
  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Registers a cleanup under a name for the log; it runs before every cleanup added earlier. */
  add(name: string, cleanup: Cleanup): void {
    this.cleanups.push({ name, cleanup });
  }

  close(): Promise<void> {
    this.closing ??= this.runAll();
    return this.closing;
  }

  private async runAll(): Promise<void> {
    for (const { name, cleanup } of [...this.cleanups].reverse()) {
      try {
        await cleanup();
        this.logger.debug({ step: name }, 'stopped');
      } catch (error) {
        this.logger.error({ err: error, step: name }, 'shutdown step failed');
      }
    }
  }
}

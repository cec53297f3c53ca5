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

  /**
   * Registers now, so in start order, the cleanup of something still starting: it waits for the
   * start and stops what it started, or does nothing when the start failed (whoever awaits
   * `starting` hears of that). Independent parts can so start side by side and still stop in
   * reverse order of registration. Answers `starting`.
   */
  whenStarted<T>(name: string, starting: Promise<T>, stop: (started: T) => Promise<unknown>): Promise<T> {
    // Awaited by the caller; a failure while nobody awaits it yet is not an unhandled rejection.
    starting.catch(() => {});
    this.add(name, async () => {
      const started = await starting.then(
        (value) => ({ value }),
        () => null,
      );
      if (started) await stop(started.value);
    });
    return starting;
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

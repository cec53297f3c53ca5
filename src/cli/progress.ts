import { clean, formatBytes, formatSeconds, truncate } from './format.ts';
import type { GenerationStateFragment } from './gql/graphql.ts';
import type { Terminal } from './io.ts';

/** Shows where a generation is, then how far its download is. */
export interface Progress {
  update(state: GenerationStateFragment): void;
  downloading(receivedBytes: number, totalBytes: number): void;
  /** Ends the display (a redrawn line gets its line break); later calls do nothing. */
  end(): void;
}

const BAR_WIDTH = 20;
const STEPS = 4;

/** How far along a generation is, 0 to STEPS, from its status and Segmind's. */
function step(state: Pick<GenerationStateFragment, 'status' | 'upstreamStatus'>): number {
  if (state.status === 'QUEUED') return 0;
  if (state.status !== 'RUNNING') return STEPS;
  switch (state.upstreamStatus) {
    case 'PROCESSING':
      return 2;
    case 'COMPLETED':
      return 3; // extendql is copying the MP4
    default:
      return 1;
  }
}

const bar = (fraction: number): string => {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
};

/** e.g. `[##########----------] RUNNING   Segmind PROCESSING     4.2s` */
export function describeState(state: GenerationStateFragment, elapsedSeconds = state.elapsedSeconds): string {
  const upstream = state.upstreamStatus
    ? `Segmind ${clean(state.upstreamStatus)}`
    : state.status === 'RUNNING'
      ? 'submitting to Segmind'
      : '';
  return `${bar(step(state) / STEPS)} ${state.status.padEnd(9)} ${upstream.padEnd(21)} ${formatSeconds(elapsedSeconds).padStart(7)}`;
}

const describeDownload = (received: number, total: number): string =>
  `${bar(total > 0 ? received / total : 1)} downloading ${formatBytes(received)} of ${formatBytes(total)}`;

/** Not a terminal (a pipe, a file, CI): one plain line per change of status. */
class LineProgress implements Progress {
  private last = '';
  private announcedDownload = false;

  private readonly out: Terminal;
  constructor(out: Terminal) {
    this.out = out;
  }

  update(state: GenerationStateFragment): void {
    const key = `${state.status}/${state.upstreamStatus ?? ''}`;
    if (key === this.last) return;
    this.last = key;
    this.out.write(`${describeState(state)}\n`);
  }

  downloading(received: number, total: number): void {
    if (this.announcedDownload) return;
    this.announcedDownload = true;
    this.out.write(`Downloading ${formatBytes(total)}\n`);
  }

  end(): void {}
}

/** A terminal: one line, redrawn in place, with a spinner and a clock between updates. */
class TtyProgress implements Progress {
  private static readonly SPINNER = ['|', '/', '-', '\\'];
  private state: GenerationStateFragment | undefined;
  private receivedAt = 0;
  private download: { received: number; total: number } | undefined;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  private readonly out: Terminal;
  constructor(out: Terminal) {
    this.out = out;
  }

  update(state: GenerationStateFragment): void {
    if (this.ended) return;
    this.state = state;
    this.receivedAt = Date.now();
    this.timer ??= setInterval(() => this.draw(), 125).unref();
    this.draw();
  }

  downloading(received: number, total: number): void {
    const first = !this.download;
    this.download = { received, total };
    // Every chunk would be too many redraws; the clock redraws in between.
    if (first || received >= total) this.draw();
  }

  /** Leaves the generation's last state on the line. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    this.download = undefined;
    if (this.state) {
      this.draw(false);
      this.out.write('\n');
    }
  }

  private draw(spin = true): void {
    let text: string;
    if (this.download) {
      text = describeDownload(this.download.received, this.download.total);
    } else if (this.state) {
      const running = this.state.status === 'QUEUED' || this.state.status === 'RUNNING';
      // Between events the clock keeps going from the server's last figure.
      const elapsed = this.state.elapsedSeconds + (running ? (Date.now() - this.receivedAt) / 1000 : 0);
      text = describeState(this.state, elapsed);
    } else {
      return;
    }
    const spinner = spin ? TtyProgress.SPINNER[this.frame++ % TtyProgress.SPINNER.length]! : ' ';
    // One character short of the width: a full line would wrap, and \r would redraw the wrong one.
    const line = truncate(`${spinner} ${text}`, Math.max(10, (this.out.columns ?? 80) - 1));
    this.out.write(`\r${line}\x1b[K`);
  }
}

export const createProgress = (out: Terminal): Progress => (out.isTTY ? new TtyProgress(out) : new LineProgress(out));

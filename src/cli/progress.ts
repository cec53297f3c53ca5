import { clean, formatBytes, formatSeconds, truncate } from './format.ts';
import type { GenerationStateFragment } from './gql/graphql.ts';
import type { Terminal } from './io.ts';

/** Shows an upload, where a generation is, then how far its download is. */
export interface Progress {
  uploading(sentBytes: number, totalBytes: number): void;
  update(state: GenerationStateFragment): void;
  /** The download goes on from bytes already on disk. */
  resumed(fromBytes: number, totalBytes: number): void;
  downloading(receivedBytes: number, totalBytes: number): void;
  /** Ends the display (a redrawn line gets its line break); later calls do nothing. */
  end(): void;
}

type Transfer = { verb: 'uploading' | 'downloading'; done: number; total: number; from: number };

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

const describeTransfer = ({ verb, done, total, from }: Transfer): string =>
  `${bar(total > 0 ? done / total : 1)} ${verb} ${formatBytes(done)} of ${formatBytes(total)}${from > 0 ? ` (resumed at ${formatBytes(from)})` : ''}`;

/** Not a terminal (a pipe, a file, CI): one plain line per change of status. */
class LineProgress implements Progress {
  private last = '';
  private announced = new Set<Transfer['verb']>();

  private readonly out: Terminal;
  constructor(out: Terminal) {
    this.out = out;
  }

  uploading(_sent: number, total: number): void {
    this.announce('uploading', `Uploading ${formatBytes(total)}`);
  }

  update(state: GenerationStateFragment): void {
    const key = `${state.status}/${state.upstreamStatus ?? ''}`;
    if (key === this.last) return;
    this.last = key;
    this.out.write(`${describeState(state)}\n`);
  }

  resumed(from: number, total: number): void {
    this.out.write(`Resuming the download at ${formatBytes(from)} of ${formatBytes(total)}\n`);
    this.announced.add('downloading');
  }

  downloading(_received: number, total: number): void {
    this.announce('downloading', `Downloading ${formatBytes(total)}`);
  }

  end(): void {}

  private announce(verb: Transfer['verb'], line: string): void {
    if (this.announced.has(verb)) return;
    this.announced.add(verb);
    this.out.write(`${line}\n`);
  }
}

/** A terminal: one line, redrawn in place, with a spinner and a clock between updates. */
class TtyProgress implements Progress {
  private static readonly SPINNER = ['|', '/', '-', '\\'];
  private state: GenerationStateFragment | undefined;
  private receivedAt = 0;
  private transfer: Transfer | undefined;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  private readonly out: Terminal;
  constructor(out: Terminal) {
    this.out = out;
  }

  uploading(sent: number, total: number): void {
    this.move({ verb: 'uploading', done: sent, total, from: 0 });
  }

  update(state: GenerationStateFragment): void {
    if (this.ended) return;
    this.state = state;
    this.receivedAt = Date.now();
    this.tick();
    this.draw();
  }

  resumed(from: number, total: number): void {
    this.move({ verb: 'downloading', done: from, total, from });
  }

  downloading(received: number, total: number): void {
    this.move({ verb: 'downloading', done: received, total, from: this.transfer?.verb === 'downloading' ? this.transfer.from : 0 });
  }

  /** Leaves the generation's last state on the line (or, without one, the transfer's). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    if (this.state) this.transfer = undefined;
    if (this.state || this.transfer) {
      this.draw(false);
      this.out.write('\n');
    }
  }

  private move(transfer: Transfer): void {
    if (this.ended) return;
    const first = this.transfer?.verb !== transfer.verb;
    this.transfer = transfer;
    this.tick();
    // Every chunk would be too many redraws; the clock redraws in between.
    if (first || transfer.done >= transfer.total) this.draw();
  }

  private tick(): void {
    this.timer ??= setInterval(() => this.draw(), 125).unref();
  }

  private draw(spin = true): void {
    let text: string;
    if (this.transfer) {
      text = describeTransfer(this.transfer);
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

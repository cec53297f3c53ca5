import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Lifecycle } from '../src/lifecycle.ts';
import { startStack } from './helpers/stack.ts';

/** A Lifecycle whose log lines are kept, parsed. */
function recorded() {
  const lines: { msg: string; step?: string; err?: { message: string } }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { lifecycle: new Lifecycle(logger), lines };
}

describe('Lifecycle', () => {
  it('runs the cleanups in reverse order of start, however often close is called', async () => {
    const { lifecycle } = recorded();
    const ran: string[] = [];
    for (const name of ['first', 'second', 'third']) {
      lifecycle.add(name, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        ran.push(name);
      });
    }
    await Promise.all([lifecycle.close(), lifecycle.close()]);
    await lifecycle.close();
    await lifecycle.close();
    expect(ran).toEqual(['third', 'second', 'first']);
  });

  it('a second close waits for the first to finish', async () => {
    const { lifecycle } = recorded();
    let release!: () => void;
    let done = false;
    lifecycle.add('slow', () => new Promise<void>((resolve) => (release = resolve)).then(() => void (done = true)));
    const first = lifecycle.close();
    const second = lifecycle.close().then(() => done);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    expect(await second).toBe(true);
    await first;
  });

  it('logs a cleanup that fails and still runs the ones after it', async () => {
    const { lifecycle, lines } = recorded();
    const ran: string[] = [];
    lifecycle.add('earlier', async () => void ran.push('earlier'));
    lifecycle.add('broken', async () => {
      throw new Error('could not stop');
    });
    await lifecycle.close();
    await lifecycle.close();
    expect(ran).toEqual(['earlier']);
    expect(lines.filter((line) => line.msg === 'shutdown step failed').map((line) => [line.step, line.err?.message])).toEqual([['broken', 'could not stop']]);
    expect(lines.filter((line) => line.msg === 'stopped').map((line) => line.step)).toEqual(['earlier']);
  });
});

describe('the app', () => {
  it('stops every part once, in reverse order of start, when closed twice at once and again later', async () => {
    const stack = await startStack();
    const app = stack.app;
    await Promise.all([app.close(), app.close()]);
    await app.close();
    await stack.close();
    const lines = stack.logs.map((line) => JSON.parse(line) as { msg: string; step?: string });
    expect(lines.filter((line) => line.msg === 'shutdown step failed')).toEqual([]);
    expect(lines.filter((line) => line.msg === 'stopped').map((line) => line.step)).toEqual([
      'graphql',
      'websocket server',
      'http server',
      'job workers',
      'stalled-generation sweep',
      'webhooks',
      'storage',
      'upstream client',
      'job queue',
      'database pool',
      'database',
    ]);
  });
});

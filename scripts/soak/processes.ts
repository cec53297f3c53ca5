import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/**
 * An extendql server run as `npm start` runs it, in a child process. Its peak RSS is sampled,
 * and an exit that nobody asked for counts as a crash: the process is then started again, as a
 * supervisor (systemd, Kubernetes) would, so that the run can go on and the crash shows in the
 * figures.
 */
export interface ServerProcess {
  name: string;
  url(): string;
  crashes(): number;
  peakRssMb(): number;
  /** What the process wrote to stderr (stack traces of a crash end up here). */
  stderr(): string;
  stop(): Promise<void>;
}

function spawnServer(env: NodeJS.ProcessEnv): { child: ChildProcess; listening: Promise<string> } {
  const child = spawn(process.execPath, ['src/server.ts'], { env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const listening = new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('extendql is listening')) continue;
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve((JSON.parse(line) as { url: string }).url.replace('localhost', '127.0.0.1').replace(/\/graphql$/, ''));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  return { child, listening };
}

export async function startServerProcess(name: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  let crashes = 0;
  let peakRssKb = 0;
  let stderr = '';
  let stopping = false;
  let url = '';
  let current: ChildProcess | undefined;

  const launch = (): Promise<string> => {
    const { child, listening } = spawnServer(env);
    current = child;
    const from = stderr.length;
    let listened = false;
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    listening.then(
      (next) => ((url = next), (listened = true)),
      () => {},
    );
    child.once('exit', (code, signal) => {
      if (stopping) return;
      // A start that fails because a dependency is still away is a supervisor's retry, not a crash.
      if (listened) crashes++;
      const when = listened ? 'while serving' : 'while starting';
      console.log(`${name}: exited ${when} (code ${code}, signal ${signal}); starting it again. Its stderr:\n${stderr.slice(from).slice(-3000)}`);
      setTimeout(() => void launch().catch(() => {}), 1000);
    });
    return listening;
  };
  await launch();

  const sampler = setInterval(async () => {
    const status = await readFile(`/proc/${current!.pid}/status`, 'utf8').catch(() => '');
    peakRssKb = Math.max(peakRssKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
  }, 200);

  return {
    name,
    url: () => url,
    crashes: () => crashes,
    peakRssMb: () => Math.round(peakRssKb / 1024),
    stderr: () => stderr,
    async stop() {
      stopping = true;
      clearInterval(sampler);
      const child = current!;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

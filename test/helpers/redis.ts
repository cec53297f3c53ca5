import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A redis-server of the test's own, on a free port of 127.0.0.1, with no persistence. */
export interface RedisServer {
  port: number;
  url: string;
  /** The PID of the running redis-server (changes on restart). */
  pid(): number;
  /** SIGKILLs it (an outage) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
}

/** Every redis-server started here, so that a failing test cannot leave one behind. */
const running = new Set<ChildProcess>();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function spawnRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not be started (is Debian's redis-server package installed?): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  return child;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child = await spawnRedis(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child.pid!,
    kill: () => killChild(child),
    async restart() {
      await killChild(child);
      child = await spawnRedis(port);
    },
  };
}

/** SIGKILLs every redis-server started here; for afterAll. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map(killChild));
}

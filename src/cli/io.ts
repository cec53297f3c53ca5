/** Where the CLI writes: stdout and stderr, with every secret it knows of blanked out. */
export interface Terminal {
  write(text: string): void;
  /** True when a person is watching: redraw one progress line instead of printing many. */
  readonly isTTY: boolean;
  /** The terminal's width, when it is one. */
  readonly columns: number | undefined;
}

export interface Io {
  stdout: Terminal;
  stderr: Terminal;
}

export const REDACTED = '[redacted]';

function terminal(stream: NodeJS.WriteStream, secrets: readonly string[]): Terminal {
  // A reader that went away (`extendql history | head -1`) is not an error: stop writing.
  let closed = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed = true;
  });
  return {
    write(text) {
      if (closed) return;
      let safe = text;
      for (const secret of secrets) safe = safe.replaceAll(secret, REDACTED);
      stream.write(safe);
    },
    get isTTY() {
      return stream.isTTY === true;
    },
    get columns() {
      // A pseudo-terminal without a size reports 0 columns.
      return (stream.isTTY && stream.columns) || undefined;
    },
  };
}

/**
 * The API keys this run could know (from the environment and the command line, however it was
 * spelled), so that no message, echoed argument or server answer can print one.
 */
export function secretsOf(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const secrets = new Set<string>();
  if (env.EXTENDQL_API_KEY) secrets.add(env.EXTENDQL_API_KEY);
  argv.forEach((arg, index) => {
    if (arg === '--api-key' && argv[index + 1]) secrets.add(argv[index + 1]!);
    if (arg.startsWith('--api-key=')) secrets.add(arg.slice('--api-key='.length));
  });
  // Blanking out a very short string would mangle ordinary text; such a key is invalid anyway.
  return [...secrets].filter((secret) => secret.length >= 8);
}

export function createIo(stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream, secrets: readonly string[]): Io {
  return { stdout: terminal(stdout, secrets), stderr: terminal(stderr, secrets) };
}

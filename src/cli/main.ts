import { parseCommand, type Command } from './args.ts';
import { cancel } from './commands/cancel.ts';
import { download } from './commands/download.ts';
import { extend } from './commands/extend.ts';
import { history } from './commands/history.ts';
import { CliError, EXIT } from './errors.ts';
import { createIo, secretsOf, type Io } from './io.ts';

export interface Environment {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

function report(error: unknown, io: Io, json: boolean): number {
  const failure =
    error instanceof CliError
      ? error
      : new CliError(`Unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, { type: 'InternalError' });
  // --json: the error as data on stdout (the server's own message wins over the human one).
  if (json) io.stdout.write(`${JSON.stringify({ error: { message: failure.message, ...failure.details } })}\n`);
  io.stderr.write(`extendql: ${failure.message}\n`);
  return failure.exitCode;
}

type Run = Exclude<Command, { kind: 'help' }>;

/** Each command that talks to a server, by its kind. */
const RUNNERS: { [Kind in Run['kind']]: (command: Extract<Run, { kind: Kind }>, io: Io, signal: AbortSignal) => Promise<void> } = {
  extend,
  history,
  download,
  cancel,
};

/** Help on stdout (--json: as {"help": text}); after an incomplete command line, on stderr with exit 2. */
function help(command: Extract<Command, { kind: 'help' }>, io: Io): number {
  const text = command.json ? JSON.stringify({ help: command.text }) : command.text;
  (command.usage ? io.stderr : io.stdout).write(`${text}\n`);
  return command.usage ? EXIT.USAGE : EXIT.OK;
}

/** The `extendql` command: runs argv (without node and the script) and returns the exit status. */
export async function main(argv: readonly string[], environment: Environment = process): Promise<number> {
  const io = createIo(environment.stdout, environment.stderr, secretsOf(argv, environment.env));
  let json = argv.includes('--json');
  const interrupt = new AbortController();
  // The first Ctrl-C stops cleanly (a line saying what goes on); a second one kills at once.
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  try {
    const command = parseCommand(argv, environment.env);
    if (command.kind === 'help') return help(command, io);
    json = command.json;
    await (RUNNERS[command.kind] as (command: Run, io: Io, signal: AbortSignal) => Promise<void>)(command, io, interrupt.signal);
    return EXIT.OK;
  } catch (error) {
    return report(error, io, json);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

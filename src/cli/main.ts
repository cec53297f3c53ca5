import { parseCommand } from './args.ts';
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
    switch (command.kind) {
      case 'help':
        (command.usage ? io.stderr : io.stdout).write(`${command.text}\n`);
        return command.usage ? EXIT.USAGE : EXIT.OK;
      case 'extend':
        json = command.json;
        await extend(command, io, interrupt.signal);
        return EXIT.OK;
      case 'history':
        json = command.json;
        await history(command, io, interrupt.signal);
        return EXIT.OK;
    }
  } catch (error) {
    return report(error, io, json);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

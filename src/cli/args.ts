import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { UsageError } from './errors.ts';
import type { ExtendVideoInput, GenerationStatus } from './gql/graphql.ts';
import { COMMANDS, DEFAULT_HISTORY_SIZE, DEFAULT_SERVER, HELP, MAIN_HELP, MOTION_MODES, names, QUALITIES, STATUSES, STYLES, type CommandName } from './help.ts';


export interface Connection {
  /** The GraphQL endpoint. */
  endpoint: URL;
  /** Sent as x-api-key; never printed. */
  apiKey: string | undefined;
}

interface Common {
  connection: Connection;
  /** One JSON document on stdout, errors too. */
  json: boolean;
}

export type Command =
  /** `usage` when the command line was incomplete: the help goes to stderr and the exit status is 2. */
  | { kind: 'help'; text: string; usage?: boolean; json: boolean }
  | (Common & {
      kind: 'extend';
      input: ExtendVideoInput;
      /** A local file to upload as input.video. */
      upload: string | undefined;
      out: string;
      force: boolean;
    })
  | (Common & { kind: 'history'; first: number; status: GenerationStatus | undefined })
  | (Common & { kind: 'download'; id: string; out: string | undefined; force: boolean })
  | (Common & { kind: 'cancel'; id: string });

const COMMON = {
  server: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsOptionsConfig;

const EXTEND = {
  ...COMMON,
  'video-url': { type: 'string' },
  source: { type: 'string' },
  video: { type: 'string' },
  prompt: { type: 'string' },
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean' },
  duration: { type: 'string' },
  quality: { type: 'string' },
  'motion-mode': { type: 'string' },
  'negative-prompt': { type: 'string' },
  seed: { type: 'string' },
  style: { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

const HISTORY = {
  ...COMMON,
  first: { type: 'string' },
  status: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

const DOWNLOAD = {
  ...COMMON,
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig;

/** The option that sets each input field, to name it in the server's InvalidInputError. */
export const OPTION_OF_FIELD: { readonly [Field in keyof ExtendVideoInput]?: string } = {
  videoUrl: '--video-url',
  sourceGenerationId: '--source',
  video: '--video',
  prompt: '--prompt',
  duration: '--duration',
  quality: '--quality',
  motionMode: '--motion-mode',
  negativePrompt: '--negative-prompt',
  seed: '--seed',
  style: '--style',
  idempotencyKey: '--idempotency-key',
};

function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    // parseArgs explains itself well ("Unknown option '--foo'"); drop its Node error code.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** The one generation id a command takes (`download <id>`, `cancel <id>`). */
function oneId(command: CommandName, positionals: string[]): string {
  if (positionals.length !== 1 || positionals[0] === '') {
    throw new UsageError(`Give one generation id: extendql ${command} <generationId>${positionals.length > 1 ? ` (got ${positionals.length})` : ''}`);
  }
  return positionals[0]!;
}

function enumValue<T extends string>(option: string, value: string, table: Record<T, string>): T {
  const match = names(table).find((name) => name.toLowerCase() === value.toLowerCase());
  if (!match) throw new UsageError(`--${option} must be one of ${names(table).join(', ')} (got "${value}")`);
  return match;
}

function integer(option: string, value: string, min: number): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${option} must be a whole number${min > 0 ? ` of at least ${min}` : ''} (got "${value}")`);
  }
  return Number(value);
}

type CommonValues = { server?: string | undefined; 'api-key'?: string | undefined; json?: boolean | undefined };

function connection(values: CommonValues, env: NodeJS.ProcessEnv): Connection {
  const server = values.server ?? (env.EXTENDQL_URL || DEFAULT_SERVER);
  let endpoint: URL;
  try {
    endpoint = new URL(server);
  } catch {
    throw new UsageError(`--server must be an http(s) URL such as ${DEFAULT_SERVER} (got "${server}")`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') {
    throw new UsageError(`--server must be an http(s) URL such as ${DEFAULT_SERVER}`);
  }
  // A bare origin means the server's GraphQL endpoint.
  if (endpoint.pathname === '/') endpoint.pathname = '/graphql';
  const apiKey = values['api-key'] ?? env.EXTENDQL_API_KEY;
  return { endpoint, apiKey: apiKey || undefined };
}

const common = (values: CommonValues, env: NodeJS.ProcessEnv) => ({ connection: connection(values, env), json: values.json ?? false });

function required(option: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${option} is required (see extendql extend --help)`);
  return value;
}

/** The one source of an extend: --video-url, --source or --video. */
function extendSource(values: { 'video-url'?: string | undefined; source?: string | undefined; video?: string | undefined }) {
  const given = (['video-url', 'source', 'video'] as const).filter((option) => values[option] !== undefined);
  if (given.length !== 1) throw new UsageError('Give exactly one of --video-url <url>, --source <generationId> and --video <file>');
  if (values.video === '') throw new UsageError('--video needs a file name');
  return { videoUrl: values['video-url'], sourceGenerationId: values.source, upload: values.video };
}

function extendCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const { values } = parse(args, EXTEND);
  if (values.help) return { kind: 'help', text: HELP.extend, json: values.json ?? false };
  const { videoUrl, sourceGenerationId, upload } = extendSource(values);
  const input: ExtendVideoInput = { prompt: required('prompt', values.prompt) };
  if (videoUrl !== undefined) input.videoUrl = videoUrl;
  if (sourceGenerationId !== undefined) input.sourceGenerationId = sourceGenerationId;
  if (values.duration !== undefined) input.duration = integer('duration', values.duration, 1);
  if (values.quality !== undefined) input.quality = enumValue('quality', values.quality, QUALITIES);
  if (values['motion-mode'] !== undefined) input.motionMode = enumValue('motion-mode', values['motion-mode'], MOTION_MODES);
  if (values['negative-prompt'] !== undefined) input.negativePrompt = values['negative-prompt'];
  if (values.seed !== undefined) input.seed = integer('seed', values.seed, 0);
  if (values.style !== undefined) input.style = enumValue('style', values.style, STYLES);
  if (values['idempotency-key'] !== undefined) input.idempotencyKey = values['idempotency-key'];
  return { kind: 'extend', ...common(values, env), input, upload, out: required('out', values.out), force: values.force ?? false };
}

function historyCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const { values } = parse(args, HISTORY);
  if (values.help) return { kind: 'help', text: HELP.history, json: values.json ?? false };
  return {
    kind: 'history',
    ...common(values, env),
    first: values.first === undefined ? DEFAULT_HISTORY_SIZE : integer('first', values.first, 1),
    status: values.status === undefined ? undefined : enumValue('status', values.status, STATUSES),
  };
}

function downloadCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const { values, positionals } = parse(args, DOWNLOAD, true);
  if (values.help) return { kind: 'help', text: HELP.download, json: values.json ?? false };
  if (values.out === '') throw new UsageError('--out needs a file name');
  return { kind: 'download', ...common(values, env), id: oneId('download', positionals), out: values.out, force: values.force ?? false };
}

function cancelCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const { values, positionals } = parse(args, COMMON, true);
  if (values.help) return { kind: 'help', text: HELP.cancel, json: values.json ?? false };
  return { kind: 'cancel', ...common(values, env), id: oneId('cancel', positionals) };
}

const PARSERS: Record<CommandName, (args: string[], env: NodeJS.ProcessEnv) => Command> = {
  extend: extendCommand,
  history: historyCommand,
  download: downloadCommand,
  cancel: cancelCommand,
};

const isCommand = (name: string): name is CommandName => (COMMANDS as string[]).includes(name);

/** Turns argv (without node and the script) into a command, or throws a UsageError. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const [name, ...rest] = argv;
  const json = argv.includes('--json');
  if (name !== undefined && isCommand(name)) return PARSERS[name](rest, env);
  switch (name) {
    case 'help':
      return { kind: 'help', text: rest[0] !== undefined && isCommand(rest[0]) ? HELP[rest[0]] : MAIN_HELP, json };
    case undefined:
      return { kind: 'help', text: MAIN_HELP, usage: true, json };
    case '--help':
    case '-h':
      return { kind: 'help', text: MAIN_HELP, json };
    default: {
      const list = `${COMMANDS.slice(0, -1).join(', ')} or ${COMMANDS.at(-1)}`;
      throw new UsageError(name.startsWith('-') ? `Give a command before options: ${list}` : `Unknown command "${name}": use ${list}`);
    }
  }
}

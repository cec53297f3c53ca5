import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { UsageError } from './errors.ts';
import type { ExtendVideoInput, GenerationStatus, MotionMode, VideoQuality, VideoStyle } from './gql/graphql.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:4000/graphql';
export const DEFAULT_HISTORY_SIZE = 20;

export interface Connection {
  /** The GraphQL endpoint. */
  endpoint: URL;
  /** Sent as x-api-key; never printed. */
  apiKey: string | undefined;
}

export type Command =
  /** `usage` when the command line was incomplete: the help goes to stderr and the exit status is 2. */
  | { kind: 'help'; text: string; usage?: boolean }
  | { kind: 'extend'; connection: Connection; json: boolean; input: ExtendVideoInput; out: string }
  | { kind: 'history'; connection: Connection; json: boolean; first: number; status: GenerationStatus | undefined };

// The schema's enums, as values. A Record over each generated type fails to compile when the
// schema gains or loses a value, so these lists cannot drift from the API.
const QUALITIES: Record<VideoQuality, string> = { Q360P: '360p', Q540P: '540p', Q720P: '720p', Q1080P: '1080p' };
const MOTION_MODES: Record<MotionMode, string> = { NORMAL: 'normal motion', FAST: 'fast motion (5 s only, no Q1080P)' };
const STYLES: Record<VideoStyle, string> = { ANIME: 'anime', CLAY: 'clay', COMIC: 'comic', CYBERPUNK: 'cyberpunk', THREE_D_ANIMATION: '3d_animation' };
const STATUSES: Record<GenerationStatus, string> = { QUEUED: '', RUNNING: '', SUCCEEDED: '', FAILED: '', CANCELED: '' };

const names = <T extends string>(table: Record<T, string>): T[] => Object.keys(table) as T[];

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
  prompt: { type: 'string' },
  out: { type: 'string', short: 'o' },
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

const CONNECTION_HELP = `
Connection:
  --server <url>       GraphQL endpoint (default: $EXTENDQL_URL or ${DEFAULT_SERVER})
  --api-key <key>      API key, sent as x-api-key (default: $EXTENDQL_API_KEY; prefer the
                       variable: command-line arguments are visible to other local users)
  --json               Machine-readable output on stdout (errors too, as {"error": ...})
  -h, --help           Show help`;

export const MAIN_HELP = `extendql: extend videos with an extendql server

Usage:
  extendql extend (--video-url <url> | --source <generationId>) --prompt <text> --out <file.mp4> [options]
  extendql history [--first N] [--status STATUS] [options]
  extendql <command> --help
${CONNECTION_HELP}

Exit status: 0 success, 1 failure (typed API error, failed generation, network, download),
2 bad command line, 130 interrupted.`;

export const EXTEND_HELP = `extendql extend: start a generation, follow its progress, download the MP4

Usage:
  extendql extend --video-url <url> --prompt <text> --out <file.mp4> [options]
  extendql extend --source <generationId> --prompt <text> --out <file.mp4> [options]

What to extend (exactly one):
  --video-url <url>           Absolute http(s) URL of an MP4 or MOV
  --source <generationId>     The video of one of your SUCCEEDED generations (chaining)

Options:
  --prompt <text>             What happens next (required)
  -o, --out <file>            Where to write the MP4 (required)
  --duration <seconds>        5 or 8 (server default 5)
  --quality <q>               ${names(QUALITIES).join(' | ')} (server default: Q540P, or the source's when chaining)
  --motion-mode <m>           ${names(MOTION_MODES).join(' | ')} (server default NORMAL)
  --negative-prompt <text>    What to avoid
  --seed <n>                  1 to 999999, for repeatable results
  --style <s>                 ${names(STYLES).join(' | ')}
  --idempotency-key <key>     Retrying with the same key and parameters returns the same
                              generation and spends nothing again
${CONNECTION_HELP}`;

export const HISTORY_HELP = `extendql history: your recent generations, newest first

Usage:
  extendql history [--first N] [--status STATUS]

Options:
  --first <n>                 How many (default ${DEFAULT_HISTORY_SIZE})
  --status <s>                Only these: ${names(STATUSES).join(' | ')}
${CONNECTION_HELP}`;

/** The option that sets each input field, to name it in the server's InvalidInputError. */
export const OPTION_OF_FIELD: { readonly [Field in keyof ExtendVideoInput]?: string } = {
  videoUrl: '--video-url',
  sourceGenerationId: '--source',
  prompt: '--prompt',
  duration: '--duration',
  quality: '--quality',
  motionMode: '--motion-mode',
  negativePrompt: '--negative-prompt',
  seed: '--seed',
  style: '--style',
  idempotencyKey: '--idempotency-key',
};

function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // parseArgs explains itself well ("Unknown option '--foo'"); drop its Node error code.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
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

function connection(values: { server?: string | undefined; 'api-key'?: string | undefined }, env: NodeJS.ProcessEnv): Connection {
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

function required(option: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${option} is required (see extendql extend --help)`);
  return value;
}

function extendCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const values = parse(args, EXTEND);
  if (values.help) return { kind: 'help', text: EXTEND_HELP };
  const videoUrl = values['video-url'];
  const source = values.source;
  if ((videoUrl === undefined) === (source === undefined)) {
    throw new UsageError('Give exactly one of --video-url <url> and --source <generationId>');
  }
  const input: ExtendVideoInput = { prompt: required('prompt', values.prompt) };
  if (videoUrl !== undefined) input.videoUrl = videoUrl;
  if (source !== undefined) input.sourceGenerationId = source;
  if (values.duration !== undefined) input.duration = integer('duration', values.duration, 1);
  if (values.quality !== undefined) input.quality = enumValue('quality', values.quality, QUALITIES);
  if (values['motion-mode'] !== undefined) input.motionMode = enumValue('motion-mode', values['motion-mode'], MOTION_MODES);
  if (values['negative-prompt'] !== undefined) input.negativePrompt = values['negative-prompt'];
  if (values.seed !== undefined) input.seed = integer('seed', values.seed, 0);
  if (values.style !== undefined) input.style = enumValue('style', values.style, STYLES);
  if (values['idempotency-key'] !== undefined) input.idempotencyKey = values['idempotency-key'];
  return { kind: 'extend', connection: connection(values, env), json: values.json ?? false, input, out: required('out', values.out) };
}

function historyCommand(args: string[], env: NodeJS.ProcessEnv): Command {
  const values = parse(args, HISTORY);
  if (values.help) return { kind: 'help', text: HISTORY_HELP };
  return {
    kind: 'history',
    connection: connection(values, env),
    json: values.json ?? false,
    first: values.first === undefined ? DEFAULT_HISTORY_SIZE : integer('first', values.first, 1),
    status: values.status === undefined ? undefined : enumValue('status', values.status, STATUSES),
  };
}

/** Turns argv (without node and the script) into a command, or throws a UsageError. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const [name, ...rest] = argv;
  switch (name) {
    case 'extend':
      return extendCommand(rest, env);
    case 'history':
      return historyCommand(rest, env);
    case 'help':
      return { kind: 'help', text: rest[0] === 'extend' ? EXTEND_HELP : rest[0] === 'history' ? HISTORY_HELP : MAIN_HELP };
    case undefined:
      return { kind: 'help', text: MAIN_HELP, usage: true };
    case '--help':
    case '-h':
      return { kind: 'help', text: MAIN_HELP };
    default:
      throw new UsageError(name.startsWith('-') ? `Give a command before options: extend or history` : `Unknown command "${name}": use extend or history`);
  }
}

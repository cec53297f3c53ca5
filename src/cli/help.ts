import type { GenerationStatus, MotionMode, VideoQuality, VideoStyle } from './gql/graphql.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:4000/graphql';
export const DEFAULT_HISTORY_SIZE = 20;

// The schema's enums, as values. A Record over each generated type fails to compile when the
// schema gains or loses a value, so these lists cannot drift from the API.
export const QUALITIES: Record<VideoQuality, string> = { Q360P: '360p', Q540P: '540p', Q720P: '720p', Q1080P: '1080p' };
export const MOTION_MODES: Record<MotionMode, string> = { NORMAL: 'normal motion', FAST: 'fast motion (5 s only, no Q1080P)' };
export const STYLES: Record<VideoStyle, string> = { ANIME: 'anime', CLAY: 'clay', COMIC: 'comic', CYBERPUNK: 'cyberpunk', THREE_D_ANIMATION: '3d_animation' };
export const STATUSES: Record<GenerationStatus, string> = { QUEUED: '', RUNNING: '', SUCCEEDED: '', FAILED: '', CANCELED: '' };

export const names = <T extends string>(table: Record<T, string>): T[] => Object.keys(table) as T[];

const CONNECTION_HELP = `
Connection:
  --server <url>       GraphQL endpoint (default: $EXTENDQL_URL or ${DEFAULT_SERVER})
  --api-key <key>      API key, sent as x-api-key (default: $EXTENDQL_API_KEY; prefer the
                       variable: command-line arguments are visible to other local users)
  --json               One JSON document on stdout (errors too, as {"error": ...})
  -h, --help           Show help`;

export const MAIN_HELP = `extendql: extend videos with an extendql server

Usage:
  extendql extend (--video-url <url> | --source <generationId> | --video <file>) --prompt <text> --out <file.mp4> [options]
  extendql history [--first N] [--status STATUS] [options]
  extendql download <generationId> [--out <file.mp4>] [--force] [options]
  extendql cancel <generationId> [options]
  extendql <command> --help
${CONNECTION_HELP}

Exit status: 0 success, 1 failure (typed API error, failed generation, network, download),
2 bad command line, 130 interrupted.`;

export const EXTEND_HELP = `extendql extend: start a generation, follow its progress, download the MP4

Usage:
  extendql extend --video-url <url> --prompt <text> --out <file.mp4> [options]
  extendql extend --source <generationId> --prompt <text> --out <file.mp4> [options]
  extendql extend --video <file> --prompt <text> --out <file.mp4> [options]

What to extend (exactly one):
  --video-url <url>           Absolute http(s) URL of an MP4 or MOV
  --source <generationId>     The video of one of your SUCCEEDED generations (chaining)
  --video <file>              A local MP4 or MOV, uploaded (at most 50 MB, 30 s, 1920 px)

Options:
  --prompt <text>             What happens next (required)
  -o, --out <file>            Where to write the MP4 (required; an existing file is kept
                              unless --force)
  --force                     Replace an existing --out file
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

Columns: id, status, duration, quality, cost in USD (Segmind's figure once it ran the job, else
~ and extendql's estimate), creation time, prompt and the video's URL.

Options:
  --first <n>                 How many (default ${DEFAULT_HISTORY_SIZE})
  --status <s>                Only these: ${names(STATUSES).join(' | ')}
${CONNECTION_HELP}`;

export const DOWNLOAD_HELP = `extendql download: save the MP4 of a SUCCEEDED generation

Usage:
  extendql download <generationId> [--out <file.mp4>] [--force]

The file's size and SHA-256 are checked against the API's. A download that was cut short (or a
shorter file at --out) is resumed with an HTTP Range request, and checked whole. A file that is
already the video is left as it is; another file is kept unless --force.

Options:
  -o, --out <file>            Where to write it (default: the name in the video's URL, here)
  --force                     Replace a different file at --out
${CONNECTION_HELP}`;

export const CANCEL_HELP = `extendql cancel: stop a QUEUED or RUNNING generation

Usage:
  extendql cancel <generationId>

Canceling again is harmless; a generation that already SUCCEEDED or FAILED cannot be canceled
(exit 1). A job Segmind already accepted still runs (and bills) there.
${CONNECTION_HELP}`;

export const HELP = { extend: EXTEND_HELP, history: HISTORY_HELP, download: DOWNLOAD_HELP, cancel: CANCEL_HELP } as const;
export type CommandName = keyof typeof HELP;
export const COMMANDS = Object.keys(HELP) as CommandName[];

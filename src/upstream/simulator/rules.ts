// The request rules of Segmind's pixverse-5-extend, as written in
// /work/shared/docs/segmind-contract.md. This is deliberately an independent implementation:
// it imports nothing from the product, so a bug in the product's validation is not mirrored here.

export const QUALITIES = ['360p', '540p', '720p', '1080p'] as const;
export const MOTION_MODES = ['normal', 'fast'] as const;
export const STYLES = ['anime', '3d_animation', 'clay', 'comic', 'cyberpunk'] as const;
export const DURATIONS = [5, 8] as const;

export type Quality = (typeof QUALITIES)[number];
export type MotionMode = (typeof MOTION_MODES)[number];
export type Style = (typeof STYLES)[number];
export type Duration = (typeof DURATIONS)[number];

export interface ExtendParams {
  video_url: string;
  prompt: string;
  negative_prompt?: string;
  duration: Duration;
  quality: Quality;
  motion_mode: MotionMode;
  seed?: number;
  style?: Style;
}

export type Validation = { ok: true; params: ExtendParams } | { ok: false; error: string };

const MAX_TEXT = 2048;
const SEED_MIN = 1;
const SEED_MAX = 999_999;

/** Length in Unicode code points ("characters"), not UTF-16 units. */
const charLength = (s: string): number => [...s].length;

const isOneOf = <T extends string | number>(list: readonly T[], v: unknown): v is T =>
  (list as readonly unknown[]).includes(v);

function checkVideoUrl(v: unknown): string | undefined {
  if (v === undefined) return 'is required';
  if (typeof v !== 'string') return 'must be a string';
  if (v.length === 0) return 'is required';
  if (charLength(v) > MAX_TEXT) return `must be at most ${MAX_TEXT} characters`;
  // A URI has no whitespace, control characters or backslashes, and names its host after "//";
  // the URL parser would silently repair "http:host" or strip some characters.
  if (/[\s\p{Cc}\\]/u.test(v) || !/^https?:\/\/[^/?#]/i.test(v)) return 'must be an absolute http or https URL';
  let url: URL;
  try {
    url = new URL(v); // no base: only absolute URLs parse
  } catch {
    return 'must be an absolute http or https URL';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    return 'must be an absolute http or https URL';
  }
  return undefined;
}

function checkText(v: unknown, required: boolean): string | undefined {
  if (v === undefined) return required ? 'is required' : undefined;
  if (typeof v !== 'string') return 'must be a string';
  // Blank as Python's str.strip() sees it: not quite JavaScript's trim().
  if (required && [...v].every((ch) => (/\s/.test(ch) && ch !== '\ufeff') || (ch >= '\x1c' && ch <= '\x1f') || ch === '\x85')) return 'must not be blank';
  if (charLength(v) > MAX_TEXT) return `must be at most ${MAX_TEXT} characters`;
  return undefined;
}

function checkEnum(v: unknown, list: readonly (string | number)[], required: boolean): string | undefined {
  if (v === undefined) return required ? 'is required' : undefined;
  if (!isOneOf(list, v)) return `must be one of ${list.join(', ')}`;
  return undefined;
}

function checkSeed(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) return 'must be an integer';
  if (v < SEED_MIN || v > SEED_MAX) return `must be between ${SEED_MIN} and ${SEED_MAX}`;
  return undefined;
}

/**
 * Checks a parsed JSON body. Returns the first violation as "<field>: <what is wrong>".
 * Unknown fields are ignored (and not copied into the params). `null` counts as a wrong type.
 */
export function validateExtendRequest(body: Record<string, unknown>): Validation {
  const checks: [string, string | undefined][] = [
    ['video_url', checkVideoUrl(body.video_url)],
    ['prompt', checkText(body.prompt, true)],
    ['negative_prompt', checkText(body.negative_prompt, false)],
    ['duration', checkEnum(body.duration, DURATIONS, true)],
    ['quality', checkEnum(body.quality, QUALITIES, true)],
    ['motion_mode', checkEnum(body.motion_mode, MOTION_MODES, true)],
    ['seed', checkSeed(body.seed)],
    ['style', checkEnum(body.style, STYLES, false)],
  ];
  for (const [field, problem] of checks) {
    if (problem !== undefined) return { ok: false, error: `${field}: ${problem}` };
  }

  // All fields have their types now; the casts only restate what the checks proved.
  const params: ExtendParams = {
    video_url: body.video_url as string,
    prompt: body.prompt as string,
    duration: body.duration as Duration,
    quality: body.quality as Quality,
    motion_mode: body.motion_mode as MotionMode,
  };
  if (body.negative_prompt !== undefined) params.negative_prompt = body.negative_prompt as string;
  if (body.seed !== undefined) params.seed = body.seed as number;
  if (body.style !== undefined) params.style = body.style as Style;

  // Cross-field rules: "only 5 is allowed for fast mode or 1080p quality"; "1080p does not support fast".
  if (params.motion_mode === 'fast' && params.duration !== 5) {
    return { ok: false, error: 'motion_mode: fast is only available when duration is 5' };
  }
  if (params.quality === '1080p' && params.duration !== 5) {
    return { ok: false, error: 'quality: 1080p is only available when duration is 5' };
  }
  if (params.quality === '1080p' && params.motion_mode !== 'normal') {
    return { ok: false, error: 'quality: 1080p does not support motion_mode fast' };
  }
  return { ok: true, params };
}

/** PixVerse V5 credits per generation; a combination absent here is forbidden by the rules. */
const PIXVERSE_CREDITS: Record<Quality, Partial<Record<Duration, number>>> = {
  '360p': { 5: 45, 8: 90 },
  '540p': { 5: 45, 8: 90 },
  '720p': { 5: 60, 8: 120 },
  '1080p': { 5: 120 },
};

/** Cost in USD (Segmind's $0.375 to $1.00 range = PixVerse credits / 120). */
export function costUsd(params: Pick<ExtendParams, 'quality' | 'duration'>): number {
  const credits = PIXVERSE_CREDITS[params.quality][params.duration];
  if (credits === undefined) throw new Error(`no price for ${params.quality} ${params.duration}s`);
  return credits / 120;
}

/** Output frame size by quality, for 16:9 sources. */
export const OUTPUT_SIZE: Record<Quality, { width: number; height: number }> = {
  '360p': { width: 640, height: 360 },
  '540p': { width: 960, height: 540 },
  '720p': { width: 1280, height: 720 },
  '1080p': { width: 1920, height: 1080 },
};

import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';

/** Our enum names, mapped to the values Segmind's API takes. */
export const QUALITY_UPSTREAM = { Q360P: '360p', Q540P: '540p', Q720P: '720p', Q1080P: '1080p' } as const;
export const MOTION_UPSTREAM = { NORMAL: 'normal', FAST: 'fast' } as const;
export const STYLE_UPSTREAM = {
  ANIME: 'anime',
  THREE_D_ANIMATION: '3d_animation',
  CLAY: 'clay',
  COMIC: 'comic',
  CYBERPUNK: 'cyberpunk',
} as const;
export const DURATIONS = [5, 8] as const;

export type Quality = keyof typeof QUALITY_UPSTREAM;
export type MotionMode = keyof typeof MOTION_UPSTREAM;
export type Style = keyof typeof STYLE_UPSTREAM;

const keys = <T extends object>(record: T) => Object.keys(record) as [keyof T & string, ...(keyof T & string)[]];

/** PixVerse counts characters, not UTF-16 code units. */
const characters = (value: string) => [...value].length;

/** Blank as Segmind's Python side strips it (str.isspace): JavaScript's \s less U+FEFF, plus U+001C-U+001F and U+0085. */
const isBlank = (value: string) => [...value].every((ch) => (/\s/.test(ch) && ch !== '\ufeff') || (ch >= '\x1c' && ch <= '\x1f') || ch === '\x85');

/** Text JSON can carry but PostgreSQL and Segmind cannot: NUL, and unpaired surrogates. */
const storable = z.string().refine((value) => !value.includes('\0') && value.isWellFormed(), {
  message: 'must not contain NUL or unpaired surrogate characters',
});

const text = (max: number) => storable.refine((value) => characters(value) <= max, { message: `must be at most ${max} characters` });

const httpUrl = storable
  .refine((value) => characters(value) <= 2048, { message: 'must be at most 2048 characters' })
  .refine(
    (value) => {
      // Checked as written: the URL parser would quietly repair "http:host", "http:///x", "http:\\host"
      // or strip whitespace, but Segmind receives the string itself.
      if (!/^https?:\/\/[^/\\?#\s]/i.test(value) || /[\s\p{Cc}\\]/u.test(value)) return false;
      try {
        return new URL(value).hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'must be an absolute http or https URL' },
  );

/** A file sent in the request (GraphQL multipart request spec): only its presence is a field rule; its bytes face SourceVideoRules. */
export interface UploadedFile {
  readonly name: string;
  readonly size: number;
  stream(): ReadableStream<Uint8Array>;
}
export const isUploadedFile = (value: unknown): value is UploadedFile =>
  typeof value === 'object' && value !== null && typeof (value as UploadedFile).stream === 'function' && typeof (value as UploadedFile).size === 'number';

const FieldRules = z.object({
  videoUrl: httpUrl.nullish(),
  video: z.custom<UploadedFile>(isUploadedFile, { message: 'must be a file sent as a multipart upload' }).nullish(),
  callbackUrl: httpUrl.nullish(),
  sourceGenerationId: storable.min(1).nullish(),
  prompt: text(2048).refine((value) => !isBlank(value), { message: 'must not be blank' }),
  negativePrompt: text(2048).nullish(),
  duration: z.union(DURATIONS.map((d) => z.literal(d)), { error: 'must be 5 or 8' }),
  quality: z.enum(keys(QUALITY_UPSTREAM)),
  motionMode: z.enum(keys(MOTION_UPSTREAM)),
  seed: z.int().min(1, 'must be between 1 and 999999').max(999_999, 'must be between 1 and 999999').nullish(),
  style: z.enum(keys(STYLE_UPSTREAM)).nullish(),
  idempotencyKey: storable.min(1).max(255).nullish(),
});

/** The quality of a new generation when the input names none and does not chain. */
export const DEFAULT_QUALITY: Quality = 'Q540P';

/** Whether a sourceGenerationId is well-formed enough to look up (its own field rule); the full rules run after. */
export const isSourceIdToLookUp = (value: unknown): value is string => value != null && FieldRules.shape.sourceGenerationId.safeParse(value).success;

/** The rules that tie fields together; checked even when a single field is also wrong. */
const CrossFieldRules = z
  .looseObject({})
  .superRefine((raw, ctx) => {
    const input = raw as Record<string, unknown>;
    const sources = [input.videoUrl, input.sourceGenerationId, input.video].filter((value) => value != null).length;
    if (sources !== 1) {
      for (const path of ['videoUrl', 'sourceGenerationId', 'video']) {
        ctx.addIssue({ code: 'custom', path: [path], message: 'give exactly one of videoUrl, sourceGenerationId and video' });
      }
    }
    if (input.motionMode === 'FAST' && input.duration !== 5) {
      ctx.addIssue({ code: 'custom', path: ['duration'], message: 'FAST motion requires a duration of 5 seconds' });
    }
    if (input.quality === 'Q1080P' && input.duration !== 5) {
      ctx.addIssue({ code: 'custom', path: ['duration'], message: 'Q1080P quality requires a duration of 5 seconds' });
    }
    if (input.quality === 'Q1080P' && input.motionMode !== 'NORMAL') {
      ctx.addIssue({ code: 'custom', path: ['motionMode'], message: 'Q1080P quality requires NORMAL motion' });
    }
  });

/**
 * Every rule of Segmind's pixverse-5-extend contract, stated once. The GraphQL input, the
 * worker and the docs all derive from this schema. Both halves run, so one answer names every
 * offending field.
 */
export const ExtendVideoRules = z.intersection(FieldRules, CrossFieldRules);

export type ExtendVideoInput = z.input<typeof ExtendVideoRules>;
export type ExtendVideoParams = z.output<typeof ExtendVideoRules>;

const MB = 1024 * 1024;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** The largest source video PixVerse takes; an upload is read no further than just past it. */
export const SOURCE_VIDEO_MAX_BYTES = 50 * MB;

/**
 * What PixVerse accepts as a source video, checked on an uploaded file's parsed headers before
 * anything is recorded or spent: MP4 or MOV, at most 50 MB, 30 s and 1920 px on either side.
 */
export const SourceVideoRules = z.object({
  container: z.enum(['mp4', 'mov'], { error: 'must be an MP4 or MOV file' }),
  byteSize: z.number().max(SOURCE_VIDEO_MAX_BYTES, { error: (issue) => `must be at most 50 MB (it is ${megabytes(Number(issue.input))})` }),
  durationSeconds: z.number().max(30, { error: (issue) => `must be at most 30 seconds long (it is ${Number(issue.input).toFixed(1)} s)` }),
  width: z.number().max(1920, { error: (issue) => `must be at most 1920 px wide (it is ${String(issue.input)} px)` }),
  height: z.number().max(1920, { error: (issue) => `must be at most 1920 px high (it is ${String(issue.input)} px)` }),
});
export type SourceVideo = z.infer<typeof SourceVideoRules>;

/** Validates an input, or throws InvalidInputError naming every offending field under `pathPrefix`. */
export function parseExtendVideoInput(input: unknown, pathPrefix: string[] = ['input']): ExtendVideoParams {
  const result = ExtendVideoRules.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidInputError(
    result.error.issues.map((issue) => ({ path: [...pathPrefix, ...issue.path.map(String)], message: issue.message })),
  );
}

/** The JSON body Segmind takes, for validated parameters and the URL of the video to extend. */
type StoredParams = Pick<ExtendVideoParams, 'prompt' | 'negativePrompt' | 'quality' | 'motionMode' | 'seed' | 'style'> & { duration: number };
export function toSegmindRequest(params: StoredParams, videoUrl: string) {
  return {
    video_url: videoUrl,
    prompt: params.prompt,
    ...(params.negativePrompt != null && { negative_prompt: params.negativePrompt }),
    duration: params.duration,
    quality: QUALITY_UPSTREAM[params.quality],
    motion_mode: MOTION_UPSTREAM[params.motionMode],
    ...(params.seed != null && { seed: params.seed }),
    ...(params.style != null && { style: STYLE_UPSTREAM[params.style] }),
  };
}
export type SegmindRequest = ReturnType<typeof toSegmindRequest>;

/**
 * What a generation costs in USD: PixVerse V5 credits scaled to Segmind's published range
 * ($0.375 for 360p/540p 5 s up to $1.00 for 1080p 5 s and 720p 8 s).
 */
const PIXVERSE_CREDITS: Record<Quality, Record<5 | 8, number | null>> = {
  Q360P: { 5: 45, 8: 90 },
  Q540P: { 5: 45, 8: 90 },
  Q720P: { 5: 60, 8: 120 },
  Q1080P: { 5: 120, 8: null },
};
export function estimatedCostUsd(params: Pick<ExtendVideoParams, 'quality' | 'duration'>): number {
  return (PIXVERSE_CREDITS[params.quality][params.duration] ?? 120) / 120;
}

/** Output frame size for a 16:9 source. */
export const OUTPUT_SIZE: Record<Quality, { width: number; height: number }> = {
  Q360P: { width: 640, height: 360 },
  Q540P: { width: 960, height: 540 },
  Q720P: { width: 1280, height: 720 },
  Q1080P: { width: 1920, height: 1080 },
};

import { GENERATION_ERROR_CODES, UNKNOWN_ERROR_CODE } from '../generations/lifecycle.ts';
import { MOTION_UPSTREAM, OUTPUT_SIZE, QUALITY_UPSTREAM, STYLE_UPSTREAM } from '../generations/rules.ts';
import { builder } from './builder.ts';

const valuesOf = <K extends string>(record: Record<K, unknown>, describe: (key: K) => string) =>
  Object.fromEntries(Object.keys(record).map((key) => [key, { description: describe(key as K) }])) as Record<K, { description: string }>;

export const VideoQuality = builder.enumType('VideoQuality', {
  description: 'Output resolution. Q1080P allows only 5-second, NORMAL-motion generations.',
  values: valuesOf(QUALITY_UPSTREAM, (key) => `${QUALITY_UPSTREAM[key]}: ${OUTPUT_SIZE[key].width}x${OUTPUT_SIZE[key].height} for 16:9 sources (the source's aspect ratio is kept)`),
});

export const MotionMode = builder.enumType('MotionMode', {
  description: 'Amount of motion. FAST allows only 5-second generations and no Q1080P.',
  values: valuesOf(MOTION_UPSTREAM, (key) => `"${MOTION_UPSTREAM[key]}" upstream`),
});

export const VideoStyle = builder.enumType('VideoStyle', {
  description: 'Visual style. Passed through to PixVerse, which applies it only on its v3.5 model.',
  values: valuesOf(STYLE_UPSTREAM, (key) => `"${STYLE_UPSTREAM[key]}" upstream`),
});

export const GenerationStatus = builder.enumType('GenerationStatus', {
  values: {
    QUEUED: { description: 'Accepted and waiting to be submitted to Segmind.' },
    RUNNING: { description: 'Submitted; Segmind is queueing or generating it, or extendql is copying the MP4.' },
    SUCCEEDED: { description: 'The MP4 is stored and can be downloaded from video.url.' },
    FAILED: { description: 'Ended without a video; see error.' },
    CANCELED: { description: 'Canceled before it finished.' },
  } as const,
});

export const GenerationErrorCode = builder.enumType('GenerationErrorCode', {
  description:
    'Why a generation failed, or what a RUNNING one is waiting out. A transient reason (RATE_LIMITED, UPSTREAM_UNAVAILABLE, ' +
    'OUTPUT_TRUNCATED, STORAGE_UNAVAILABLE...) as a failure means it was still failing at the deadline. More values may be added.',
  values: {
    ...valuesOf(GENERATION_ERROR_CODES, (code) => GENERATION_ERROR_CODES[code]),
    [UNKNOWN_ERROR_CODE]: { description: 'A code this server version does not know (recorded by another version); message says what happened' },
  },
});

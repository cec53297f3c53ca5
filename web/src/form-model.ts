import type { ExtendVideoInput, MotionMode, VideoQuality, VideoStyle } from './gql/graphql';

/** What to extend: a URL, a file from this computer, or one of the key's own generations. */
export type Source = { kind: 'url'; url: string } | { kind: 'upload'; file: File | null } | { kind: 'chain'; id: string; prompt: string };

export interface FormState {
  source: Source;
  prompt: string;
  negativePrompt: string;
  duration: 5 | 8;
  /** null: the server's default (Q540P, or the source's quality when chaining). */
  quality: VideoQuality | null;
  motionMode: MotionMode;
  style: VideoStyle | null;
  seed: string;
}

export const initialForm = (): FormState => ({
  source: { kind: 'url', url: '' },
  prompt: '',
  negativePrompt: '',
  duration: 5,
  quality: 'Q540P',
  motionMode: 'NORMAL',
  style: null,
  seed: '',
});

/** The form's fields that the server's typed errors point at (InvalidInputError.fields[].path). */
export type Field = 'source' | 'prompt' | 'negativePrompt' | 'duration' | 'quality' | 'motionMode' | 'style' | 'seed';
export type FieldErrors = Partial<Record<Field, string>>;

const FIELD_OF_PATH: Record<string, Field> = {
  videoUrl: 'source',
  video: 'source',
  sourceGenerationId: 'source',
  prompt: 'prompt',
  negativePrompt: 'negativePrompt',
  duration: 'duration',
  quality: 'quality',
  motionMode: 'motionMode',
  style: 'style',
  seed: 'seed',
};

/** Field errors by form field; messages for paths the form has no field for go to `rest`. */
export function fieldErrors(fields: { path: string[]; message: string }[]): { byField: FieldErrors; rest: string[] } {
  const byField: FieldErrors = {};
  const rest: string[] = [];
  for (const { path, message } of fields) {
    const field = FIELD_OF_PATH[path[1] ?? ''];
    if (field) byField[field] = byField[field] ? `${byField[field]}; ${message}` : message;
    else rest.push(`${path.join('.')}: ${message}`);
  }
  return { byField, rest };
}

/** The rules the server checks across fields, stated before submit: which ones the form now breaks. */
export function brokenRules(form: Pick<FormState, 'duration' | 'quality' | 'motionMode'>): { fast: boolean; fullHd: boolean } {
  return {
    fast: form.motionMode === 'FAST' && form.duration !== 5,
    fullHd: form.quality === 'Q1080P' && (form.duration !== 5 || form.motionMode !== 'NORMAL'),
  };
}

function common(form: FormState): ExtendVideoInput {
  const seed = form.seed.trim();
  return {
    prompt: form.prompt,
    negativePrompt: form.negativePrompt.trim() ? form.negativePrompt : null,
    duration: form.duration,
    quality: form.quality,
    motionMode: form.motionMode,
    style: form.style,
    // Not a number: sent as it is typed, so the server names the field (Int rejects it as a whole otherwise).
    seed: seed === '' ? null : /^\d+$/.test(seed) ? Number(seed) : -1,
  };
}

/** The extendVideo input for the form. */
export function toInput(form: FormState, idempotencyKey: string): ExtendVideoInput {
  const input = { ...common(form), idempotencyKey };
  switch (form.source.kind) {
    case 'url':
      return { ...input, videoUrl: form.source.url.trim() };
    case 'upload':
      return { ...input, video: form.source.file };
    case 'chain':
      return { ...input, sourceGenerationId: form.source.id };
  }
}

/**
 * The input to price: the same, except that an upload is priced without sending the file (the
 * price depends on quality and duration only; estimateCost does not read a video) by standing in
 * the sample clip's URL for it.
 */
export function toEstimateInput(form: FormState): ExtendVideoInput | null {
  if (form.source.kind === 'upload') return { ...common(form), videoUrl: new URL('/samples/beach.mp4', location.href).toString() };
  if (form.source.kind === 'url' && form.source.url.trim() === '') return null;
  return { ...toInput(form, ''), idempotencyKey: null };
}

import type { GenerationStatus, MotionMode, VideoQuality, VideoStyle } from './gql/graphql';

// The schema's enums as the studio shows them. `satisfies Record<Enum, …>` makes tsc fail when
// the schema (and so the generated types) gains or loses a value.
export const QUALITIES = {
  Q360P: '360p',
  Q540P: '540p',
  Q720P: '720p',
  Q1080P: '1080p',
} as const satisfies Record<VideoQuality, string>;

export const MOTION_MODES = {
  NORMAL: 'Normal',
  FAST: 'Fast',
} as const satisfies Record<MotionMode, string>;

export const STYLES = {
  ANIME: 'Anime',
  THREE_D_ANIMATION: '3D animation',
  CLAY: 'Clay',
  COMIC: 'Comic',
  CYBERPUNK: 'Cyberpunk',
} as const satisfies Record<VideoStyle, string>;

export const STATUSES = {
  QUEUED: 'Queued',
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  CANCELED: 'Canceled',
} as const satisfies Record<GenerationStatus, string>;

export const DURATIONS = [5, 8] as const;

export const enumKeys = <T extends object>(record: T) => Object.keys(record) as (keyof T & string)[];

const usd = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 3 });
export const money = (value: number) => usd.format(value);

const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const dateTime = (iso: string) => when.format(new Date(iso));

export function seconds(value: number): string {
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

export function bytes(value: number): string {
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(0)} KB`;
  return `${(value / 1024 / 1024).toFixed(1)} MB`;
}

/** Where a generation in flight is, for its progress bar: a share of the way, and words. */
export function progressOf(status: GenerationStatus, upstreamStatus: string | null): { share: number; label: string } {
  if (status === 'QUEUED') return { share: 0.1, label: 'Waiting for a worker' };
  if (status !== 'RUNNING') return { share: 1, label: STATUSES[status] };
  switch (upstreamStatus) {
    case null:
      return { share: 0.25, label: 'Submitting to Segmind' };
    case 'QUEUED':
      return { share: 0.4, label: 'Queued at Segmind' };
    case 'PROCESSING':
      return { share: 0.65, label: 'Generating' };
    case 'COMPLETED':
      return { share: 0.9, label: 'Saving the video' };
    default:
      return { share: 0.5, label: `Segmind: ${upstreamStatus}` };
  }
}

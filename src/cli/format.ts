// Small text helpers for what the CLI prints.

/**
 * Text from the server (prompts, error messages) without control characters, so that it cannot
 * move the cursor or recolour the terminal. Line breaks become spaces.
 */
export function clean(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
}

/** At most `width` characters, ending in an ellipsis when shortened. */
export function truncate(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 1) return chars.slice(0, width).join('');
  return `${chars.slice(0, width - 1).join('')}…`;
}

/** Length in characters (code points), as a terminal mostly counts them. */
export const textWidth = (text: string): number => [...text].length;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export const formatSeconds = (seconds: number): string => `${seconds.toFixed(1)}s`;

/** An ISO timestamp as `2026-11-24 17:00:05` (UTC). */
export function formatTimestamp(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return clean(iso);
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** US dollars with cents, and a third decimal when it has one: $0.375, $0.50, $1.00. */
export function formatUsd(usd: number): string {
  const text = usd.toFixed(3);
  return `$${text.endsWith('0') ? text.slice(0, -1) : text}`;
}

/**
 * Log lines for a person at a terminal: `12:04:05.120 INFO  extendql is listening url=…`. pino
 * still builds (and redacts) each JSON line; this only re-renders it. Pipes, files and production
 * keep the JSON, which is what log collectors (and the tests) read.
 */
const LEVELS: Record<number, [name: string, color: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 90],
  30: ['INFO ', 32],
  40: ['WARN ', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
};
/** Fields every line has, shown in their own way (or not at all). */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

function formatValue(value: unknown): string {
  return typeof value === 'string' && !/\s/.test(value) && value !== '' ? value : JSON.stringify(value);
}

export function formatLogLine(json: string, colors: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const [name, color] = LEVELS[entry.level as number] ?? [String(entry.level), 0];
  const time = new Date(typeof entry.time === 'number' ? entry.time : Date.now()).toISOString().slice(11, 23);
  const level = colors ? `\x1b[${color}m${name}\x1b[0m` : name;
  const { stack } = (entry.err ?? {}) as { stack?: unknown };
  const fields = Object.entries(entry)
    .filter(([key]) => !OMITTED.has(key))
    .map(([key, value]) => (key === 'err' && typeof value === 'object' && value ? `err=${formatValue((value as { message?: unknown }).message)}` : `${key}=${formatValue(value)}`));
  const line = [time, level, entry.msg ?? '', ...fields].join(' ');
  return `${line}\n${typeof stack === 'string' ? `${stack.replace(/^/gm, '    ')}\n` : ''}`;
}

/** A pino destination that writes human-readable lines to a terminal. */
export function humanDestination(stream: NodeJS.WriteStream = process.stdout): { write(line: string): void } {
  const colors = stream.hasColors?.() ?? false;
  return { write: (line) => void stream.write(formatLogLine(line.trimEnd(), colors)) };
}

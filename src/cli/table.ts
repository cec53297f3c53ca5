import { textWidth, truncate } from './format.ts';

export interface Column {
  header: string;
  align?: 'left' | 'right';
  /** Cells are cut short (…) to keep lines within the width; at most one column. */
  shrink?: { min: number };
}

const pad = (text: string, width: number, align: Column['align']) => {
  const gap = ' '.repeat(Math.max(0, width - textWidth(text)));
  return align === 'right' ? gap + text : text + gap;
};

/** A plain-text table, columns two spaces apart, lines at most `maxWidth` when a column can shrink. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], maxWidth: number): string {
  const widths = columns.map((column, i) => Math.max(textWidth(column.header), ...rows.map((row) => textWidth(row[i] ?? ''))));
  const flexible = columns.findIndex((column) => column.shrink);
  if (flexible !== -1) {
    const others = widths.reduce((sum, width, i) => (i === flexible ? sum : sum + width), 0) + 2 * (columns.length - 1);
    widths[flexible] = Math.max(columns[flexible]!.shrink!.min, Math.min(widths[flexible]!, maxWidth - others));
  }
  const line = (cells: readonly string[]) =>
    columns
      .map((column, i) => pad(truncate(cells[i] ?? '', widths[i]!), widths[i]!, column.align))
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...rows.map(line)].join('\n') + '\n';
}

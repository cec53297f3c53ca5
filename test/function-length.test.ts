import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const MAX_LINES = 80;

/** The project's TypeScript under src/, without generated code (Prisma client, GraphQL documents). */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return /generated|gql|node_modules/.test(entry.name) ? [] : sourceFiles(path);
    return /\.(ts|tsx|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every function in a file with its length in lines, from its first to its last line inclusive. */
function functionLengths(file: string, text: string): { where: string; name: string; lines: number }[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: { where: string; name: string; lines: number }[] = [];
  const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line;
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = lineOf(node.getStart());
      const named = node.name?.getText() ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText() : '(anonymous)');
      found.push({ where: `${file}:${first + 1}`, name: named, lines: lineOf(node.getEnd()) - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('function length', () => {
  it(`counts a function's lines from its first to its last, blank lines and comments included`, () => {
    const body = Array.from({ length: MAX_LINES - 1 }, (_, index) => (index % 3 === 0 ? '' : index % 3 === 1 ? '  // a comment' : '  work();')).join('\n');
    const lengths = functionLengths('sample.ts', `export function long() {\n${body}\n}\nconst short = () => {\n  return 1;\n};\n`);
    expect(lengths).toEqual([
      { where: 'sample.ts:1', name: 'long', lines: MAX_LINES + 1 },
      { where: `sample.ts:${MAX_LINES + 2}`, name: 'short', lines: 3 },
    ]);
  });

  it(`keeps every function in src/ at ${MAX_LINES} lines or fewer`, () => {
    const files = sourceFiles('src');
    expect(files.length).toBeGreaterThan(50);
    const tooLong = files
      .flatMap((file) => functionLengths(file, readFileSync(file, 'utf8')))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ where, name, lines }) => `${where} ${name}: ${lines} lines`);
    expect(tooLong).toEqual([]);
  });
});

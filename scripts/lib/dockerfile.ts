// A reader for the subset of Dockerfile syntax that extendql's Dockerfile uses, so that
// scripts/check-production-install.ts can replay its steps without a docker engine and
// test/deploy.test.ts can check it against compose.yaml.
import { matchesGlob } from 'node:path';

export interface Instruction {
  keyword: string;
  /** Leading `--name=value` options (RUN --mount, COPY --from, HEALTHCHECK --interval, ...). */
  flags: Record<string, string>;
  /** The rest of the line, continuations joined. */
  args: string;
  /** Preceded by a `# image only` comment: a step the replay skips. */
  imageOnly: boolean;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

const IMAGE_ONLY = /^#\s*image only\b/i;

/** Splits a Dockerfile into stages of instructions. Unknown syntax (heredocs, ARG in FROM) throws. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  let imageOnly = false;
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let raw = lines[i]!.trim();
    if (raw === '') continue;
    if (raw.startsWith('#')) {
      if (IMAGE_ONLY.test(raw)) imageOnly = true;
      continue;
    }
    while (raw.endsWith('\\')) raw = `${raw.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
    const instruction = parseInstruction(raw, start + 1, imageOnly);
    imageOnly = false;
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!match || match[1]!.includes('$')) throw new Error(`line ${start + 1}: unsupported FROM: ${instruction.args}`);
      stages.push({ image: match[1]!, name: match[2] ?? String(stages.length), instructions: [] });
    } else {
      if (!stages.length) throw new Error(`line ${start + 1}: ${instruction.keyword} before FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

function parseInstruction(raw: string, line: number, imageOnly: boolean): Instruction {
  const keyword = /^\S+/.exec(raw)![0];
  let args = raw.slice(keyword.length).trimStart();
  const flags: Record<string, string> = {};
  for (let flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args); flag; flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args)) {
    flags[flag[1]!] = flag[2] ?? '';
    args = args.slice(flag[0].length);
  }
  if (args.includes('<<')) throw new Error(`line ${line}: heredocs are not supported`);
  return { keyword: keyword.toUpperCase(), flags, args, imageOnly, line };
}

/** The exec form (`["node", "x"]`) of CMD, ENTRYPOINT and HEALTHCHECK CMD; the shell form is refused. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec form: ${args}`);
  return parsed;
}

/** ENV name=value pairs (one per instruction, as this Dockerfile writes them). */
export function envOf(instruction: Instruction): [string, string] {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(instruction.args);
  if (!match) throw new Error(`line ${instruction.line}: write ENV as one NAME=value`);
  return [match[1]!, match[2]!];
}

export function last(stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

/**
 * Whether .dockerignore keeps `path` (relative, `/`-separated) out of the build context: a
 * pattern matches the path or one of its parent directories. Exceptions (`!`) are not supported.
 */
export function dockerIgnored(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  return patterns.some((pattern) =>
    parts.some((_, i) => matchesGlob(parts.slice(0, i + 1).join('/'), pattern)),
  );
}

export function parseDockerignore(text: string): string[] {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/^\/+/, '').replace(/\/+$/, ''));
  const exception = patterns.find((p) => p.startsWith('!'));
  if (exception) throw new Error(`.dockerignore exceptions are not supported: ${exception}`);
  return patterns;
}

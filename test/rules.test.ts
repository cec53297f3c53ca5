import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, type ExtendVideoInput } from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

// The contract's rules, restated here on purpose so that the product's zod schema is checked
// against the document rather than against itself.
const UPSTREAM_QUALITY = { Q360P: '360p', Q540P: '540p', Q720P: '720p', Q1080P: '1080p' } as const;
const allowedByContract = (duration: number, quality: string, motion: string) =>
  !(motion === 'FAST' && duration !== 5) && !(quality === 'Q1080P' && (duration !== 5 || motion !== 'NORMAL'));

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.close());

const base = { videoUrl: 'https://videos.example/source.mp4', prompt: 'the tide comes in' };
const extend = (input: Partial<ExtendVideoInput>) =>
  stack.execute(ExtendVideoDocument, { input: { ...base, ...input } as ExtendVideoInput }).then((result) => {
    expect(result.errors).toBeUndefined();
    return result.data!.extendVideo;
  });

describe('every duration x quality x motion combination', () => {
  const combos = [5, 8].flatMap((duration) =>
    (['Q360P', 'Q540P', 'Q720P', 'Q1080P'] as const).flatMap((quality) => (['NORMAL', 'FAST'] as const).map((motionMode) => ({ duration, quality, motionMode }))),
  );

  it('accepts exactly the contract combinations, sends them upstream verbatim, and spends nothing on the rest', async () => {
    const results = await Promise.all(combos.map(async (combo) => ({ combo, result: await extend({ ...combo, prompt: `combo ${JSON.stringify(combo)}` }) })));

    for (const { combo, result } of results) {
      const allowed = allowedByContract(combo.duration, combo.quality, combo.motionMode);
      expect(result.__typename, JSON.stringify(combo)).toBe(allowed ? 'ExtendVideoSuccess' : 'InvalidInputError');
      if (result.__typename === 'InvalidInputError') {
        expect(result.fields.length).toBeGreaterThan(0);
        for (const field of result.fields) expect(['duration', 'motionMode']).toContain(field.path.at(-1));
      }
    }
    expect(results.filter((r) => r.result.__typename === 'ExtendVideoSuccess')).toHaveLength(10);

    const accepted = results.flatMap(({ result }) => (result.__typename === 'ExtendVideoSuccess' ? [result.generation.id] : []));
    const finished = await Promise.all(accepted.map((id) => waitForTerminal(stack, id)));
    expect(finished.map((g) => g.status)).toEqual(accepted.map(() => 'SUCCEEDED'));

    const sent = submissions(stack);
    expect(sent).toHaveLength(10);
    for (const { combo } of results.filter((r) => r.result.__typename === 'ExtendVideoSuccess')) {
      const prompt = `combo ${JSON.stringify(combo)}`;
      const request = sent.filter((r) => (r.body as { prompt: string }).prompt === prompt);
      expect(request).toHaveLength(1);
      expect(request[0]!.path).toBe('/v2/pixverse-5-extend');
      expect(request[0]!.headers['content-type']).toBe('application/json');
      expect(request[0]!.headers['x-api-key']).toBe(stack.segmindKey);
      expect(request[0]!.body).toStrictEqual({
        video_url: base.videoUrl,
        prompt,
        duration: combo.duration,
        quality: UPSTREAM_QUALITY[combo.quality],
        motion_mode: combo.motionMode.toLowerCase(),
      });
    }
  });
});

describe('field rules', () => {
  const long = (n: number) => 'a'.repeat(n);
  const cases: [string, Partial<ExtendVideoInput>, string[] | null][] = [
    ['blank prompt', { prompt: '   ' }, ['input', 'prompt']],
    ['empty prompt', { prompt: '' }, ['input', 'prompt']],
    ['prompt of 2049 characters', { prompt: long(2049) }, ['input', 'prompt']],
    ['prompt of 2048 characters', { prompt: long(2048) }, null],
    ['prompt of 2048 emoji (characters, not UTF-16 units)', { prompt: '🌊'.repeat(2048) }, null],
    ['negative prompt of 2049 characters', { negativePrompt: long(2049) }, ['input', 'negativePrompt']],
    ['negative prompt of 2048 characters', { negativePrompt: long(2048) }, null],
    ['duration 6', { duration: 6 }, ['input', 'duration']],
    ['duration 0', { duration: 0 }, ['input', 'duration']],
    ['seed 0', { seed: 0 }, ['input', 'seed']],
    ['seed 1', { seed: 1 }, null],
    ['seed 999999', { seed: 999_999 }, null],
    ['seed 1000000', { seed: 1_000_000 }, ['input', 'seed']],
    ['ftp URL', { videoUrl: 'ftp://videos.example/a.mp4' }, ['input', 'videoUrl']],
    ['relative URL', { videoUrl: '/videos/a.mp4' }, ['input', 'videoUrl']],
    ['javascript URL', { videoUrl: 'javascript:alert(1)' }, ['input', 'videoUrl']],
    ['URL with a space', { videoUrl: 'https://videos.example/a b.mp4' }, ['input', 'videoUrl']],
    ['URL of 2049 characters', { videoUrl: `https://videos.example/${long(2049 - 23)}` }, ['input', 'videoUrl']],
    ['URL of 2048 characters', { videoUrl: `https://videos.example/${long(2048 - 23)}` }, null],
    ['neither videoUrl nor sourceGenerationId', { videoUrl: null }, ['input', 'videoUrl']],
    ['both videoUrl and sourceGenerationId', { sourceGenerationId: 'R2VuZXJhdGlvbjox' }, ['input', 'sourceGenerationId']],
    ['empty idempotency key', { idempotencyKey: '' }, ['input', 'idempotencyKey']],
    ['style passes through', { style: 'THREE_D_ANIMATION' }, null],
  ];

  it.each(cases)('%s', async (_name, input, offendingPath) => {
    const before = submissions(stack).length;
    const result = await extend(input);
    if (offendingPath === null) {
      expect(result.__typename).toBe('ExtendVideoSuccess');
      // Let it finish, so that its submission can't be mistaken for another case's.
      if (result.__typename === 'ExtendVideoSuccess') await waitForTerminal(stack, result.generation.id);
      return;
    }
    expect(result.__typename).toBe('InvalidInputError');
    if (result.__typename !== 'InvalidInputError') return;
    expect(result.fields.map((field) => field.path)).toContainEqual(offendingPath);
    expect(result.message).toContain(offendingPath.join('.'));
    // Nothing reached Segmind for a rejected input.
    expect(submissions(stack).length).toBe(before);
  });

  it('maps style to the upstream spelling', async () => {
    const result = await extend({ style: 'THREE_D_ANIMATION', prompt: 'styled' });
    if (result.__typename !== 'ExtendVideoSuccess') throw new Error(result.__typename);
    await waitForTerminal(stack, result.generation.id);
    const sent = submissions(stack).find((r) => (r.body as { prompt: string }).prompt === 'styled');
    expect(sent?.body).toMatchObject({ style: '3d_animation' });
  });
});

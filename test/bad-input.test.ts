// Property-based tests (fast-check) that throw random and adversarial input at the real server,
// over real HTTP: at ExtendVideoInput through the extendVideo mutation, and at the raw /graphql
// endpoint. Every bad input must get a clear client error, write no Generation row and cause no
// upstream call. A small positive property at the end checks that valid inputs are accepted.
//
// The contract's rules are restated here (from /work/shared/docs/segmind-contract.md) on purpose,
// so that the server is checked against the document rather than against its own zod schema.

import { encodeGlobalID } from '@pothos/plugin-relay';
import fc from 'fast-check';
import { print, type ExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, type ExtendVideoInput, type ExtendVideoMutation } from './gql/graphql.ts';
import { startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    // Generous upstream credit and per-key limits: if a bad input is wrongly accepted, the
    // generations it leaves behind must not turn later cases into credit or rate-limit errors.
    segmind: { credits: 1_000_000 },
    env: { RATE_LIMIT_PER_MINUTE: '100000', MAX_CONCURRENT_PER_KEY: '100000' },
  });
});

/** Every generated case, counted as it runs (shrinking included). */
const tried = { graphql: 0, http: 0 };
afterAll(async () => {
  console.log(`bad-input: ${tried.graphql + tried.http} cases tried (${tried.graphql} GraphQL inputs, ${tried.http} raw HTTP bodies)`);
  await stack?.close();
});

// ---------------------------------------------------------------------------------------------
// The contract, restated
// ---------------------------------------------------------------------------------------------

const QUALITIES = ['Q360P', 'Q540P', 'Q720P', 'Q1080P'] as const;
const MOTIONS = ['NORMAL', 'FAST'] as const;
const STYLES = ['ANIME', 'THREE_D_ANIMATION', 'CLAY', 'COMIC', 'CYBERPUNK'] as const;
const UPSTREAM_QUALITY = { Q360P: '360p', Q540P: '540p', Q720P: '720p', Q1080P: '1080p' } as const;
const UPSTREAM_STYLE = { ANIME: 'anime', THREE_D_ANIMATION: '3d_animation', CLAY: 'clay', COMIC: 'comic', CYBERPUNK: 'cyberpunk' } as const;
type Quality = (typeof QUALITIES)[number];
type Motion = (typeof MOTIONS)[number];
interface Combo {
  duration: 5 | 8;
  quality: Quality;
  motionMode: Motion;
}
const ALL_COMBOS: Combo[] = ([5, 8] as const).flatMap((duration) =>
  QUALITIES.flatMap((quality) => MOTIONS.map((motionMode) => ({ duration, quality, motionMode }))),
);
/** "fast only available when duration=5"; "1080p does not support fast" and needs duration 5. */
const allowedByContract = ({ duration, quality, motionMode }: Combo) =>
  !(motionMode === 'FAST' && duration !== 5) && !(quality === 'Q1080P' && (duration !== 5 || motionMode !== 'NORMAL'));
const ALLOWED_COMBOS = ALL_COMBOS.filter(allowedByContract);
const FORBIDDEN_COMBOS = ALL_COMBOS.filter((combo) => !allowedByContract(combo));

/** The Unicode White_Space property (a prompt made only of these is blank). */
const WHITE_SPACE = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000].map(
  (code) => String.fromCodePoint(code),
);
/** Printable but awkward: combining marks, emoji sequences, RTL text and bidi controls, zero-width characters. */
const AWKWARD = ['é', 'e\u0301', 'a\u0308\u0323', 'Z̴̢͎a̵l̷g̶o', '🌊', '👩🏽‍🚀', '🏳️‍🌈', '🇯🇵', 'שלום', 'مرحبا', '\u202e', '\u200f', '\u200e', '\u200d', '\u200b', '中文', 'ß', 'İ', 'ﷺ', '\ufeff', '𝄞', '\ufffd', '\u{10ffff}'];
const CONTROLS = ['\u0000', '\u0001', '\u0007', '\b', '\u001b', '\u007f', '\u0080', '\u009f'];
/** High halves only, so that no two of them can pair up into one valid code point. */
const LONE_SURROGATES = ['\ud800', '\udbff'];

const codePoints = (value: string) => [...value].length;

/** `pattern` repeated up to exactly `n` code points (the rules count code points, not UTF-16 units). */
function stretch(pattern: string, n: number): string {
  const units = [...pattern];
  let out = '';
  for (let i = 0; i < n; i++) out += units[i % units.length];
  const short = n - codePoints(out);
  return short > 0 ? out + 'x'.repeat(short) : out;
}

/** Anything outside printable ASCII escaped, so that invisible characters show in reports. */
const visible = (text: string) =>
  text.replace(/[^\x20-\x7e…]/gu, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
/** Long strings are abbreviated in fast-check's counterexamples and in assertion messages. */
const abbreviate = (value: unknown): string =>
  visible(
    JSON.stringify(value, (_key, v: unknown) =>
      typeof v === 'string' && v.length > 160 ? `${v.slice(0, 80)}…[${codePoints(v)} code points]…${v.slice(-24)}` : v,
    ) ?? String(value),
  );
function printable<T extends object>(value: T): T {
  return Object.assign(value, { [fc.toStringMethod]: () => abbreviate(value) });
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: valid inputs
// ---------------------------------------------------------------------------------------------

/** A piece of text that is valid in a prompt: printable, possibly awkward, never a C0/C1 control other than tab or newline. */
const safePiece = fc
  .oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }) },
    { weight: 3, arbitrary: fc.constantFrom(...AWKWARD) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom(' ', '\t', '\n') },
  )
  .filter((piece) => !/[\p{Cc}\p{Cs}]/u.test(piece.replace(/[\t\n]/g, '')));
/** Any piece of text at all: also whitespace, control characters, NUL, lone surrogates, any code point. */
const anyPiece = fc.oneof(
  { weight: 3, arbitrary: safePiece },
  { weight: 1, arbitrary: fc.constantFrom(...WHITE_SPACE, ...CONTROLS, ...LONE_SURROGATES) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) },
);
const words = fc.array(safePiece, { maxLength: 30 }).map((pieces) => pieces.join(''));
/** `min`..`max` code points made of repeated pieces: cheap even at 100 000 code points. */
const long = (piece: fc.Arbitrary<string>, min: number, max: number) =>
  fc.tuple(fc.array(piece, { minLength: 1, maxLength: 6 }), fc.integer({ min, max })).map(([pieces, n]) => stretch(pieces.join(''), n));

/** Never blank: it starts with a word. At most 2048 code points, sometimes exactly 2048. */
const validPrompt = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('waves', 'Tide', 'ночь', '海', '🌊', 'موج', 'e\u0301te'), words).map(([word, rest]) => `${word} ${rest}`) },
  { weight: 1, arbitrary: long(safePiece, 1900, 2047).map((text) => `w${text}`) },
);
const validNegativePrompt = fc.oneof({ weight: 6, arbitrary: words }, { weight: 1, arbitrary: long(safePiece, 1900, 2048) });

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/).filter((l) => !l.startsWith('xn--'));
const hostname = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'example', 'net', 'io', 'video'))
  .map(([labels, tld]) => [...labels, tld].join('.'));
const urlPath = fc
  .tuple(fc.array(fc.stringMatching(/^[A-Za-z0-9_~-]{1,16}$/), { maxLength: 4 }), fc.constantFrom('.mp4', '.mov', '', '.MP4'))
  .map(([segments, ext]) => `/${segments.join('/')}${ext}`);
const validUrl = fc
  .record({
    scheme: fc.constantFrom('https', 'http', 'HTTPS', 'Http'),
    host: hostname,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    path: urlPath,
    query: fc.option(fc.stringMatching(/^[a-z]{1,8}=[A-Za-z0-9]{0,12}$/), { nil: undefined }),
  })
  .map(({ scheme, host, port, path, query }) => `${scheme}://${host}${port ? `:${port}` : ''}${path}${query ? `?${query}` : ''}`);

/** Absent, null, or a value. */
const optional = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: arbitrary });

type Input = Record<string, unknown>;

/** Inputs that respect every rule of the contract. */
const validInput: fc.Arbitrary<Input> = fc
  .record({
    videoUrl: validUrl,
    prompt: validPrompt,
    negativePrompt: optional(validNegativePrompt),
    combo: fc.constantFrom(...ALLOWED_COMBOS),
    omitDefaults: fc.boolean(),
    seed: optional(fc.integer({ min: 1, max: 999_999 })),
    style: optional(fc.constantFrom(...STYLES)),
    idempotencyKey: optional(fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/)),
  })
  .map(({ combo, omitDefaults, ...rest }) => {
    const input: Input = { ...rest };
    // The schema's defaults (5 seconds, Q540P, NORMAL) are sometimes left to apply.
    if (!(omitDefaults && combo.duration === 5)) input.duration = combo.duration;
    if (!(omitDefaults && combo.quality === 'Q540P')) input.quality = combo.quality;
    if (!(omitDefaults && combo.motionMode === 'NORMAL')) input.motionMode = combo.motionMode;
    for (const key of Object.keys(input)) if (input[key] === undefined) delete input[key];
    return input;
  });

// ---------------------------------------------------------------------------------------------
// Arbitraries: rule breakers. Each patches a valid input so that it breaks at least one rule,
// and says which fields the InvalidInputError must name: every inner list needs one of its paths.
// ---------------------------------------------------------------------------------------------

interface Breaker {
  patch: Input;
  expected: string[][];
}
const breaker = (patch: Input, ...expected: string[][]): Breaker => ({ patch, expected });
const HUGE = 100_000;

const blankPrompts = fc.array(fc.constantFrom(...WHITE_SPACE), { maxLength: 64 }).map((spaces) => breaker({ prompt: spaces.join('') }, ['input.prompt']));

const tooLong = (max: number) =>
  fc.oneof(
    long(anyPiece, 2049, max).map((prompt) => breaker({ prompt }, ['input.prompt'])),
    long(anyPiece, 2049, max).map((negativePrompt) => breaker({ negativePrompt }, ['input.negativePrompt'])),
    fc.oneof(fc.constant(''), long(anyPiece, 256, max)).map((idempotencyKey) => breaker({ idempotencyKey }, ['input.idempotencyKey'])),
    fc
      .tuple(fc.constantFrom('https://videos.example/', 'http://a.io/x/'), long(fc.constantFrom('a', 'Z', '9', '/', '-', '_', '.', '~', '%20', 'é', '🌊', '中'), 2049, max))
      .map(([prefix, tail]) => breaker({ videoUrl: prefix + tail }, ['input.videoUrl'])),
  );

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const outOfRangeNumbers = fc.oneof(
  fc.oneof(fc.integer({ min: INT32.min, max: 0 }), fc.integer({ min: 1_000_000, max: INT32.max })).map((seed) => breaker({ seed }, ['input.seed'])),
  fc.integer(INT32)
    .filter((duration) => duration !== 5 && duration !== 8)
    .map((duration) => breaker({ duration }, ['input.duration'])),
);

const crossField = fc.tuple(fc.constantFrom(...FORBIDDEN_COMBOS), fc.boolean()).map(([combo, omitDefaultDuration]) => {
  const expected: string[][] = [];
  if ((combo.motionMode === 'FAST' || combo.quality === 'Q1080P') && combo.duration !== 5) expected.push(['input.duration']);
  if (combo.quality === 'Q1080P' && combo.motionMode !== 'NORMAL') expected.push(['input.motionMode']);
  const patch: Input = { ...combo };
  if (omitDefaultDuration && combo.duration === 5) patch.duration = undefined;
  return breaker(patch, ...expected);
});

const nothing = fc.constantFrom(undefined, null);
const someId = fc.oneof(
  fc.uuid().map((id) => encodeGlobalID('Generation', id)),
  fc.uuid(),
  fc.string({ unit: anyPiece, maxLength: 20 }),
  long(anyPiece, 2049, 20_000),
);
const SOURCES = ['input.videoUrl', 'input.sourceGenerationId'];
const sources = fc.oneof(
  fc.tuple(nothing, nothing).map(([videoUrl, sourceGenerationId]) => breaker({ videoUrl, sourceGenerationId }, SOURCES)),
  fc.tuple(validUrl, someId).map(([videoUrl, sourceGenerationId]) => breaker({ videoUrl, sourceGenerationId }, SOURCES)),
  nothing.map((videoUrl) => breaker({ videoUrl, sourceGenerationId: '' }, ['input.sourceGenerationId'])),
);

const hostAndPath = fc.tuple(hostname, urlPath).map(([host, path]) => host + path);
const OTHER_SCHEMES = ['ftp', 'ftps', 'sftp', 'file', 'javascript', 'data', 'mailto', 'ws', 'wss', 'gopher', 'blob', 'about', 'view-source', 'httpx', 'hxxp', 'http+unix', 'git', 'rtsp', 's3', 'tel', 'urn', 'vbscript', 'jar', 'ldap', 'smb'];
const notHttpUrls = fc.oneof(
  fc.tuple(fc.constantFrom(...OTHER_SCHEMES), fc.constantFrom('://', ':', ':///'), hostAndPath).map(([scheme, sep, rest]) => `${scheme}${sep}${rest}`),
  fc.constantFrom(
    'javascript:alert(1)',
    'data:video/mp4;base64,AAAAIGZ0eXBpc29t',
    'mailto:someone@videos.example',
    'file:///etc/passwd',
    'file://localhost/etc/passwd',
    'blob:https://videos.example/5a8e0a2c',
    'view-source:https://videos.example/a.mp4',
    'localhost:8080/a.mp4',
    'C:\\videos\\a.mp4',
    '',
  ),
  // Relative references: a path, a protocol-relative URL, a query or fragment alone, a bare host.
  fc.tuple(fc.constantFrom('/', './', '../', '//', '', '?', '#', '~/', '\\\\'), hostAndPath).map(([prefix, rest]) => prefix + rest),
);
const URL_BREAKING_CHARACTERS = [...WHITE_SPACE, ...CONTROLS];
const urlsWithSpaces = fc.tuple(validUrl, fc.array(fc.tuple(fc.constantFrom(...URL_BREAKING_CHARACTERS), fc.nat()), { minLength: 1, maxLength: 3 })).map(([url, inserts]) =>
  inserts.reduce((value, [character, at]) => {
    const i = at % (value.length + 1);
    return value.slice(0, i) + character + value.slice(i);
  }, url),
);
const badUrls = fc.oneof(notHttpUrls, urlsWithSpaces).map((videoUrl) => breaker({ videoUrl }, ['input.videoUrl']));

/**
 * http(s) "URLs" with no authority: nothing (or no host) after "//", or no "//" at all. A WHATWG
 * parser quietly repairs some of them (http:/a.io/x becomes http://a.io/x), but Segmind is given
 * the string as sent, and an RFC 3986 parser finds no host in it.
 */
const httpScheme = fc.constantFrom('http', 'https', 'HTTP', 'Https');
const noAuthority = fc
  .oneof(
    fc.tuple(httpScheme, fc.constantFrom('', '/', '?x=1', '#frag', ':80', ':80/a.mp4', '@', '@/a.mp4', '/a.mp4', ':@/a.mp4')).map(([s, rest]) => `${s}://${rest}`),
    fc.tuple(httpScheme, fc.constantFrom('', '/', '///', '////', '\\\\', '\\', '/\\'), hostAndPath).map(([s, sep, rest]) => `${s}:${sep}${rest}`),
  )
  .map((videoUrl) => breaker({ videoUrl }, ['input.videoUrl']));

/** Rule breakers of every kind, for cases that break several rules at once. */
const anyBreaker = fc.oneof(blankPrompts, tooLong(20_000), outOfRangeNumbers, crossField, sources, badUrls, noAuthority);

interface Case {
  input: Input;
  expected: string[][];
}
/** A valid input with the breakers applied; a breaker that touches a field already broken is skipped. */
const broken = (breakers: fc.Arbitrary<Breaker[]>): fc.Arbitrary<Case> =>
  fc.tuple(validInput, breakers).map(([base, list]) => {
    const input: Input = { ...base };
    const touched = new Set<string>();
    const expected: string[][] = [];
    for (const { patch, expected: paths } of list) {
      const fields = Object.keys(patch);
      if (fields.some((field) => touched.has(field))) continue;
      for (const field of fields) touched.add(field);
      Object.assign(input, patch);
      expected.push(...paths);
    }
    for (const key of Object.keys(input)) if (input[key] === undefined) delete input[key];
    return printable({ input, expected });
  });
const single = (arbitrary: fc.Arbitrary<Breaker>) => broken(arbitrary.map((b) => [b]));

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

const EXTEND_VIDEO = print(ExtendVideoDocument);
type ExtendVideoResponse = ExecutionResult<ExtendVideoMutation>;

interface Reply {
  status: number;
  text: string;
  json: unknown;
}
interface RawRequest {
  /** The API key to send; the stack's own by default. */
  key?: string;
  method?: string;
  /** Appended to the GraphQL endpoint, e.g. "?query=…". */
  search?: string;
  /** Content type; null sends none. */
  contentType?: string | null;
  accept?: string;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
}

async function send({ key = stack.key, method = 'POST', search = '', contentType = 'application/json', accept, body }: RawRequest): Promise<Reply> {
  const headers: Record<string, string> = { 'x-api-key': key };
  if (contentType !== null) headers['content-type'] = contentType;
  if (accept) headers.accept = accept;
  const streamed = body instanceof ReadableStream;
  // A string body would make fetch add text/plain; bytes let "no content type" mean none.
  const payload = typeof body === 'string' && contentType === null ? new TextEncoder().encode(body) : body;
  const response = await fetch(`${stack.graphqlUrl}${search}`, { method, headers, body: payload, ...(streamed && { duplex: 'half' }) } as RequestInit);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}
const describeReply = (reply: Reply) => `HTTP ${reply.status}: ${visible(reply.text.length > 600 ? `${reply.text.slice(0, 600)}…` : reply.text)}`;

const rowCount = () => stack.app.db.generation.count();
const upstreamPosts = () => stack.segmind.requests.filter((request) => request.method === 'POST').length;

/** Waits until no generation is QUEUED or RUNNING, so that every upstream call it causes has happened. */
async function settle() {
  for (let attempt = 0; attempt < 300; attempt++) {
    if ((await stack.app.db.generation.count({ where: { status: { in: ['QUEUED', 'RUNNING'] } } })) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('generations still in progress after 30 s');
}

/** Runs `property` and checks that, all told, it wrote no Generation row and made no upstream POST. */
async function expectNothingRecorded(property: () => Promise<void>) {
  await settle(); // a leak from an earlier failing test must not be blamed on this one
  const rows = await rowCount();
  const posts = upstreamPosts();
  await property();
  await settle();
  expect(await rowCount(), 'Generation rows written').toBe(rows);
  expect(upstreamPosts(), 'upstream POSTs made').toBe(posts);
}

/** The server still answers an ordinary query. */
async function expectStillServing() {
  const reply = await send({ body: JSON.stringify({ query: '{ generations(first: 1) { totalCount } }' }) });
  expect(reply.status, describeReply(reply)).toBe(200);
  expect((reply.json as { data?: { generations?: { totalCount?: unknown } } }).data?.generations?.totalCount, describeReply(reply)).toEqual(expect.any(Number));
}

/** extendVideo answers with a typed InvalidInputError naming the expected fields, and records nothing. */
async function expectInvalidInput({ input, expected }: Case) {
  tried.graphql++;
  const rows = await rowCount();
  // A key per case: should a bad input be wrongly accepted, its generation (and idempotency key)
  // must not change the answer to any other case, shrinking included.
  const key = await stack.newKey('bad-input');
  const reply = await send({ key, body: JSON.stringify({ query: EXTEND_VIDEO, variables: { input } }) });
  const context = describeReply(reply);
  expect(reply.status, context).toBe(200);
  const result = (reply.json as ExtendVideoResponse | undefined)?.data?.extendVideo;
  expect(result?.__typename, context).toBe('InvalidInputError');
  if (result?.__typename !== 'InvalidInputError') return;
  expect(result.fields.length, context).toBeGreaterThan(0);
  for (const field of result.fields) {
    expect(field.path[0], context).toBe('input');
    expect(field.message, context).not.toBe('');
  }
  const named = result.fields.map((field) => field.path.join('.'));
  for (const anyOf of expected) expect(anyOf.some((path) => named.includes(path)), `expected ${anyOf.join(' or ')} among ${named.join(', ')}`).toBe(true);
  expect(await rowCount(), 'a Generation row was written').toBe(rows);
}

/** The GraphQL type system refuses the request: errors, no extendVideo result, no internal error. */
async function expectGraphQLRejection(body: string) {
  tried.graphql++;
  const rows = await rowCount();
  const reply = await send({ body });
  const context = describeReply(reply);
  expect([200, 400], context).toContain(reply.status);
  const result = reply.json as ExtendVideoResponse | undefined;
  expect(result?.errors?.length ?? 0, context).toBeGreaterThan(0);
  expect(result?.data?.extendVideo ?? null, context).toBeNull();
  expect(result?.errors?.map((error) => error.extensions?.code), context).not.toContain('INTERNAL_SERVER_ERROR');
  expect(await rowCount(), 'a Generation row was written').toBe(rows);
}

/** The endpoint answers a 4xx, records nothing and keeps serving. */
async function expectRefused(request: RawRequest) {
  tried.http++;
  const rows = await rowCount();
  const reply = await send(request);
  const context = `${describeReply(reply)}\nfor ${abbreviate({ ...request, body: request.body === undefined || typeof request.body === 'string' ? request.body : '(bytes)' })}`;
  expect(reply.status, context).toBeGreaterThanOrEqual(400);
  expect(reply.status, context).toBeLessThan(500);
  expect(await rowCount(), 'a Generation row was written').toBe(rows);
  await expectStillServing();
}

// ---------------------------------------------------------------------------------------------
// GraphQL literals, for wrong types written into the document rather than sent as variables
// ---------------------------------------------------------------------------------------------

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const ENUM_FIELDS = new Set(['quality', 'motionMode', 'style']);
const asName = (key: string) => {
  const name = key.replace(/[^_0-9A-Za-z]/g, '_');
  return NAME.test(name) ? name : `_${name}`;
};
function literal(value: unknown, asEnum = false): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return asEnum && NAME.test(value) && !['true', 'false', 'null'].includes(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map((item) => literal(item)).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
  return `{${entries.map(([key, item]) => `${asName(key)}: ${literal(item, ENUM_FIELDS.has(key))}`).join(', ')}}`;
}

// ---------------------------------------------------------------------------------------------
// Wrong types, unknown enum values, nulls and missing values
// ---------------------------------------------------------------------------------------------

const FIELD_TYPES = {
  videoUrl: 'String',
  sourceGenerationId: 'ID',
  prompt: 'String!',
  negativePrompt: 'String',
  duration: 'Int!',
  quality: 'VideoQuality',
  motionMode: 'MotionMode!',
  seed: 'Int',
  style: 'VideoStyle',
  idempotencyKey: 'String',
} as const;
type Field = keyof typeof FIELD_TYPES;
const ENUM_VALUES: Record<string, readonly string[]> = { VideoQuality: QUALITIES, MotionMode: MOTIONS, VideoStyle: STYLES };

const smallJson = fc.jsonValue({ maxDepth: 1 });
const aList = fc.array(smallJson, { maxLength: 3 });
const anObject = fc.dictionary(fc.string({ maxLength: 8 }), smallJson, { maxKeys: 3 });
const fraction = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n));
const beyondInt32 = fc.oneof(
  fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -(2 ** 31) - 1 }),
  fc.constantFrom(1e21, -1e21, 2 ** 53),
);
const unknownEnumValue = (known: readonly string[]) =>
  fc
    .oneof(
      fc.constantFrom('q720p', '720p', '1080p', 'fast', 'normal', 'anime', '3d_animation', 'Q720P ', ' Q720P', 'Q720p', 'Q2160P', 'SLOW', 'THREE_D', 'null', 'true', ''),
      fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,12}$/),
      fc.string({ unit: anyPiece, maxLength: 8 }),
    )
    .filter((value) => !known.includes(value));

function wrongValue(type: string): fc.Arbitrary<unknown> {
  const required = type.endsWith('!');
  const base = type.replace('!', '');
  const nullIfRequired = required ? [fc.constant(null)] : [];
  const others = [fc.boolean(), aList, anObject];
  switch (base) {
    case 'String':
      return fc.oneof(fc.integer(), fraction, ...others, ...nullIfRequired);
    case 'ID': // an integer is a valid ID
      return fc.oneof(fraction, ...others, ...nullIfRequired);
    case 'Int':
      return fc.oneof(fc.string({ unit: anyPiece, maxLength: 8 }), fc.constantFrom('5', '8', '5.0', '0x5', ' 5', '1e3'), fraction, beyondInt32, ...others, ...nullIfRequired);
    default:
      return fc.oneof(unknownEnumValue(ENUM_VALUES[base]!), fc.integer(), fraction, ...others, ...nullIfRequired);
  }
}

const MISSING = Symbol('missing');
type WrongCase =
  | { kind: 'field'; field: Field; value: unknown; base: Input; asLiteral: boolean }
  | { kind: 'unknown-field'; key: string; value: unknown; base: Input; asLiteral: boolean }
  | { kind: 'input'; value: unknown; asLiteral: boolean }
  | { kind: 'no-variables' };

const wrongTypes: fc.Arbitrary<WrongCase> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('field' as const), field: fc.constantFrom(...(Object.keys(FIELD_TYPES) as Field[])), base: validInput, asLiteral: fc.boolean() }).chain((c) => wrongValue(FIELD_TYPES[c.field]).map((value) => ({ ...c, value }))) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('field' as const), field: fc.constant('prompt' as Field), value: fc.constant(MISSING), base: validInput, asLiteral: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('unknown-field' as const),
      key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'video_url', 'Prompt', 'negative_prompt', 'motion_mode', 'extra'), fc.string({ maxLength: 12 })).filter((key) => !Object.hasOwn(FIELD_TYPES, key) && !Object.hasOwn(FIELD_TYPES, asName(key))),
      value: smallJson,
      base: validInput,
      asLiteral: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('input' as const), value: fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.boolean(), aList), asLiteral: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'no-variables' as const }) },
);

function wrongTypeBody(c: WrongCase): string {
  if (c.kind === 'no-variables') return JSON.stringify({ query: EXTEND_VIDEO, variables: {} });
  let input: unknown = c.kind === 'input' ? c.value : { ...c.base };
  if (c.kind === 'field') {
    const record = input as Input;
    if (c.value === MISSING) delete record[c.field];
    else record[c.field] = c.value;
  } else if (c.kind === 'unknown-field') {
    input = { ...(input as Input), [c.key]: c.value };
  }
  if (!c.asLiteral) return JSON.stringify({ query: EXTEND_VIDEO, variables: { input } });
  return JSON.stringify({ query: `mutation { extendVideo(input: ${literal(input)}) { __typename } }` });
}

// ---------------------------------------------------------------------------------------------
// Raw bodies
// ---------------------------------------------------------------------------------------------

const requestBody = (input: Input) => JSON.stringify({ query: EXTEND_VIDEO, variables: { input } });
const validRequestBody = validInput.map(requestBody);
const notJson = (text: string) => {
  for (const candidate of [text, text.replace(/^\ufeff/, '')]) {
    try {
      JSON.parse(candidate);
      return false;
    } catch {
      // not JSON, as wanted
    }
  }
  return true;
};
const malformedJson = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ maxLength: 200 }),
    // A valid extendVideo request, cut short anywhere.
    fc.tuple(validRequestBody, fc.nat()).map(([body, at]) => body.slice(0, at % body.length)),
    // A valid request with a character inserted or trailing garbage.
    fc.tuple(validRequestBody, fc.nat(), fc.constantFrom(...'{}[]",:\\\u0000'.split(''), "'", 'undefined', 'NaN')).map(([body, at, junk]) => {
      const i = at % (body.length + 1);
      return body.slice(0, i) + junk + body.slice(i);
    }),
  )
  .filter(notJson);

const nonObjectJson = fc.oneof(
  fc.jsonValue().filter((value) => value === null || typeof value !== 'object' || Array.isArray(value)),
  fc.array(validRequestBody.map((body) => JSON.parse(body) as unknown), { minLength: 1, maxLength: 3 }), // a batch, which is off
);

/** JSON objects that are no GraphQL request: no query string, or a broken query, variables, operationName or extensions. */
const notARequest = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).filter((body) => typeof body.query !== 'string'),
  fc.record({ query: fc.jsonValue().filter((value) => typeof value !== 'string'), variables: fc.constant({}) }),
  fc.record({
    query: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', '{', '}', 'mutation', 'query {', 'mutation { extendVideo }', '{ extendVideo(input: {}) { __typename } }')),
  }),
  fc.record({ query: fc.constant(EXTEND_VIDEO), variables: fc.oneof(fc.string(), fc.integer(), fc.boolean(), aList) }),
  fc.tuple(validInput, fc.oneof(fc.string({ minLength: 1 }).filter((name) => name !== 'ExtendVideo'), fc.integer(), fc.boolean(), aList, anObject)).map(([input, operationName]) => ({
    query: EXTEND_VIDEO,
    variables: { input },
    operationName,
  })),
  fc.tuple(validInput, fc.oneof(fc.string(), fc.integer(), fc.boolean(), aList)).map(([input, extensions]) => ({ query: EXTEND_VIDEO, variables: { input }, extensions })),
);

const UNSUPPORTED_TYPES = [
  null,
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/xml',
  'text/xml',
  'text/html',
  'application/octet-stream',
  'multipart/form-data',
  'multipart/form-data; boundary=',
  'multipart/form-data; boundary=----x',
  'multipart/mixed',
  'application/javascript',
  'text/json',
  'application/jsonp',
  'application/ld+json',
  'application/x-ndjson',
  'image/png',
  'video/mp4',
];
const unsupportedType = fc.oneof(
  fc.constantFrom(...UNSUPPORTED_TYPES),
  fc.stringMatching(/^[a-z]{1,12}\/[a-z0-9.+-]{1,20}$/).filter((type) => !/^(application\/(json|graphql\+json|graphql|x-www-form-urlencoded)|multipart\/form-data)$/.test(type)),
);

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

describe('extendVideo refuses input that breaks the contract (typed InvalidInputError)', () => {
  it('blank prompts: empty or made only of Unicode White_Space', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(blankPrompts), expectInvalidInput), { numRuns: 100 }));
  });

  it('text over its limit: prompt, negativePrompt and videoUrl over 2048 characters, idempotencyKey empty or over 255', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(tooLong(HUGE)), expectInvalidInput), { numRuns: 120 }));
  });

  it('seeds outside 1..999999 and durations other than 5 or 8', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(outOfRangeNumbers), expectInvalidInput), { numRuns: 150 }));
  });

  it('cross-field rules: FAST needs duration 5; Q1080P needs duration 5 and NORMAL', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(crossField), expectInvalidInput), { numRuns: 60 }));
  });

  it('exactly one of videoUrl and sourceGenerationId', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(sources), expectInvalidInput), { numRuns: 100 }));
  });

  it('videoUrl: other schemes, relative references, whitespace or control characters', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(badUrls), expectInvalidInput), { numRuns: 200 }));
  });

  it('videoUrl: http(s) with no host after "//", or no "//" at all', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(single(noAuthority), expectInvalidInput), { numRuns: 100 }));
  });

  it('several rules broken at once: every offending field is named', async () => {
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(broken(fc.array(anyBreaker, { minLength: 2, maxLength: 4 })), expectInvalidInput), { numRuns: 100 }));
  });

  it('text that cannot be stored or sent as given (NUL, lone surrogates) is a client error, not an internal one', async () => {
    // Otherwise valid inputs. PostgreSQL text cannot hold U+0000 and a lone surrogate is no Unicode
    // character (it has no UTF-8 form to send Segmind), so the only clear answer is to refuse the field.
    const poison = fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff');
    const poisoned = fc
      .tuple(validInput, fc.constantFrom('prompt', 'negativePrompt', 'idempotencyKey', 'videoUrl', 'sourceGenerationId'), poison, fc.nat())
      .map(([base, field, bad, at]) => {
        const input: Input = { ...base };
        const original = field === 'sourceGenerationId' ? 'R2VuZXJhdGlvbjox' : field === 'videoUrl' ? String(base.videoUrl) : String(base[field] ?? 'some text');
        const i = at % (original.length + 1);
        input[field] = original.slice(0, i) + bad + original.slice(i);
        if (field === 'sourceGenerationId') delete input.videoUrl;
        return printable({ input, field });
      });
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(poisoned, async ({ input, field }) => {
          tried.graphql++;
          const rows = await rowCount();
          const reply = await send({ key: await stack.newKey('bad-input'), body: JSON.stringify({ query: EXTEND_VIDEO, variables: { input } }) });
          const context = describeReply(reply);
          expect(reply.status, context).toBe(200);
          const result = (reply.json as ExtendVideoResponse | undefined)?.data?.extendVideo;
          // An ID that cannot exist may also be answered as not found.
          const accepted = field === 'sourceGenerationId' ? ['InvalidInputError', 'NotFoundError'] : ['InvalidInputError'];
          expect(accepted, context).toContain(result?.__typename);
          if (result?.__typename === 'InvalidInputError') expect(result.fields.map((f) => f.path.join('.')), context).toContain(`input.${field}`);
          expect(await rowCount(), 'a Generation row was written').toBe(rows);
        }),
        { numRuns: 40 },
      ),
    );
  });
});

describe('extendVideo refuses what the GraphQL type system rejects', () => {
  it('wrong types, unknown enum values, null or missing required values, unknown fields: as variables and as literals', async () => {
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(wrongTypes.map((c) => printable({ ...c })), (c) => expectGraphQLRejection(wrongTypeBody(c))),
        { numRuns: 300 },
      ),
    );
  });
});

describe('the /graphql endpoint refuses malformed HTTP requests with a 4xx', () => {
  it('bodies that are not JSON (random text, truncated or corrupted requests), an empty body, JSON that is not an object', async () => {
    const bodies = fc.oneof(malformedJson, nonObjectJson.map((value) => JSON.stringify(value)));
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/graphql+json');
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(bodies, contentType, (body, type) => expectRefused({ body, contentType: type })),
        { numRuns: 200, examples: ['', ' ', '[]', '42', '"x"', 'null', 'true', '[{"query":"{ __typename }"}]', '{"query":"{ __typ'].map((body): [string, string] => [body, 'application/json']) },
      ),
    );
  });

  it('JSON objects that are no valid GraphQL request', async () => {
    // Under the legacy application/json response type the GraphQL-over-HTTP spec lets a server
    // answer request errors with 200; with application/graphql-response+json it requires a 4xx.
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(notARequest.map((body) => printable(body as object)), (body) =>
          expectRefused({ body: JSON.stringify(body), accept: 'application/graphql-response+json' }),
        ),
        { numRuns: 150, examples: [[{}], [{ variables: {} }], [{ query: null }], [{ query: '' }]] },
      ),
    );
  });

  it('content types the endpoint does not take, or none, around a valid extendVideo request', async () => {
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(validRequestBody, unsupportedType, (body, type) => expectRefused({ body, contentType: type })),
        { numRuns: 120 },
      ),
    );
  });

  it('supported content types whose body does not match (form-urlencoded, application/graphql, multipart) around a valid extendVideo request', async () => {
    const types = fc.constantFrom('application/x-www-form-urlencoded', 'application/graphql', 'multipart/form-data; boundary=xyz');
    await expectNothingRecorded(() =>
      fc.assert(
        fc.asyncProperty(validRequestBody, types, (body, type) => expectRefused({ body, contentType: type, accept: 'application/graphql-response+json' })),
        { numRuns: 30 },
      ),
    );
  });

  it('a mutation over GET (or PUT, PATCH, DELETE) is refused', async () => {
    const request = fc.oneof(
      validInput.map((input) => ({ method: 'GET', search: `?${new URLSearchParams({ query: EXTEND_VIDEO, variables: JSON.stringify({ input }) })}` })),
      validInput.map((input) => ({ method: 'GET', search: `?${new URLSearchParams({ query: `mutation { extendVideo(input: ${literal(input)}) { __typename } }` })}` })),
      fc.tuple(fc.constantFrom('PUT', 'PATCH', 'DELETE'), validRequestBody).map(([method, body]) => ({ method, body })),
    );
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(request.map((r) => printable(r)), (r) => expectRefused(r)), { numRuns: 60 }));
  });

  it('malformed JSON in the variables or extensions of a GET query string or a form body is a 4xx', async () => {
    // An empty parameter counts as absent, so it is left out.
    const request = fc.tuple(fc.constantFrom('variables', 'extensions'), malformedJson.filter((bad) => bad !== ''), fc.boolean()).map(([param, bad, asForm]) => {
      const params = new URLSearchParams({ query: '{ __typename }', [param]: bad }).toString();
      return printable(asForm ? { method: 'POST', body: params, contentType: 'application/x-www-form-urlencoded' } : { method: 'GET', search: `?${params}` });
    });
    await expectNothingRecorded(() => fc.assert(fc.asyncProperty(request, (r) => expectRefused(r)), { numRuns: 40 }));
  });

  it('oversized bodies (2 MB and 20 MB queries or variables) are never a 5xx', async () => {
    const outcomes: string[] = [];
    await expectNothingRecorded(async () => {
      for (const megabytes of [2, 20]) {
        const filler = 'a'.repeat(megabytes * 1024 * 1024);
        const cases: [string, RawRequest][] = [
          ['query', { body: JSON.stringify({ query: `{ __typename } # ${filler}` }) }],
          ['variables', { body: JSON.stringify({ query: '{ __typename }', variables: { filler } }) }],
          ['extendVideo prompt', { body: requestBody({ videoUrl: 'https://videos.example/a.mp4', prompt: filler }) }],
          [
            'extendVideo prompt, streamed without Content-Length',
            {
              body: new ReadableStream<Uint8Array>({
                start(controller) {
                  controller.enqueue(new TextEncoder().encode(requestBody({ videoUrl: 'https://videos.example/a.mp4', prompt: filler })));
                  controller.close();
                },
              }),
            },
          ],
        ];
        for (const [name, request] of cases) {
          tried.http++;
          const rows = await rowCount();
          let status: number | string;
          try {
            const reply = await send(request);
            status = reply.status;
            // The other engineer is adding body-size limits at the same time: refusing (413/411) is
            // expected, but accepting is tolerated here as long as nothing is recorded and it is no 5xx.
            expect(reply.status, describeReply(reply)).toBeLessThan(500);
            expect((reply.json as ExtendVideoResponse | undefined)?.data?.extendVideo?.__typename, describeReply(reply)).not.toBe('ExtendVideoSuccess');
          } catch (error) {
            if ((error as { name?: string }).name === 'AssertionError') throw error;
            // Closing the connection is a refusal too; what matters is that the server goes on.
            status = `connection closed (${String((error as Error).cause ?? error)})`;
          }
          outcomes.push(`${megabytes} MB ${name}: ${status}`);
          expect(await rowCount(), 'a Generation row was written').toBe(rows);
          await expectStillServing();
        }
      }
    });
    // Observed when this was written: 413 for every Content-Length body, 411 for the streamed one.
    console.log(`bad-input: oversized bodies -> ${outcomes.join('; ')}`);
  });
});

// Last, because every accepted input starts a (simulated) generation and an upstream call.
describe('valid input is accepted', () => {
  it('random inputs that respect every rule get ExtendVideoSuccess and reach Segmind verbatim', async () => {
    await settle();
    const rowsBefore = await rowCount();
    const postsBefore = upstreamPosts();
    const accepted: { id: string; key: string; body: Record<string, unknown> }[] = [];

    await fc.assert(
      fc.asyncProperty(validInput.map((input) => printable(input)), async (input) => {
        tried.graphql++;
        // A key per case: the per-key rate and concurrency limits are not what is tested here.
        const key = await stack.newKey('bad-input valid case');
        const rows = await rowCount();
        const result = await stack.execute(ExtendVideoDocument, { input: input as unknown as ExtendVideoInput }, key);
        const context = abbreviate(result);
        expect(result.errors, context).toBeUndefined();
        const extend = result.data?.extendVideo;
        expect(extend?.__typename, context).toBe('ExtendVideoSuccess');
        if (extend?.__typename !== 'ExtendVideoSuccess') return;
        const duration = (input.duration as number | undefined) ?? 5;
        const quality = (input.quality as Quality | undefined) ?? 'Q540P';
        const motionMode = (input.motionMode as Motion | undefined) ?? 'NORMAL';
        expect(extend.generation).toMatchObject({
          status: 'QUEUED',
          prompt: input.prompt,
          negativePrompt: input.negativePrompt ?? null,
          duration,
          quality,
          motionMode,
          seed: input.seed ?? null,
          style: input.style ?? null,
          idempotencyKey: input.idempotencyKey ?? null,
          sourceVideoUrl: input.videoUrl,
        });
        expect(await rowCount()).toBe(rows + 1);
        accepted.push({
          id: extend.generation.id,
          key,
          body: {
            video_url: input.videoUrl,
            prompt: input.prompt,
            ...(input.negativePrompt != null && { negative_prompt: input.negativePrompt }),
            duration,
            quality: UPSTREAM_QUALITY[quality],
            motion_mode: motionMode.toLowerCase(),
            ...(input.seed != null && { seed: input.seed }),
            ...(input.style != null && { style: UPSTREAM_STYLE[input.style as keyof typeof UPSTREAM_STYLE] }),
          },
        });
      }),
      { numRuns: 15 },
    );

    const finished = await Promise.all(accepted.map(({ id, key }) => waitForTerminal(stack, id, key)));
    expect(finished.map((generation) => generation.status)).toEqual(accepted.map(() => 'SUCCEEDED'));
    expect(await rowCount()).toBe(rowsBefore + accepted.length);
    // Exactly one submission per accepted input, carrying exactly its parameters.
    const canonical = (body: unknown) => JSON.stringify(body, Object.keys(body as object).sort());
    const sent = stack.segmind.requests.filter((request) => request.method === 'POST').slice(postsBefore);
    expect(sent.map((request) => request.path)).toEqual(accepted.map(() => '/v2/pixverse-5-extend'));
    expect(sent.map((request) => canonical(request.body)).sort()).toEqual(accepted.map(({ body }) => canonical(body)).sort());
  });
});

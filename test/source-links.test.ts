import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../src/auth/api-keys.ts';
import { loadConfig } from '../src/config.ts';
import { presignSeconds, sourceReachProblem } from '../src/generations/source-links.ts';
import { hostScope } from '../src/net/host-scope.ts';
import { S3VideoStorage } from '../src/storage/s3.ts';
import { ExtendUploadedVideoDocument, ExtendVideoDocument } from './gql/graphql.ts';
import { guardOutbound, type OutboundGuard } from './helpers/outbound-guard.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

describe('hostScope', () => {
  it.each([
    ['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['[::1]', 'loopback'], ['::ffff:127.0.0.1', 'loopback'],
    ['localhost', 'loopback'], ['LOCALHOST.', 'loopback'], ['app.localhost', 'loopback'],
    ['10.1.2.3', 'private'], ['172.20.0.1', 'private'], ['192.168.1.5', 'private'], ['100.64.0.1', 'private'], ['fd12::1', 'private'],
    ['::ffff:192.168.0.1', 'private'], ['minio', 'private'], ['nas.home.arpa', 'private'], ['db.internal', 'private'],
    ['169.254.169.254', 'link-local'], ['fe80::1%eth0', 'link-local'], ['laptop.local', 'link-local'],
    ['0.0.0.0', 'reserved'], ['::', 'reserved'], ['203.0.113.9', 'reserved'], ['255.255.255.255', 'reserved'],
    ['api.segmind.com', 'public'], ['8.8.8.8', 'public'], ['2606:4700::1111', 'public'], ['[2606:4700::1111]', 'public'],
  ])('%s is %s', (host, scope) => {
    expect(hostScope(host)).toBe(scope);
  });
});

describe('how long a presigned source URL lasts', () => {
  it('is the generation deadline, never under an hour, capped at the 7 days SigV4 allows', () => {
    expect(presignSeconds(30 * 60_000)).toEqual({ seconds: 3600, capped: false });
    expect(presignSeconds(2 * 3600_000 + 1)).toEqual({ seconds: 7201, capped: false });
    expect(presignSeconds(7 * 86_400_000)).toEqual({ seconds: 604_800, capped: false });
    expect(presignSeconds(30 * 86_400_000)).toEqual({ seconds: 604_800, capped: true });
  });

  it('the S3 storage refuses a lifetime S3 would refuse', async () => {
    const storage = new S3VideoStorage({ bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 's' }, tempDir: tmpdir() });
    try {
      await expect(storage.presignedGetUrl('x.mp4', 604_801)).rejects.toThrow(RangeError);
      await expect(storage.presignedGetUrl('x.mp4', 0)).rejects.toThrow(RangeError);
      await expect(storage.presignedGetUrl('../x.mp4', 3600)).rejects.toThrow(/invalid storage key/);
      expect(new URL(await storage.presignedGetUrl('x.mp4', 604_800)).searchParams.get('X-Amz-Expires')).toBe('604800');
    } finally {
      storage.close();
    }
  });
});

describe('sourceReachProblem', () => {
  const local = { s3: null };
  const s3 = (endpoint?: string) => ({ s3: { ...loadConfig({ S3_BUCKET: 'videos' }).s3!, endpoint } });

  it('applies only when Segmind is on the internet and our source URLs are not', () => {
    expect(sourceReachProblem(local, 'https://api.segmind.com', 'http://localhost:4000')?.detail).toMatch(/PUBLIC_BASE_URL \(http:\/\/localhost:4000\) is a loopback address/);
    expect(sourceReachProblem(local, 'https://api.segmind.com', 'http://192.168.1.20:4000')?.detail).toMatch(/is a private address/);
    expect(sourceReachProblem(local, 'https://api.segmind.com', 'http://[fe80::1]:4000')?.detail).toMatch(/is a link-local address/);
    expect(sourceReachProblem(local, 'https://api.segmind.com', 'https://extendql.example.com')).toBeNull();
    // A Segmind on loopback or a private network (the simulator, a fake, a proxy) reaches us.
    expect(sourceReachProblem(local, 'http://127.0.0.1:9999', 'http://localhost:4000')).toBeNull();
    expect(sourceReachProblem(local, 'http://10.0.0.5:8080', 'http://localhost:4000')).toBeNull();
    // With S3, Segmind fetches from the bucket's endpoint: AWS itself, or one it can reach.
    expect(sourceReachProblem(s3(), 'https://api.segmind.com', 'http://localhost:4000')).toBeNull();
    expect(sourceReachProblem(s3('https://account.r2.cloudflarestorage.com'), 'https://api.segmind.com', 'http://localhost:4000')).toBeNull();
    const minio = sourceReachProblem(s3('http://user:pw@minio:9000'), 'https://api.segmind.com', 'https://extendql.example.com');
    expect(minio?.detail).toMatch(/S3_ENDPOINT \(http:\/\/minio:9000\) is a private address/);
    expect(minio?.message).toMatch(/S3_ENDPOINT/);
    expect(JSON.stringify(minio)).not.toContain('pw');
  });

  it('tells clients the fix without our addresses', () => {
    const problem = sourceReachProblem(local, 'https://api.segmind.com', 'http://192.168.1.20:4000')!;
    expect(problem.message).toMatch(/PUBLIC_BASE_URL to a public origin/);
    expect(problem.message).toMatch(/S3 storage/);
    expect(problem.message).not.toContain('192.168');
  });
});

/** Encodes a small test video with ffmpeg (the same binary the simulator uses). */
function encodeTestVideo(out: string): Promise<void> {
  const args = ['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=10', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-f', 'mp4'];
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegInstaller.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args, out], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
}

/** A real 320x180, 2 s MP4 that passes the upload checks. */
let mp4: Buffer;
beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'extendql-source-links-'));
  try {
    await encodeTestVideo(join(dir, 'source.mp4'));
    mp4 = await readFile(join(dir, 'source.mp4'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
const mp4File = () => new File([new Uint8Array(mp4)], 'source.mp4', { type: 'video/mp4' });

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const rfc3986 = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The SigV4 query-string signature of a presigned GET, recomputed from the secret as AWS
 * documents it ("Authenticating Requests: Using Query Parameters"). s3rver does not check SigV4
 * signatures, so the test does.
 */
function expectedSignature(url: URL, secret: string): string {
  const query = [...url.searchParams].filter(([name]) => name !== 'X-Amz-Signature').map(([name, value]) => `${rfc3986(name)}=${rfc3986(value)}`).sort().join('&');
  const canonical = ['GET', url.pathname, query, `host:${url.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const [, date, region, service] = url.searchParams.get('X-Amz-Credential')!.split('/') as [string, string, string, string];
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', url.searchParams.get('X-Amz-Date'), scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  return createHmac('sha256', key).update(toSign).digest('hex');
}

/** 20261127T134000Z → Date */
const amzDate = (text: string) => new Date(text.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));

describe('with S3 storage, Segmind fetches chained and uploaded sources through presigned URLs', () => {
  const DEADLINE_MS = 2 * 3600_000;
  let s3: S3Server;
  let stack: Stack;

  beforeAll(async () => {
    s3 = await startS3Server();
    // The fake Segmind GETs every video_url and fails the job when it cannot.
    stack = await startStack({
      env: { ...s3.env, GENERATION_DEADLINE_MS: String(DEADLINE_MS) },
      segmind: { fetchSources: true },
      secrets: { 'the S3 secret access key': s3.secretAccessKey },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await s3?.close();
  });

  /** The presigned URL Segmind was given for a generation, checked against the object it names. */
  async function expectPresigned(generationId: string, objectKey: string) {
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id: decodeGlobalID(generationId).id } });
    const sent = submissions(stack).map((r) => (r.body as { video_url: string }).video_url);
    const url = new URL(stack.segmind.fetchedSources.find((source) => new URL(source).pathname === `/${s3.bucket}/${objectKey}`)!);
    // The very URL submitted, and the one the fake fetched (the job succeeded, so it got the MP4).
    expect(sent).toContain(url.toString());
    expect(url.origin).toBe(s3.endpoint);
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^${s3.accessKeyId}/\\d{8}/us-east-1/s3/aws4_request$`));
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    // Valid as long as the generation may run (GENERATION_DEADLINE_MS), and never under an hour.
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBe(DEADLINE_MS / 1000);
    // Signed at submit time, not when the request was accepted.
    expect(amzDate(url.searchParams.get('X-Amz-Date')!).getTime()).toBeGreaterThanOrEqual(Math.floor(row.createdAt.getTime() / 1000) * 1000);
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, s3.secretAccessKey));
    // What the fake fetched is the object's bytes.
    const object = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: objectKey }));
    expect(object.ContentLength).toBeGreaterThan(0);
    // The recorded and exposed sourceVideoUrl stays this server's own URL, without credentials.
    expect(row.sourceVideoUrl).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]+\\.mp4$`));
    return url;
  }

  it('an uploaded video, then a generation chained from it, both SUCCEED', async () => {
    const upload = await stack.execute(ExtendUploadedVideoDocument, { video: mp4File(), prompt: 'the camera pans left' });
    const first = upload.data!.extendVideo;
    if (first.__typename !== 'ExtendVideoSuccess') throw new Error(JSON.stringify(first));
    expect(first.generation.sourceVideoUrl).not.toContain('X-Amz');
    expect((await waitForTerminal(stack, first.generation.id)).status).toBe('SUCCEEDED');
    const uploadRow = await stack.app.db.generation.findUniqueOrThrow({ where: { id: decodeGlobalID(first.generation.id).id }, include: { sourceUpload: true } });
    await expectPresigned(first.generation.id, uploadRow.sourceUpload!.storageKey);

    const chained = await stack.execute(ExtendVideoDocument, { input: { sourceGenerationId: first.generation.id, prompt: 'and further' } });
    const second = chained.data!.extendVideo;
    if (second.__typename !== 'ExtendVideoSuccess') throw new Error(JSON.stringify(second));
    expect(second.generation.sourceVideoUrl).not.toContain('X-Amz');
    const done = await waitForTerminal(stack, second.generation.id);
    expect(done.status).toBe('SUCCEEDED');
    const video = await stack.app.db.video.findUniqueOrThrow({ where: { generationId: decodeGlobalID(first.generation.id).id } });
    await expectPresigned(second.generation.id, video.storageKey);
    // The client's view of the source still works, through this server.
    expect((await fetch(done.sourceVideoUrl)).status).toBe(200);

    // s3rver serves anonymous GETs and does not verify SigV4 signatures (see its authentication
    // middleware), so it cannot show that the bucket refuses an unsigned GET; the signature is
    // checked above instead. No presigned URL reached a client or a log line.
    expect(stack.logs.join('\n')).not.toContain('X-Amz-Signature');
  });
});

describe('without S3, when Segmind is on the internet and PUBLIC_BASE_URL is not', () => {
  let stack: Stack;
  let guard: OutboundGuard;
  let sourceId: string;

  beforeAll(async () => {
    guard = guardOutbound();
    // PUBLIC_BASE_URL unset: it is the listening address, http://127.0.0.1:<port>. No worker, so
    // an accepted generation would never be submitted.
    stack = await startStack({ env: { SEGMIND_BASE_URL: 'https://api.segmind.com' }, worker: false });
    const db = stack.app.db;
    const apiKey = await db.apiKey.findUniqueOrThrow({ where: { keyHash: hashApiKey(stack.key) } });
    const id = uuidv7();
    const videoId = randomBytes(16).toString('base64url');
    await db.generation.create({
      data: {
        id, apiKeyId: apiKey.id, status: 'SUCCEEDED', prompt: 'the source', duration: 5, quality: 'Q540P', motionMode: 'NORMAL',
        sourceVideoUrl: 'https://videos.example/a.mp4', paramsHash: randomBytes(32).toString('hex'), plannedVideoId: videoId,
        upstreamStatus: 'COMPLETED', completedAt: new Date(),
      },
    });
    await db.video.create({
      data: { id: videoId, generationId: id, storageKey: `${videoId}.mp4`, contentType: 'video/mp4', byteSize: 1000, width: 960, height: 540, durationSeconds: 5, sha256: randomBytes(32).toString('hex') },
    });
    sourceId = encodeGlobalID('Generation', id);
  });

  afterAll(async () => {
    await stack?.close();
    guard?.stop();
  });

  const recorded = async () => {
    const db = stack.app.db;
    const [generations, uploads, jobs] = await Promise.all([
      db.generation.count(),
      db.sourceUpload.count(),
      db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pgboss.job WHERE name = 'extend-video'`,
    ]);
    return { generations, uploads, jobs: Number(jobs[0]!.n) };
  };

  it('warns at start, naming the fix', () => {
    const warning = stack.logs.map((line) => JSON.parse(line) as { level: number; msg: string }).find((line) => line.msg.startsWith('PUBLIC_BASE_URL'));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toContain(`PUBLIC_BASE_URL (${stack.app.publicBaseUrl}) is a loopback address that Segmind (https://api.segmind.com) cannot fetch from`);
    expect(warning?.msg).toMatch(/Set PUBLIC_BASE_URL to a public origin .* or configure S3 storage \(S3_BUCKET\)/);
  });

  it.each([
    ['a chained', 'sourceGenerationId'],
    ['an uploaded', 'video'],
  ] as const)('refuses %s extendVideo before anything is recorded, spent or sent', async (_kind, field) => {
    const before = await recorded();
    const result =
      field === 'video'
        ? await stack.execute(ExtendUploadedVideoDocument, { video: mp4File(), prompt: 'go on' })
        : await stack.execute(ExtendVideoDocument, { input: { sourceGenerationId: sourceId, prompt: 'go on' } });
    expect(result.errors).toBeUndefined();
    const answer = result.data!.extendVideo;
    if (answer.__typename !== 'InvalidInputError') throw new Error(JSON.stringify(answer));
    expect(answer.fields).toEqual([{ path: ['input', field], message: expect.stringMatching(/set PUBLIC_BASE_URL to a public origin .* or configure S3 storage/) }]);
    expect(answer.fields[0]!.message).not.toContain('127.0.0.1');
    expect(await recorded()).toEqual(before);
    // Nothing went anywhere outside this machine: no public name was even looked up (the credit
    // balance was not read), and no connection went to a public address.
    expect(guard.refusedLookups).toEqual([]);
    expect(guard.publicAttempts()).toEqual([]);
  });

  it('still accepts a plain videoUrl', async () => {
    const before = await recorded();
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/clip.mp4', prompt: 'go on' } });
    expect(result.data!.extendVideo.__typename).toBe('ExtendVideoSuccess');
    expect(await recorded()).toMatchObject({ generations: before.generations + 1, jobs: before.jobs + 1 });
    // Accepting reads the credit balance from Segmind; the guard stopped that lookup in this process.
    expect(new Set(guard.refusedLookups)).toEqual(new Set(['api.segmind.com']));
    expect(guard.publicAttempts()).toEqual([]);
  });
});

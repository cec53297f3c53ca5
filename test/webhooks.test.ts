import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress } from '../src/net/address-policy.ts';
import { BLOCKED_BY_POLICY } from '../src/webhooks/delivery.ts';
import { signWebhook, verifyWebhookSignature } from '../src/webhooks/signature.ts';
import { CancelGenerationDocument, ExtendVideoDocument, WebhookAttemptsDocument, WebhookSigningSecretDocument } from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver on 127.0.0.1: records every POST and answers with the next scripted status (then 200). */
class Receiver {
  readonly received = new Map<string, Received[]>();
  private readonly scripts = new Map<string, number[]>();
  private server!: Server;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.set(path, [...(this.received.get(path) ?? []), { headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() }]);
        const status = this.scripts.get(path)?.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'thanks' : 'try again later');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A fresh path that answers with these statuses first. */
  endpoint(name: string, statuses: number[] = []) {
    this.scripts.set(`/${name}`, [...statuses]);
    return `${this.url}/${name}`;
  }

  got(name: string) {
    return this.received.get(`/${name}`) ?? [];
  }

  async waitFor(name: string, count: number, timeoutMs = 30_000) {
    const until = Date.now() + timeoutMs;
    while (this.got(name).length < count) {
      if (Date.now() > until) throw new Error(`${name}: ${this.got(name).length} of ${count} deliveries arrived`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.got(name);
  }

  close() {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let stack: Stack;
let receiver: Receiver;
let secret: string;

beforeAll(async () => {
  receiver = new Receiver();
  await receiver.start();
  stack = await startStack({
    // The receivers here run on 127.0.0.1, which the network policy refuses unless opted in.
    env: { WEBHOOK_MAX_ATTEMPTS: '3', WEBHOOK_RETRY_DELAY_SECONDS: '1', WEBHOOK_TIMEOUT_MS: '2000', SWEEP_INTERVAL_MS: '500', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' },
  });
  const result = await stack.execute(WebhookSigningSecretDocument, {});
  secret = result.data!.webhookSigningSecret;
  expect(secret).toMatch(/^whsec_[0-9a-f]{64}$/);
});

afterAll(async () => {
  await stack?.close();
  await receiver?.close();
});

async function extend(callbackUrl: string, extra: Record<string, unknown> = {}) {
  const result = await stack.execute(ExtendVideoDocument, {
    input: { videoUrl: 'https://example.com/source.mp4', prompt: 'the waves roll in', callbackUrl, ...extra },
  });
  const answer = result.data!.extendVideo;
  if (answer.__typename !== 'ExtendVideoSuccess') throw new Error(`not accepted: ${JSON.stringify(answer)}`);
  return answer.generation;
}

async function attempts(id: string) {
  const result = await stack.execute(WebhookAttemptsDocument, { id });
  return result.data!.generation!;
}

function parse(delivery: Received) {
  return JSON.parse(delivery.body) as { type: string; generation: Record<string, unknown> & { id: string; status: string; error: { code: string } | null; video: { url: string } | null } };
}

describe('webhooks', () => {
  it('POSTs the generation as signed JSON when it succeeds, and records the attempt', async () => {
    const generation = await extend(receiver.endpoint('ok'));
    const done = await waitForTerminal(stack, generation.id);
    expect(done.status).toBe('SUCCEEDED');
    const [delivery] = await receiver.waitFor('ok', 1);

    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(delivery!.headers['extendql-event']).toBe('generation.succeeded');
    expect(delivery!.headers['extendql-attempt']).toBe('1');
    expect(verifyWebhookSignature(secret, delivery!.headers['extendql-signature'] as string, delivery!.body)).toBe(true);
    // The signature covers the body and the timestamp: anything else fails.
    expect(verifyWebhookSignature(secret, delivery!.headers['extendql-signature'] as string, delivery!.body.replace('SUCCEEDED', 'FAILED'))).toBe(false);
    expect(verifyWebhookSignature('whsec_other', delivery!.headers['extendql-signature'] as string, delivery!.body)).toBe(false);

    const payload = parse(delivery!);
    expect(payload.type).toBe('generation.succeeded');
    // The same generation a client reads through GraphQL.
    expect(payload.generation).toMatchObject({
      id: done.id,
      status: 'SUCCEEDED',
      prompt: done.prompt,
      duration: done.duration,
      quality: done.quality,
      motionMode: done.motionMode,
      sourceVideoUrl: done.sourceVideoUrl,
      video: done.video,
      error: null,
      createdAt: done.createdAt,
      completedAt: done.completedAt,
    });

    await expect.poll(async () => (await attempts(generation.id)).webhookAttempts).toMatchObject([
      { attempt: 1, event: 'generation.succeeded', url: receiver.endpoint('ok'), statusCode: 200, error: null, succeeded: true },
    ]);
    expect((await attempts(generation.id)).callbackUrl).toBe(receiver.endpoint('ok'));
  });

  it('retries with backoff until the receiver takes it; every attempt is recorded and freshly signed', async () => {
    const generation = await extend(receiver.endpoint('flaky', [500, 503]));
    const deliveries = await receiver.waitFor('flaky', 3);
    expect(deliveries.map((d) => d.headers['extendql-attempt'])).toEqual(['1', '2', '3']);
    // One delivery id across retries, so a receiver can drop duplicates.
    expect(new Set(deliveries.map((d) => d.headers['extendql-delivery'])).size).toBe(1);
    for (const d of deliveries) expect(verifyWebhookSignature(secret, d.headers['extendql-signature'] as string, d.body)).toBe(true);
    // Backoff: the second wait is longer than the first (1 s, then 2 s).
    const gaps = [deliveries[1]!.at - deliveries[0]!.at, deliveries[2]!.at - deliveries[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(900);
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);

    await expect.poll(async () => (await attempts(generation.id)).webhookAttempts.map((a) => [a.attempt, a.statusCode, a.succeeded])).toEqual([
      [1, 500, false],
      [2, 503, false],
      [3, 200, true],
    ]);
    const [first] = (await attempts(generation.id)).webhookAttempts;
    expect(first!.error).toBe('receiver answered HTTP 500');
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS, with each failure queryable', async () => {
    const generation = await extend(receiver.endpoint('down', [500, 500, 500, 500, 500]));
    await receiver.waitFor('down', 3);
    // Past the next backoff step: no fourth try comes.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(receiver.got('down')).toHaveLength(3);
    const recorded = (await attempts(generation.id)).webhookAttempts;
    expect(recorded.map((a) => [a.attempt, a.statusCode, a.succeeded])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 500, false],
    ]);
  });

  it('records receivers that cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/gone`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const generation = await extend(url);
    await expect
      .poll(async () => (await attempts(generation.id)).webhookAttempts.length, { timeout: 20_000 })
      .toBe(3);
    const recorded = (await attempts(generation.id)).webhookAttempts;
    expect(recorded.every((a) => a.statusCode === null && !a.succeeded && /ECONNREFUSED/.test(a.error ?? ''))).toBe(true);
  });

  it('announces failures and cancellations too', async () => {
    stack.segmind.faults.inject('submit', { kind: 'http', status: 400, body: JSON.stringify({ error: 'bad video' }) });
    const failed = await extend(receiver.endpoint('failed'));
    const [failure] = await receiver.waitFor('failed', 1);
    expect(failure!.headers['extendql-event']).toBe('generation.failed');
    expect(parse(failure!).generation).toMatchObject({ id: failed.id, status: 'FAILED', error: { code: expect.any(String) }, video: null });

    stack.segmind.faults.inject('submit', { kind: 'delay', ms: 1500 });
    const canceled = await extend(receiver.endpoint('canceled'));
    const cancel = await stack.execute(CancelGenerationDocument, { id: canceled.id });
    expect(cancel.data!.cancelGeneration.__typename).toBe('CancelGenerationSuccess');
    const [cancellation] = await receiver.waitFor('canceled', 1);
    expect(parse(cancellation!)).toMatchObject({ type: 'generation.canceled', generation: { id: canceled.id, status: 'CANCELED' } });
  });

  it('a delivery that was never scheduled (the process stopped first) is sent by the sweep', async () => {
    const generation = await extend(receiver.endpoint('swept'));
    await receiver.waitFor('swept', 1);
    // As if the process had died between ending the generation and scheduling its webhook.
    const id = decodeGlobalID(generation.id).id;
    await stack.app.db.generation.update({ where: { id }, data: { webhookScheduledAt: null, completedAt: new Date(Date.now() - 60_000) } });
    const deliveries = await receiver.waitFor('swept', 2);
    expect(deliveries[1]!.headers['extendql-delivery']).toBe(deliveries[0]!.headers['extendql-delivery']);
    expect(deliveries[1]!.headers['extendql-attempt']).toBe('2');
    expect((await stack.app.db.generation.findUniqueOrThrow({ where: { id } })).webhookScheduledAt).not.toBeNull();
  });

  it('without a callbackUrl nothing is sent', async () => {
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://example.com/source.mp4', prompt: 'quiet' } });
    const answer = result.data!.extendVideo;
    if (answer.__typename !== 'ExtendVideoSuccess') throw new Error('not accepted');
    await waitForTerminal(stack, answer.generation.id);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await attempts(answer.generation.id)).webhookAttempts).toEqual([]);
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id: decodeGlobalID(answer.generation.id).id } });
    expect(row.webhookScheduledAt).toBeNull();
  });

  it('callbackUrl follows the URL rules: absolute http(s) only', async () => {
    const before = await stack.app.db.generation.count();
    for (const callbackUrl of ['ftp://example.com/hook', '/relative/hook', 'http:example.com', 'https://exa mple.com/']) {
      const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://example.com/source.mp4', prompt: 'p', callbackUrl } });
      const answer = result.data!.extendVideo;
      expect(answer.__typename).toBe('InvalidInputError');
      if (answer.__typename === 'InvalidInputError') expect(answer.fields).toEqual([{ path: ['input', 'callbackUrl'], message: 'must be an absolute http or https URL' }]);
    }
    expect(await stack.app.db.generation.count()).toBe(before);
  });

  it('signatures expire: a delivery replayed after the tolerance fails verification', () => {
    const body = JSON.stringify({ type: 'generation.succeeded' });
    const sentAt = 1_800_000_000;
    const header = signWebhook(secret, body, sentAt);
    expect(verifyWebhookSignature(secret, header, body, { now: sentAt + 299 })).toBe(true);
    expect(verifyWebhookSignature(secret, header, body, { now: sentAt + 301 })).toBe(false);
    expect(verifyWebhookSignature(secret, 'v1=deadbeef', body, { now: sentAt })).toBe(false);
    expect(verifyWebhookSignature(secret, undefined, body)).toBe(false);
  });
});

describe('webhooks without WEBHOOK_ALLOW_PRIVATE_NETWORKS: only public destinations', () => {
  let guarded: Stack;

  beforeAll(async () => {
    guarded = await startStack({ env: { WEBHOOK_MAX_ATTEMPTS: '3', WEBHOOK_RETRY_DELAY_SECONDS: '1', WEBHOOK_TIMEOUT_MS: '2000' } });
  });

  afterAll(async () => {
    await guarded?.close();
  });

  it('refuses callbackUrls that are, or resolve to, internal addresses, before anything is recorded or spent', async () => {
    const port = new URL(receiver.url).port;
    const internal = [
      `http://127.0.0.1:${port}/refused`,
      `http://localhost:${port}/refused`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/hook',
      'http://172.16.5.4/hook',
      'http://192.168.1.1/hook',
      'http://100.64.0.1/hook',
      'http://0.0.0.0/hook',
      'http://0x7f.1/hook',
      `http://[::1]:${port}/refused`,
      `http://[::ffff:127.0.0.1]:${port}/refused`,
      `http://[::ffff:7f00:1]:${port}/refused`,
      'http://[fd00::1]/hook',
      'http://[fe80::1]/hook',
      'https://[::]/hook',
    ];
    const generations = await guarded.app.db.generation.count();
    const submitted = submissions(guarded).length;
    for (const callbackUrl of internal) {
      const result = await guarded.execute(ExtendVideoDocument, { input: { videoUrl: 'https://example.com/source.mp4', prompt: 'p', callbackUrl } });
      const answer = result.data!.extendVideo;
      expect(answer.__typename, callbackUrl).toBe('InvalidInputError');
      if (answer.__typename === 'InvalidInputError') {
        expect(answer.fields, callbackUrl).toEqual([{ path: ['input', 'callbackUrl'], message: expect.stringMatching(/^must point to a public internet address/) }]);
      }
    }
    expect(await guarded.app.db.generation.count()).toBe(generations);
    expect(submissions(guarded).length).toBe(submitted);
    expect(receiver.got('refused')).toEqual([]);
  });

  it('checks the address again when it connects: a destination that now resolves to loopback is blocked, recorded as such and not retried', async () => {
    const apiKey = await guarded.app.db.apiKey.findFirstOrThrow();
    const port = new URL(receiver.url).port;
    // As if these URLs had pointed to public addresses when the generations were accepted, and
    // their names had been rebound to 127.0.0.1 since (or rows recorded while the opt-in was on).
    const destinations = { rebound: `http://localhost:${port}/rebound`, literal: `http://127.0.0.1:${port}/rebound-literal` };
    for (const [name, callbackUrl] of Object.entries(destinations)) {
      const id = uuidv7();
      await guarded.app.db.generation.create({
        data: {
          id,
          apiKeyId: apiKey.id,
          status: 'FAILED',
          prompt: 'p',
          duration: 5,
          quality: 'Q540P',
          motionMode: 'NORMAL',
          sourceVideoUrl: 'https://example.com/source.mp4',
          callbackUrl,
          paramsHash: 'x',
          plannedVideoId: randomBytes(16).toString('base64url'),
          errorCode: 'UPSTREAM_REJECTED',
          completedAt: new Date(),
        },
      });
      await guarded.app.queue.enqueueWebhook(id);
      const globalId = encodeGlobalID('Generation', id);
      const read = async () => (await guarded.execute(WebhookAttemptsDocument, { id: globalId })).data!.generation!.webhookAttempts;
      await expect.poll(read, { timeout: 20_000 }).toHaveLength(1);
      // Past the first two retry delays (1 s, 2 s): a blocked destination is not tried again.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      const recorded = await read();
      expect(recorded, name).toMatchObject([{ attempt: 1, url: callbackUrl, statusCode: null, error: BLOCKED_BY_POLICY, succeeded: false }]);
    }
    expect(receiver.got('rebound')).toEqual([]);
    expect(receiver.got('rebound-literal')).toEqual([]);
  });
});

describe('the network policy for webhook destinations', () => {
  it('allows public addresses only, including IPv6 forms that carry an internal IPv4 address', () => {
    const internal = [
      '127.0.0.1', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '255.255.255.255',
      '224.0.0.1', '192.0.2.1', '198.51.100.1', '203.0.113.1', '198.18.0.1', '240.0.0.1',
      '::', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::127.0.0.1', 'fd00::1', 'fc00::1', 'fe80::1', 'fe80::1%eth0', 'ff02::1',
      '2001:db8::1', '64:ff9b::a00:1', '2002:7f00:1::1', '100::1', 'not-an-address',
    ];
    const external = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'];
    expect(internal.filter((address) => isPublicAddress(address))).toEqual([]);
    expect(external.filter((address) => !isPublicAddress(address))).toEqual([]);
  });
});

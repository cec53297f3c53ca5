import type { Dispatcher } from 'undici';
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../db/client.ts';
import type { Generation, Video } from '../generated/prisma/client.ts';
import { publicCost, publicError, publicVideo } from '../generations/public-view.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { Logger } from '../logger.ts';
import { hostIsAllowed, hostOf, isBlockedAddressError, publicOnlyConnector } from '../net/address-policy.ts';
import { deadline } from '../net/deadline.ts';
import { loadUndici } from '../net/undici.ts';
import { SIGNATURE_HEADER, signWebhook } from './signature.ts';

export interface WebhookDeps {
  db: Db;
  queue: JobQueue;
  logger: Logger;
  timeoutMs: number;
  /** Whether callbackUrls may reach loopback, private and other internal addresses (tests, local setups). */
  allowPrivateNetworks: boolean;
  /** The id clients know a generation by (its GraphQL global ID). */
  publicId(generationId: string): string;
  videoUrl(videoId: string): string;
}

/** The generation as the webhook's JSON: the same field names as the GraphQL Generation type. */
export function generationPayload(generation: Generation & { video: Video | null }, deps: Pick<WebhookDeps, 'publicId' | 'videoUrl'>) {
  const { video } = generation;
  return {
    id: deps.publicId(generation.id),
    status: generation.status,
    prompt: generation.prompt,
    negativePrompt: generation.negativePrompt,
    duration: generation.duration,
    quality: generation.quality,
    motionMode: generation.motionMode,
    seed: generation.seed,
    style: generation.style,
    idempotencyKey: generation.idempotencyKey,
    sourceVideoUrl: generation.sourceVideoUrl,
    source: generation.sourceId ? { id: deps.publicId(generation.sourceId) } : null,
    upstreamStatus: generation.upstreamStatus,
    cost: publicCost(generation),
    error: publicError(generation),
    video: video ? publicVideo(video, deps.videoUrl(video.id)) : null,
    createdAt: generation.createdAt.toISOString(),
    startedAt: generation.startedAt?.toISOString() ?? null,
    completedAt: generation.completedAt?.toISOString() ?? null,
  };
}

export class WebhookDeliveryError extends Error {
  override readonly name = 'WebhookDeliveryError';
}

/** What an attempt refused by the network policy records: no address, port or resolver detail. */
export const BLOCKED_BY_POLICY = 'blocked by the network policy for webhooks';

/**
 * POSTs an ended generation to its callbackUrl, signed with its API key's secret. Scheduling
 * goes through the job queue, so deliveries survive restarts and are retried with backoff; every
 * attempt is recorded.
 */
export class WebhookDeliverer {
  /**
   * Unless private networks are allowed, every connection's address is checked as it is opened,
   * so a callbackUrl whose name later resolves elsewhere (DNS rebinding) still cannot reach an
   * internal address.
   */
  private agent: Promise<Dispatcher> | undefined;

  private readonly deps: WebhookDeps;
  constructor(deps: WebhookDeps) {
    this.deps = deps;
  }

  /** The deliveries' agent, made on the first delivery (undici is loaded then). */
  private dispatcher(): Promise<Dispatcher> {
    const timeoutMs = Math.min(this.deps.timeoutMs, 10_000);
    this.agent ??= loadUndici().then(async ({ Agent }) => new Agent({ connect: this.deps.allowPrivateNetworks ? { timeout: timeoutMs } : await publicOnlyConnector({ timeoutMs }) }));
    return this.agent;
  }

  /**
   * Why a callbackUrl may not be used, or null when it may: its host is, or resolves to, an
   * address that is not on the public internet. Checked before a generation is recorded; the
   * connection checks again when it delivers.
   */
  async destinationRefusal(callbackUrl: string): Promise<string | null> {
    if (this.deps.allowPrivateNetworks) return null;
    const allowed = await hostIsAllowed(hostOf(callbackUrl));
    return allowed ? null : 'must point to a public internet address: loopback, private, link-local and other internal addresses are refused';
  }

  async close(): Promise<void> {
    await (await this.agent)?.close();
  }

  /** Called after a generation ended; without a callbackUrl it does nothing. Failures are left to the sweep. */
  async generationEnded(generation: Pick<Generation, 'id' | 'callbackUrl'>): Promise<void> {
    if (!generation.callbackUrl) return;
    try {
      await this.schedule(generation.id);
    } catch (error) {
      this.deps.logger.warn({ err: (error as Error).message, generationId: generation.id }, 'webhook not scheduled yet; the sweep will');
    }
  }

  async schedule(generationId: string): Promise<void> {
    await this.deps.queue.enqueueWebhook(generationId);
    await this.deps.db.generation.update({ where: { id: generationId }, data: { webhookScheduledAt: new Date() } });
  }

  /** Schedules ended generations whose delivery was never scheduled (the process stopped in between). */
  async scheduleMissed(quietMs: number): Promise<number> {
    const rows = await this.deps.db.generation.findMany({
      where: { callbackUrl: { not: null }, webhookScheduledAt: null, completedAt: { lt: new Date(Date.now() - quietMs) } },
      select: { id: true },
      take: 500,
    });
    for (const row of rows) await this.schedule(row.id);
    return rows.length;
  }

  /** One attempt. Throws when the receiver did not take it, so the queue retries. */
  async deliver(generationId: string): Promise<void> {
    const generation = await this.deps.db.generation.findUnique({
      where: { id: generationId },
      include: { video: true, apiKey: { select: { webhookSecret: true } } },
    });
    if (!generation?.callbackUrl || !generation.completedAt) return;

    const previous = await this.deps.db.webhookAttempt.count({ where: { generationId } });
    const attempt = previous + 1;
    const event = `generation.${generation.status.toLowerCase()}`;
    const body = JSON.stringify({ type: event, generation: generationPayload(generation, this.deps) });
    const started = performance.now();
    let statusCode: number | null = null;
    let failure: string | null = null;
    let blocked = false;
    const limit = deadline(this.deps.timeoutMs);
    try {
      const { fetch } = await loadUndici();
      const response = await fetch(generation.callbackUrl, {
        dispatcher: await this.dispatcher(),
        method: 'POST',
        redirect: 'manual',
        signal: limit.signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'extendql-webhooks/1',
          'extendql-event': event,
          'extendql-delivery': generation.id,
          'extendql-attempt': String(attempt),
          [SIGNATURE_HEADER]: signWebhook(generation.apiKey.webhookSecret, body),
        },
        body,
      });
      statusCode = response.status;
      await response.body?.cancel();
      if (!response.ok) failure = `receiver answered HTTP ${response.status}`;
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause;
      blocked = isBlockedAddressError(error);
      failure = blocked
        ? BLOCKED_BY_POLICY
        : (error as Error).name === 'TimeoutError'
          ? `no answer within ${this.deps.timeoutMs} ms`
          : (cause?.message ?? (error as Error).message);
    } finally {
      limit.clear();
    }
    const durationMs = Math.round(performance.now() - started);
    await this.deps.db.webhookAttempt.create({
      data: { id: uuidv7(), generationId, attempt, event, url: generation.callbackUrl, statusCode, error: failure, durationMs, succeeded: failure === null },
    });
    if (blocked) {
      // Permanent: the destination will not become allowed by trying again.
      this.deps.logger.warn({ generationId, attempt }, 'webhook not sent: its destination is blocked by the network policy; it is not retried');
      return;
    }
    if (failure !== null) {
      this.deps.logger.warn({ generationId, attempt, statusCode }, 'webhook delivery failed; it will be retried while attempts remain');
      throw new WebhookDeliveryError(failure);
    }
    this.deps.logger.info({ generationId, attempt, statusCode, durationMs }, 'webhook delivered');
  }
}

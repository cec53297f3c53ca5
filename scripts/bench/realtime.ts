/**
 * Scenarios 6 and 7 of `npm run bench`, against a server with the default polling settings and a
 * fake Segmind that takes `queueMs + processingMs` (5 s) per job.
 */
import type { SimulatorHandle } from '../../src/upstream/simulator/index.ts';
import { median } from './lib.ts';

const EXTEND = 'mutation Extend($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id } } } }';
const UPDATED = 'subscription Updated($id: ID!) { generationUpdated(id: $id) { status video { url } } }';

export interface Realtime {
  graphqlUrl: string;
  key: string;
  fake: SimulatorHandle;
  fakeKey: string;
  /** The fake's time from submission to COMPLETED. */
  jobMs: number;
}

async function extend(rt: Realtime, prompt: string): Promise<string> {
  const response = await fetch(rt.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': rt.key },
    body: JSON.stringify({ query: EXTEND, variables: { input: { videoUrl: 'https://videos.example/bench.mp4', prompt, quality: 'Q540P' } } }),
  });
  const body = (await response.json()) as { data?: { extendVideo: { __typename: string; generation?: { id: string } } } };
  const id = body.data?.extendVideo.generation?.id;
  if (!id) throw new Error(`extendVideo failed: ${JSON.stringify(body)}`);
  return id;
}

/** Subscribes over SSE and resolves with the time (ms, performance.now()) SUCCEEDED arrived, and the video URL. */
async function untilSucceeded(rt: Realtime, id: string, timeoutMs = 120_000): Promise<{ at: number; url: string }> {
  const response = await fetch(rt.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': rt.key },
    body: JSON.stringify({ query: UPDATED, variables: { id } }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event.split('\n').find((line) => line.startsWith('data:'));
      if (!data) continue;
      const payload = JSON.parse(data.slice(5)) as { data?: { generationUpdated?: { status: string; video: { url: string } | null } } };
      const update = payload.data?.generationUpdated;
      if (update?.status === 'SUCCEEDED') {
        const at = performance.now();
        await reader.cancel().catch(() => undefined);
        return { at, url: update.video!.url };
      }
      if (update && ['FAILED', 'CANCELED'].includes(update.status)) throw new Error(`generation ${id} ended ${update.status}`);
    }
  }
  throw new Error(`subscription for ${id} ended before SUCCEEDED`);
}

/**
 * Scenario 6: `count` generations started 0–2 s apart (so polls meet the fake's completion at
 * different phases); for each, the time from the fake marking its job COMPLETED (its creation
 * time plus the fake's fixed duration) to a subscriber receiving SUCCEEDED. Returns ms, sorted.
 */
export interface CompletionTiming {
  /** COMPLETED at the fake → SUCCEEDED at the subscriber. */
  latency: number;
  /** COMPLETED → the server's first status or result request for the job after that. */
  firstPollAfter: number;
  /** COMPLETED → the server's download request for the output. */
  download: number;
}

export async function completionToSubscriber(rt: Realtime, count: number, tag: string): Promise<CompletionTiming[]> {
  const timings = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (2000 * i) / count));
      const prompt = `bench ${tag} #${i}`;
      const id = await extend(rt, prompt);
      const { at } = await untilSucceeded(rt, id);
      const receivedEpoch = performance.timeOrigin + at;
      const job = rt.fake.jobs().find((j) => j.params.prompt === prompt);
      if (!job) throw new Error(`the fake never saw ${prompt}`);
      const completedAt = job.createdAt + rt.jobMs;
      // The fake records every request it answered, with its arrival time.
      const after = (pattern: string) => rt.fake.requests.find((r) => r.path.includes(pattern) && r.at >= completedAt)?.at ?? NaN;
      return {
        latency: receivedEpoch - completedAt,
        firstPollAfter: Math.min(after(`/v2/requests/${job.requestId}/status`), after(`/v2/requests/${job.requestId}`)) - completedAt,
        download: after(`/outputs/${job.requestId}`) - completedAt,
      };
    }),
  );
  return timings.sort((a, b) => a.latency - b.latency);
}

async function download(url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await fetch(url, { headers });
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  const reader = response.body!.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.byteLength;
  }
}

/** Scenario 7, subject: submit through extendql, wait on the subscription, download. Returns ms. */
export async function endToEnd(rt: Realtime, tag: string): Promise<number> {
  const t0 = performance.now();
  const id = await extend(rt, `bench e2e ${tag}`);
  const { url } = await untilSucceeded(rt, id);
  await download(url.replace('localhost', '127.0.0.1'));
  return performance.now() - t0;
}

/** Scenario 7, baseline: the fake's v2 API directly, polling the status every second, then download. Returns ms. */
export async function endToEndDirect(rt: Realtime, tag: string): Promise<number> {
  const t0 = performance.now();
  const headers = { 'content-type': 'application/json', 'x-api-key': rt.fakeKey };
  const submitted = (await (
    await fetch(`${rt.fake.url}/v2/pixverse-5-extend`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ video_url: 'https://videos.example/bench.mp4', prompt: `bench direct ${tag}`, duration: 5, quality: '540p', motion_mode: 'normal' }),
    })
  ).json()) as { request_id: string };
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const status = (await (await fetch(`${rt.fake.url}/v2/requests/${submitted.request_id}/status`, { headers })).json()) as { status: string };
    if (status.status === 'COMPLETED') break;
    if (status.status === 'FAILED') throw new Error('direct job failed');
  }
  const result = (await (await fetch(`${rt.fake.url}/v2/requests/${submitted.request_id}`, { headers })).json()) as { output: string };
  await download(result.output);
  return performance.now() - t0;
}

export const p = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
export { median };

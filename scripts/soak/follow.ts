const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

const SUBSCRIPTION = 'subscription($id: ID!) { generationUpdated(id: $id) { status } }';

export interface Follower {
  /** The last status the subscriber saw. */
  last: string | null;
  /** Subscriptions opened again after a stream ended early or broke (a client's reconnect). */
  reopened: number;
  done: Promise<void>;
}

/** Reads one SSE subscription until it ends; returns the statuses it carried. */
async function readStream(url: string, key: string, id: string, signal: AbortSignal, seen: (status: string) => void): Promise<void> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    signal,
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': key },
    body: JSON.stringify({ query: SUBSCRIPTION, variables: { id } }),
  });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    const events = buffered.split('\n\n');
    buffered = events.pop()!;
    for (const event of events) {
      const data = event.split('\n').find((line) => line.startsWith('data:'));
      if (!data) continue;
      const status = (JSON.parse(data.slice(5)) as { data?: { generationUpdated?: { status: string } } }).data?.generationUpdated?.status;
      if (status) seen(status);
    }
  }
}

/**
 * Follows a generation over Server-Sent Events like a patient client: when the stream ends
 * before a terminal status, or breaks (the server restarted, the database was away), it
 * subscribes again after a second, until the generation is terminal or `untilMs` passes.
 */
export function follow(url: () => string, key: string, id: string, untilMs: number, stop: AbortSignal): Follower {
  const follower: Follower = { last: null, reopened: 0, done: Promise.resolve() };
  follower.done = (async () => {
    for (let attempt = 0; Date.now() < untilMs && !stop.aborted; attempt++) {
      if (attempt > 0) {
        follower.reopened++;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      try {
        await readStream(url(), key, id, stop, (status) => (follower.last = status));
      } catch {
        // a broken stream: subscribe again
      }
      if (follower.last && TERMINAL.has(follower.last)) return;
    }
  })();
  return follower;
}

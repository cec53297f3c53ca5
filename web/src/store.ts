import { useEffect, useState } from 'preact/hooks';
import type { Api } from './api';
import { StudioGenerationUpdatedDocument, type GenerationStatus, type StudioGenerationFragment } from './gql/graphql';

export type Generation = StudioGenerationFragment;

const RANK: Record<GenerationStatus, number> = { QUEUED: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2, CANCELED: 2 };
export const inFlight = (status: GenerationStatus) => RANK[status] < 2;

/**
 * Every generation the studio has seen, by id, kept current by the `generationUpdated`
 * subscription while it is QUEUED or RUNNING (no polling). History, chain view and cards read
 * from here, so a change shows everywhere at once.
 */
export class GenerationStore {
  private readonly items = new Map<string, Generation>();
  private readonly listeners = new Set<() => void>();
  private readonly createdListeners = new Set<(generation: Generation) => void>();
  private readonly live = new Map<string, { unsubscribe(): void }>();
  /** Why live updates stopped, when they did (e.g. the key was revoked). */
  liveProblem: string | null = null;

  constructor(private readonly api: Api) {}

  get(id: string): Generation | undefined {
    return this.items.get(id);
  }

  /** Takes a fresher copy of a generation; an older snapshot (a page fetched earlier) never undoes a newer status. */
  put(generation: Generation): void {
    const known = this.items.get(generation.id);
    if (known && RANK[generation.status] < RANK[known.status]) return;
    this.items.set(generation.id, generation);
    if (inFlight(generation.status)) this.follow(generation.id);
    else this.unfollow(generation.id);
    this.notify();
  }

  putAll(generations: Generation[]): void {
    generations.forEach((generation) => this.put(generation));
  }

  /** A generation this studio just started: history shows it at the top. */
  created(generation: Generation): void {
    this.put(generation);
    this.createdListeners.forEach((listener) => listener(generation));
  }

  onCreated(listener: (generation: Generation) => void): () => void {
    this.createdListeners.add(listener);
    return () => this.createdListeners.delete(listener);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.live.forEach((subscription) => subscription.unsubscribe());
    this.live.clear();
  }

  private follow(id: string): void {
    if (this.live.has(id)) return;
    const subscription = this.api.client.subscription(StudioGenerationUpdatedDocument, { id }).subscribe((result) => {
      if (result.data) {
        this.liveProblem = null;
        this.put(result.data.generationUpdated);
      } else if (result.error) {
        this.liveProblem = result.error.graphQLErrors[0]?.message ?? result.error.networkError?.message ?? 'live updates stopped';
        this.live.delete(id);
        this.notify();
      }
    });
    // A generation that ended while subscribing has already been unfollowed by put().
    if (inFlight(this.items.get(id)?.status ?? 'QUEUED')) this.live.set(id, subscription);
    else subscription.unsubscribe();
  }

  private unfollow(id: string): void {
    this.live.get(id)?.unsubscribe();
    this.live.delete(id);
  }

  private notify(): void {
    this.listeners.forEach((listener) => listener());
  }
}

/** Re-renders the caller whenever the store changes. */
export function useStore(store: GenerationStore): GenerationStore {
  const [, setVersion] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((version) => version + 1)), [store]);
  return store;
}

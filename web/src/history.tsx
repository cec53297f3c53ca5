import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';
import { GenerationCard, type CardActions } from './card';
import { enumKeys, STATUSES } from './format';
import { StudioHistoryDocument, type GenerationStatus } from './gql/graphql';
import { useStore } from './store';

const PAGE = 12;

interface Page {
  ids: string[];
  endCursor: string | null;
  hasNextPage: boolean;
  totalCount: number | null;
}

const EMPTY: Page = { ids: [], endCursor: null, hasNextPage: true, totalCount: null };

/** The key's generations, newest first: Relay pages fetched as the end of the grid scrolls into view. */
export function History({ actions }: { actions: CardActions }) {
  const { api, store } = actions;
  useStore(store);
  const [status, setStatus] = useState<GenerationStatus | null>(null);
  const [page, setPage] = useState<Page>(EMPTY);
  const [loading, setLoading] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const request = useRef(0);

  const loadMore = useCallback(async () => {
    if (loading || !page.hasNextPage) return;
    const ask = request.current;
    setLoading(true);
    try {
      const { generations } = await api.query(StudioHistoryDocument, { first: PAGE, after: page.endCursor, status });
      if (ask !== request.current) return;
      store.putAll(generations.edges.map((edge) => edge.node));
      const fresh = generations.edges.map((edge) => edge.node.id).filter((id) => !page.ids.includes(id));
      setPage({ ids: [...page.ids, ...fresh], endCursor: generations.pageInfo.endCursor ?? null, hasNextPage: generations.pageInfo.hasNextPage, totalCount: generations.totalCount });
      setProblem(null);
    } catch (error) {
      if (ask === request.current) setProblem(error instanceof ApiError ? error.message : String(error));
    } finally {
      if (ask === request.current) setLoading(false);
    }
  }, [api, store, status, page, loading]);

  // A new filter starts over; answers to the old one are dropped.
  useEffect(() => {
    request.current++;
    setLoading(false);
    setPage(EMPTY);
  }, [status]);

  // What this studio starts appears at the top (when the filter lets it).
  useEffect(
    () =>
      store.onCreated((generation) => {
        if (status !== null && generation.status !== status) return;
        setPage((current) => ({ ...current, ids: [generation.id, ...current.ids.filter((id) => id !== generation.id)], totalCount: current.totalCount === null ? null : current.totalCount + 1 }));
      }),
    [store, status],
  );

  const sentinel = useInfiniteScroll(loadMore, !problem && page.hasNextPage && !loading);
  const generations = page.ids.map((id) => store.get(id)).filter((generation) => generation !== undefined);

  return (
    <section class="history" aria-labelledby="history-title">
      <div class="history-head">
        <h2 id="history-title">
          History {page.totalCount !== null && <span class="count">{page.totalCount}</span>}
        </h2>
        <StatusFilter status={status} onChange={setStatus} />
      </div>
      {generations.length === 0 && !loading && !page.hasNextPage && <p class="empty-state">{status ? `No ${STATUSES[status].toLowerCase()} generations.` : 'No generations yet: extend a video to start.'}</p>}
      <div class="grid" aria-busy={loading}>
        {generations.map((generation) => (
          <GenerationCard key={generation.id} generation={generation} actions={actions} />
        ))}
      </div>
      {problem && (
        <p class="form-error" role="alert">
          {problem}{' '}
          <button type="button" class="link" onClick={() => setProblem(null)}>
            Try again
          </button>
        </p>
      )}
      <div ref={sentinel} class="sentinel" aria-hidden="true">
        {loading && 'Loading…'}
      </div>
    </section>
  );
}

function StatusFilter({ status, onChange }: { status: GenerationStatus | null; onChange(status: GenerationStatus | null): void }) {
  return (
    <div class="field inline">
      <label for="status-filter">Status</label>
      <select id="status-filter" value={status ?? ''} onChange={(event) => onChange((event.currentTarget.value || null) as GenerationStatus | null)}>
        <option value="">All</option>
        {enumKeys(STATUSES).map((value) => (
          <option value={value}>{STATUSES[value]}</option>
        ))}
      </select>
    </div>
  );
}

/** Calls `load` whenever the returned element is (or comes) within a screen of the viewport. */
function useInfiniteScroll(load: () => void, enabled: boolean) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const target = element.current;
    if (!target || !enabled) return;
    const observer = new IntersectionObserver((entries) => entries.some((entry) => entry.isIntersecting) && load(), { rootMargin: '0px 0px 600px 0px' });
    observer.observe(target);
    return () => observer.disconnect();
  }, [load, enabled]);
  return element;
}

import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';
import { GenerationCard, type CardActions } from './card';
import { StudioExtensionsDocument, StudioGenerationDocument } from './gql/graphql';
import { useStore, type Generation, type GenerationStore } from './store';
import type { Api } from './api';

/** How far up a chain the view walks (each link is one request). */
const MAX_LINKS = 50;

interface Chain {
  /** The generation's ancestors and itself, oldest first. */
  lineage: string[];
  /** Generations that extend it, newest first. */
  extensions: string[];
  extensionCount: number;
}

async function generationById(api: Api, store: GenerationStore, id: string): Promise<Generation | null> {
  const known = store.get(id);
  if (known) return known;
  const { generation } = await api.query(StudioGenerationDocument, { id });
  if (generation) store.put(generation);
  return generation;
}

async function loadChain(api: Api, store: GenerationStore, id: string): Promise<Chain | null> {
  const lineage: string[] = [];
  let current = await generationById(api, store, id);
  if (!current) return null;
  while (current && lineage.length < MAX_LINKS) {
    lineage.unshift(current.id);
    current = current.source ? await generationById(api, store, current.source.id) : null;
  }
  const { generation } = await api.query(StudioExtensionsDocument, { id, first: 24 });
  const edges = generation?.extensions.edges ?? [];
  store.putAll(edges.map((edge) => edge.node));
  return { lineage, extensions: edges.map((edge) => edge.node.id), extensionCount: generation?.extensions.totalCount ?? 0 };
}

/** A generation with the generations it extends (back to the first video) and those that extend it. */
export function ChainView({ id, actions }: { id: string; actions: CardActions }) {
  const { api, store } = actions;
  useStore(store);
  const [chain, setChain] = useState<Chain | null | undefined>(undefined);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setChain(undefined);
    loadChain(api, store, id).then(setChain, (error: unknown) => setProblem(error instanceof ApiError ? error.message : String(error)));
  }, [api, store, id]);

  const back = (
    <a class="link back" href="#/">
      ← All generations
    </a>
  );
  if (problem) return <section class="chain">{back}<p class="form-error" role="alert">{problem}</p></section>;
  if (chain === undefined) return <section class="chain" aria-busy="true">{back}<p class="muted">Loading the chain…</p></section>;
  if (chain === null) return <section class="chain">{back}<p class="empty-state">No generation of yours has this id.</p></section>;

  const lineage = chain.lineage.map((link) => store.get(link)).filter((g) => g !== undefined);
  const extensions = chain.extensions.map((link) => store.get(link)).filter((g) => g !== undefined);
  return (
    <section class="chain" aria-labelledby="chain-title">
      {back}
      <h2 id="chain-title">Chain of {lineage.length} generation{lineage.length === 1 ? '' : 's'}</h2>
      <ChainPlayer lineage={lineage} />
      <h3>From the first video to this one</h3>
      <div class="grid" data-testid="lineage">
        {lineage.map((generation) => (
          <GenerationCard key={generation.id} generation={generation} actions={actions} />
        ))}
      </div>
      <h3>Extensions of this generation {chain.extensionCount > 0 && <span class="count">{chain.extensionCount}</span>}</h3>
      {extensions.length === 0 ? (
        <p class="muted">None yet. “Extend this” on a finished card continues it.</p>
      ) : (
        <div class="grid" data-testid="extensions">
          {extensions.map((generation) => (
            <GenerationCard key={generation.id} generation={generation} actions={actions} />
          ))}
        </div>
      )}
    </section>
  );
}

interface Clip {
  url: string;
  label: string;
}

/** The first source video, then each finished extension's video, in one player, one after the other. */
function ChainPlayer({ lineage }: { lineage: Generation[] }) {
  const first = lineage[0];
  const clips: Clip[] = [
    ...(first ? [{ url: first.sourceVideoUrl, label: 'The first video' }] : []),
    ...lineage.flatMap((generation, index) => (generation.video ? [{ url: generation.video.url, label: `Extension ${index + 1}: ${generation.prompt}` }] : [])),
  ];
  const [index, setIndex] = useState(0);
  const player = useRef<HTMLVideoElement>(null);
  const playing = useRef(false);
  useEffect(() => {
    if (playing.current) void player.current?.play().catch(() => undefined);
  }, [index]);
  const current = clips[Math.min(index, clips.length - 1)];
  if (!current) return null;
  return (
    <div class="chain-player panel">
      <video
        ref={player}
        class="media"
        src={current.url}
        controls
        playsInline
        preload="metadata"
        aria-label={`Chain player: ${current.label}`}
        onPlay={() => (playing.current = true)}
        onEnded={() => index + 1 < clips.length && setIndex(index + 1)}
      />
      <ol class="clips" aria-label="Play order">
        {clips.map((clip, position) => (
          <li key={clip.url} aria-current={position === index ? 'true' : undefined}>
            <button type="button" class="link" onClick={() => setIndex(position)} data-url={clip.url}>
              {clip.label}
            </button>
          </li>
        ))}
      </ol>
    </div>
  );
}

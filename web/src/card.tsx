import { useEffect, useState } from 'preact/hooks';
import type { Api } from './api';
import { ApiError } from './api';
import { dateTime, money, MOTION_MODES, progressOf, QUALITIES, seconds, STATUSES, STYLES } from './format';
import { StudioCancelGenerationDocument } from './gql/graphql';
import { inFlight, type Generation, type GenerationStore } from './store';

export interface CardActions {
  api: Api;
  store: GenerationStore;
  /** Puts the generation into the extend form as its source. */
  extend(generation: Generation): void;
}

/** One generation: its video or progress or error, what was asked, what it cost, and what can be done with it. */
export function GenerationCard({ generation, actions }: { generation: Generation; actions: CardActions }) {
  const titleId = `card-${generation.id}-title`;
  return (
    <article class={`card status-${generation.status.toLowerCase()}`} data-generation-id={generation.id} data-status={generation.status} aria-labelledby={titleId}>
      <CardMedia generation={generation} />
      <div class="card-body">
        <header class="card-head">
          <span class="pill" data-testid="status">
            {STATUSES[generation.status]}
          </span>
          <time dateTime={generation.createdAt}>{dateTime(generation.createdAt)}</time>
        </header>
        <h3 id={titleId} class="prompt" title={generation.prompt}>
          {generation.prompt}
        </h3>
        <p class="facts">
          {QUALITIES[generation.quality]} · {generation.duration} s · {MOTION_MODES[generation.motionMode]}
          {generation.style && ` · ${STYLES[generation.style]}`} · <Cost generation={generation} />
        </p>
        {generation.source && <p class="facts muted">Extends an earlier generation</p>}
        <CardActionsRow generation={generation} actions={actions} />
      </div>
    </article>
  );
}

function Cost({ generation }: { generation: Generation }) {
  if (generation.cost != null) return <span title="As reported by Segmind">{money(generation.cost)}</span>;
  return <span title="From extendql's price table">{money(generation.estimatedCost)} est.</span>;
}

function CardMedia({ generation }: { generation: Generation }) {
  if (generation.status === 'SUCCEEDED' && generation.video) {
    const { url, width, height } = generation.video;
    return <video class="media" src={url} controls preload="metadata" playsInline width={width} height={height} aria-label={`Video: ${generation.prompt}`} />;
  }
  if (inFlight(generation.status)) return <Progress generation={generation} />;
  if (generation.status === 'FAILED') {
    return (
      <div class="media failed" role="status">
        <strong>{generation.error?.code ?? 'FAILED'}</strong>
        <p>{generation.error?.message ?? 'The generation failed.'}</p>
      </div>
    );
  }
  const note = generation.status === 'CANCELED' ? 'Canceled' : generation.videoExpiredAt ? `Video removed ${dateTime(generation.videoExpiredAt)}` : 'No video';
  return <div class="media empty">{note}</div>;
}

/** Progress from the subscription's updates; the clock between them ticks locally (no polling). */
function Progress({ generation }: { generation: Generation }) {
  const [since, setSince] = useState(() => ({ at: Date.now(), elapsed: generation.elapsedSeconds }));
  const [, tick] = useState(0);
  useEffect(() => setSince({ at: Date.now(), elapsed: generation.elapsedSeconds }), [generation.elapsedSeconds]);
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  const { share, label } = progressOf(generation.status, generation.upstreamStatus);
  const elapsed = since.elapsed + (Date.now() - since.at) / 1000;
  return (
    <div class="media progress">
      <div class="bar" role="progressbar" aria-label="Progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share * 100)} aria-valuetext={label}>
        <span style={{ width: `${share * 100}%` }} />
      </div>
      <p>
        {label} · {seconds(elapsed)}
      </p>
      {generation.retrying && (
        <p class="retrying">
          Waiting out {generation.retrying.code}: {generation.retrying.message}
        </p>
      )}
    </div>
  );
}

function CardActionsRow({ generation, actions }: { generation: Generation; actions: CardActions }) {
  const [problem, setProblem] = useState<string | null>(null);
  const cancel = async () => {
    setProblem(null);
    try {
      const { cancelGeneration: result } = await actions.api.mutate(StudioCancelGenerationDocument, { id: generation.id });
      if (result.__typename === 'CancelGenerationSuccess') actions.store.put(result.generation);
      else setProblem(result.message);
    } catch (error) {
      setProblem(error instanceof ApiError ? error.message : String(error));
    }
  };
  const chained = generation.source !== null || generation.extensions.totalCount > 0;
  return (
    <div class="card-actions">
      {generation.status === 'SUCCEEDED' && generation.video && (
        <button type="button" class="secondary" onClick={() => actions.extend(generation)}>
          Extend this
        </button>
      )}
      {inFlight(generation.status) && (
        <button type="button" class="secondary danger" onClick={cancel}>
          Cancel
        </button>
      )}
      <a class="link" href={`#/generation/${encodeURIComponent(generation.id)}`}>
        {chained ? 'Chain' : 'Details'}
      </a>
      {generation.video && (
        <a class="link" href={generation.video.url} download>
          Download
        </a>
      )}
      {problem && (
        <p class="field-error" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}

import { useEffect, useMemo, useState } from 'preact/hooks';
import { createApi, type Api } from './api';
import type { CardActions } from './card';
import { ChainView } from './chain';
import { ExtendForm } from './extend-form';
import { initialForm, type FormState } from './form-model';
import { money } from './format';
import { StudioViewerDocument, type StudioViewerQuery } from './gql/graphql';
import { History } from './history';
import { forgetKey, storedKey, storeKey } from './key';
import { KeyPrompt } from './key-prompt';
import { GenerationStore, useStore } from './store';

/** The hash route: `#/generation/<id>` opens a chain; anything else is the studio's home. */
function useRoute(): { chainId: string | null } {
  const read = () => {
    const match = /^#\/generation\/(.+)$/.exec(location.hash);
    return { chainId: match ? decodeURIComponent(match[1]!) : null };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function App() {
  const [key, setKey] = useState(storedKey);
  const [notice, setNotice] = useState<string | null>(null);
  if (!key) {
    return (
      <KeyPrompt
        notice={notice}
        onKey={(accepted) => {
          storeKey(accepted);
          setNotice(null);
          setKey(accepted);
        }}
      />
    );
  }
  const leave = (why: string | null) => {
    forgetKey();
    setNotice(why);
    setKey(null);
  };
  return <Studio key={key} apiKey={key} onForget={() => leave(null)} onRejected={() => leave('The saved key is no longer accepted. Paste another one.')} />;
}

function Studio({ apiKey, onForget, onRejected }: { apiKey: string; onForget(): void; onRejected(): void }) {
  const { api, store } = useMemo(() => {
    const created = createApi(apiKey);
    return { api: created, store: new GenerationStore(created) };
  }, [apiKey]);
  useEffect(() => () => (store.close(), api.close()), [api, store]);
  const viewer = useViewer(api, store, onRejected);
  const [form, setForm] = useState<FormState>(initialForm);
  const route = useRoute();
  useStore(store);
  const actions: CardActions = {
    api,
    store,
    extend(generation) {
      setForm((current) => ({ ...current, source: { kind: 'chain', id: generation.id, prompt: generation.prompt }, quality: null }));
      location.hash = '#/';
      requestAnimationFrame(() => document.getElementById('prompt')?.focus());
    },
  };
  return (
    <>
      <StudioHeader viewer={viewer} onForget={onForget} />
      <main class="studio">
        {store.liveProblem && (
          <p class="form-error" role="alert">
            Live updates stopped: {store.liveProblem}. Reload the page to resume.
          </p>
        )}
        {route.chainId ? (
          <ChainView id={route.chainId} actions={actions} />
        ) : (
          <div class="layout">
            <ExtendForm api={api} store={store} form={form} setForm={setForm} />
            <History actions={actions} />
          </div>
        )}
      </main>
    </>
  );
}

type Viewer = StudioViewerQuery['viewer'];

/** The key's name and today's usage: read at start and again after each generation this studio starts. */
function useViewer(api: Api, store: GenerationStore, onRejected: () => void): Viewer | null {
  const [viewer, setViewer] = useState<Viewer | null>(null);
  useEffect(() => {
    const read = () =>
      api.query(StudioViewerDocument, {}).then(
        (data) => setViewer(data.viewer),
        (error: { code?: string }) => error.code === 'UNAUTHENTICATED' && onRejected(),
      );
    void read();
    return store.onCreated(() => void read());
  }, [api, store]);
  return viewer;
}

function StudioHeader({ viewer, onForget }: { viewer: Viewer | null; onForget(): void }) {
  return (
    <header class="topbar">
      <a class="brand" href="#/">
        <span class="brand-mark" aria-hidden="true" /> extendql <span class="muted">studio</span>
      </a>
      <div class="topbar-right">
        {viewer && (
          <span class="viewer" title={`Key ${viewer.prefix}…`}>
            <strong>{viewer.name}</strong> · {viewer.usageToday.generationsStarted} today · {money(viewer.usageToday.estimatedSpentUsd)} est.
          </span>
        )}
        <a class="link" href="/graphql">
          GraphiQL
        </a>
        <button type="button" class="secondary" onClick={onForget}>
          Forget key
        </button>
      </div>
    </header>
  );
}

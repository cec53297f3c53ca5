import { useState } from 'preact/hooks';
import { ApiError, createApi } from './api';
import { StudioViewerDocument } from './gql/graphql';

/** Asks for an API key and checks it with the `viewer` query before keeping it. */
export function KeyPrompt({ onKey, notice }: { onKey(key: string): void; notice: string | null }) {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const candidate = key.trim();
    if (!candidate) return setProblem('Paste an API key first.');
    setBusy(true);
    const api = createApi(candidate);
    try {
      await api.query(StudioViewerDocument, {});
      onKey(candidate);
    } catch (error) {
      setProblem(error instanceof ApiError && error.code === 'UNAUTHENTICATED' ? 'This key was not accepted: it is unknown or revoked.' : String(error instanceof Error ? error.message : error));
    } finally {
      api.close();
      setBusy(false);
    }
  };
  return (
    <main class="key-gate">
      <form class="panel key-prompt" onSubmit={submit} aria-labelledby="key-title">
        <h1 id="key-title">
          <span class="brand-mark" aria-hidden="true" /> extendql studio
        </h1>
        <p>Extend videos, follow them live and chain them. Everything here goes through the public GraphQL API with your key.</p>
        <div class="field">
          <label for="api-key">API key</label>
          <input id="api-key" name="apiKey" type="password" autoComplete="off" spellcheck={false} placeholder="xq_…" value={key} aria-invalid={!!problem} aria-describedby={problem ? 'api-key-error' : 'api-key-hint'} onInput={(event) => setKey(event.currentTarget.value)} />
          {problem ? (
            <p id="api-key-error" class="field-error" role="alert">
              {problem}
            </p>
          ) : (
            <p id="api-key-hint" class="hint">
              Create one with <code>npm run apikey:create -- --name me</code>. It is kept in this browser only, until you forget it.
            </p>
          )}
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Continue'}
        </button>
        <p class="muted small">
          Prefer raw GraphQL? <a href="/graphql">Open GraphiQL</a>.
        </p>
      </form>
    </main>
  );
}

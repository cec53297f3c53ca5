// GraphiQL keeps headers per tab, so a key pasted into one tab's headers is missing from the
// next. This small plugin adds a bar above GraphiQL: the key entered there is kept in the
// browser's localStorage (under the name the studio uses, so one key serves both) and added as
// `x-api-key` to every request GraphiQL sends to /graphql, from every tab, subscriptions
// included. A tab whose own headers name an `x-api-key` keeps its own. It also links to the studio.

/** The localStorage entry the studio (web/src/key.ts) and GraphiQL share. */
export const KEY_STORAGE = 'extendql.apiKey';

const STYLE = /* CSS */ `
body { margin: 0; height: 100vh; display: flex; flex-direction: column; }
#root { flex: 1 1 auto; min-height: 0; height: auto !important; }
#extendql-bar { flex: none; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; padding: 8px 16px;
  font: 14px/1.4 system-ui, sans-serif; background: #1f4e5f; color: #fff; }
#extendql-bar a { color: #f4d9a6; }
#extendql-bar .xq-brand { font-weight: 650; color: #fff; text-decoration: none; }
#extendql-bar form { display: flex; align-items: center; gap: 8px; margin: 0; }
#extendql-bar input { width: 16rem; max-width: 50vw; padding: 4px 8px; border: 1px solid #7fb8c9; border-radius: 6px; font: inherit; }
#extendql-bar button { padding: 4px 10px; border-radius: 6px; border: 1px solid #f4d9a6; background: #f4d9a6; color: #1f2a30; font: inherit; cursor: pointer; }
#extendql-bar button.xq-forget { background: transparent; color: #f4d9a6; }
#extendql-bar .xq-state { opacity: 0.9; }
#extendql-bar .xq-studio { margin-left: auto; }
`;

const BAR = /* HTML */ `<div id="extendql-bar" role="region" aria-label="extendql API key">
  <a class="xq-brand" href="/">extendql</a>
  <form id="xq-key-form">
    <label for="xq-key">API key for every tab</label>
    <input id="xq-key" name="apiKey" type="password" autocomplete="off" spellcheck="false" placeholder="xq_… from npm run apikey:create" />
    <button type="submit">Use key</button>
  </form>
  <span class="xq-state" id="xq-key-state" aria-live="polite"></span>
  <a class="xq-studio" href="/">Open the studio →</a>
</div>`;

/** Runs before GraphiQL's bundle, whose fetcher calls globalThis.fetch at request time. */
const SCRIPT = /* JavaScript */ `(function () {
  var STORAGE = ${JSON.stringify(KEY_STORAGE)};
  function storedKey() { try { return localStorage.getItem(STORAGE); } catch (e) { return null; } }
  var endpoint = new URL('/graphql', location.href).href;
  var realFetch = globalThis.fetch.bind(globalThis);
  globalThis.fetch = function (input, init) {
    var key = storedKey();
    var url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!key || new URL(url, location.href).href.split('?')[0] !== endpoint) return realFetch(input, init);
    var headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
    if (!(headers.get('x-api-key') || '').trim()) headers.set('x-api-key', key);
    return realFetch(input, Object.assign({}, init, { headers: headers }));
  };
  function show() {
    var state = document.getElementById('xq-key-state');
    var key = storedKey();
    state.textContent = key ? 'Key ' + key.slice(0, 7) + '… is sent from every tab. ' : 'No key yet: requests other than introspection answer UNAUTHENTICATED.';
    if (key) {
      var forget = document.createElement('button');
      forget.type = 'button';
      forget.className = 'xq-forget';
      forget.textContent = 'Forget key';
      forget.onclick = function () { try { localStorage.removeItem(STORAGE); } catch (e) {} show(); };
      state.appendChild(forget);
    }
  }
  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('xq-key-form');
    var input = document.getElementById('xq-key');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var key = input.value.trim();
      if (!key) return;
      try { localStorage.setItem(STORAGE, key); } catch (e) {}
      input.value = '';
      show();
    });
    window.addEventListener('storage', function (event) { if (event.key === STORAGE) show(); });
    show();
  });
})();`;

const HEAD_ANCHOR = '<meta charset="utf-8" />';
const BODY_ANCHOR = '<div id="root"></div>';

/** GraphiQL's page with the key bar: the script and style in its head, the bar above GraphiQL. */
export function withKeyBar(page: string): string {
  const head = page.indexOf(HEAD_ANCHOR);
  const body = page.indexOf(BODY_ANCHOR);
  if (head < 0 || body < head) throw new Error("GraphiQL's page changed shape: the key bar has no place in it");
  const headEnd = head + HEAD_ANCHOR.length;
  return `${page.slice(0, headEnd)}<style>${STYLE}</style><script>${SCRIPT}</script>${page.slice(headEnd, body)}${BAR}${page.slice(body)}`;
}

import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { withKeyBar } from './graphiql-key.ts';

/**
 * The operation GraphiQL opens with: ready to run once a key is pasted into the headers. Its source
 * is the sample clip at this server's own origin (the port it listens on, or PUBLIC_BASE_URL).
 */
export const extendVideoExample = (origin: string) => /* GraphQL */ `# 1. Create a key: npm run apikey:create -- --name me
# 2. Paste it into the API key bar above (it is sent from every tab), then run this mutation.
# 3. Follow the generation in the Follow tab; the studio at / shows it too.
# The sample clip is served by this server. With a real Segmind key, use a URL that Segmind
# can reach: your own public URL, or an upload.
mutation ExtendVideo {
  extendVideo(
    input: {
      videoUrl: "${origin}/samples/beach.mp4"
      prompt: "The camera glides forward as waves roll onto the shore at sunset"
      duration: 5
      quality: Q540P
      motionMode: NORMAL
    }
  ) {
    __typename
    ... on ExtendVideoSuccess {
      generation { id status quality duration createdAt }
    }
    ... on InvalidInputError { message fields { path message } }
    ... on Error { message }
  }
}
`;

export const EXAMPLE_GENERATION = /* GraphQL */ `# Paste the id returned by extendVideo, then run (again) until SUCCEEDED.
query Generation($id: ID!) {
  generation(id: $id) {
    id
    status
    upstreamStatus
    error { code message }
    video { url width height durationSeconds byteSize sha256 }
  }
}
`;

export const EXAMPLE_FOLLOW = /* GraphQL */ `# Follows a generation live: paste the id returned by extendVideo into the variables, then run.
# The result updates in place at every change and ends after SUCCEEDED, FAILED or CANCELED.
subscription Follow($id: ID!) {
  generationUpdated(id: $id) {
    id
    status
    upstreamStatus
    elapsedSeconds
    retrying { code message retryAt }
    error { code message }
    video { url width height durationSeconds }
  }
}
`;

export const EXAMPLE_HISTORY = /* GraphQL */ `query History {
  generations(first: 10) {
    totalCount
    edges { node { id status prompt createdAt video { url } } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

/** GraphiQL's settings for a server whose public origin is `origin` (e.g. http://localhost:4000). */
export function graphiqlOptions(origin: string) {
  const extend = extendVideoExample(origin);
  const pasteId = JSON.stringify({ id: 'paste the generation id' }, null, 2);
  return {
    title: 'extendql',
    // The key comes from the key bar (src/graphiql-key.ts) for every tab, so tabs start without
    // headers of their own; a tab may still set its own x-api-key, which then wins.
    defaultTabs: [
      { query: extend },
      { query: EXAMPLE_FOLLOW, variables: pasteId },
      { query: EXAMPLE_GENERATION, variables: pasteId },
      { query: EXAMPLE_HISTORY },
    ],
    // yoga's page fills the editor from `query`; `defaultQuery` alone leaves its welcome text.
    query: extend,
    defaultQuery: extend,
    headers: '{}',
    defaultHeaders: '{}',
    shouldPersistHeaders: true,
    // yoga's own Server-Sent Events, as the README's curl example uses.
    subscriptionsProtocol: 'SSE' as const,
  };
}

/**
 * The GraphiQL page (with the shared key bar), rendered by @graphql-yoga/render-graphiql (which inlines the whole GraphiQL
 * bundle, so the page works offline). Loading that module costs a process about 75 MB for good,
 * and a worker thread's memory is not handed back either; so a short-lived child process renders
 * the page once, and only the finished page (about 9 MB) is kept.
 */
const pages = new Map<string, Promise<string>>();
const requireHere = createRequire(import.meta.url);
const RENDER = `process.stdout.write(require(process.argv[1]).renderGraphiQL(JSON.parse(process.argv[2])))`;

export function renderGraphiQLPage(options: object): Promise<string> {
  const cacheKey = JSON.stringify(options);
  let page = pages.get(cacheKey);
  if (!page) {
    page = new Promise<string>((resolve, reject) => {
      const module = requireHere.resolve('@graphql-yoga/render-graphiql');
      execFile(process.execPath, ['-e', RENDER, module, cacheKey], { maxBuffer: 64 * 1024 * 1024, env: {} }, (error, stdout) =>
        error ? reject(error) : resolve(withKeyBar(stdout)),
      );
    });
    page.catch(() => pages.delete(cacheKey));
    pages.set(cacheKey, page);
  }
  return page;
}

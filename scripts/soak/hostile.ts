import { connect } from 'node:net';
import WebSocket from 'ws';

/** What each hostile request got back: an HTTP status, a WebSocket close code, or a GraphQL error code. */
export type HostileOutcomes = Record<string, string>;

const globalId = (id: string) => Buffer.from(`Generation:${id}`).toString('base64');

async function post(url: string, key: string | null, body: string): Promise<string> {
  try {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key && { 'x-api-key': key }) },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const json = (await response.json().catch(() => null)) as { errors?: { extensions?: { code?: string } }[]; data?: Record<string, unknown> | null } | null;
    const code = json?.errors?.[0]?.extensions?.code;
    const first = json?.data ? Object.values(json.data)[0] : undefined;
    const typename = first && typeof first === 'object' && '__typename' in first ? String(first.__typename) : undefined;
    const nothing = json?.data && first === null ? ' null' : '';
    return `HTTP ${response.status}${code ? ` ${code}` : ''}${typename ? ` ${typename}` : ''}${nothing}`;
  } catch (error) {
    return `no answer (${(error as Error).name})`;
  }
}

const graphql = (query: string, variables: Record<string, unknown> = {}) => JSON.stringify({ query, variables });

/** The HTTP part of the burst: each request an attacker or a broken client sent in a probe. */
async function httpBurst(url: string, key: string, foreignId: string): Promise<HostileOutcomes> {
  const entities = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Generation { id status } } }';
  // About 910 KB: under the 1 MiB body limit, as in the probe that once took the process down.
  const flood = Array.from({ length: 13_000 }, (_, i) => ({ __typename: 'Generation', id: `0192f000-0000-7000-8000-${String(i).padStart(12, '0')}` }));
  const extend = (callbackUrl: string) =>
    graphql('mutation($i: ExtendVideoInput!) { extendVideo(input: $i) { __typename } }', {
      i: { videoUrl: 'https://videos.example/a.mp4', prompt: 'hostile', callbackUrl },
    });
  const requests: [string, () => Promise<string>][] = [
    ['_entities with 13,000 representations', () => post(url, key, graphql(entities, { r: flood }))],
    ['_entities with malformed representations', () => post(url, key, graphql(entities, { r: [{ __typename: 'Nope', id: 'x' }, { __typename: 'Generation' }, { __typename: 'Generation', id: 5 }] }))],
    ["node(id:) of another key's generation", () => post(url, key, graphql('query($id: ID!) { node(id: $id) { id } }', { id: globalId(foreignId) }))],
    ['node(id:) of a made-up id', () => post(url, key, graphql('{ node(id: "bm90LWEtcmVhbC1pZA==") { id } }'))],
    ['callbackUrl to 169.254.169.254', () => post(url, key, extend('http://169.254.169.254/latest/meta-data/'))],
    ['callbackUrl to 127.0.0.1', () => post(url, key, extend('http://127.0.0.1:5432/'))],
    ['callbackUrl to [::ffff:127.0.0.1]', () => post(url, key, extend('http://[::ffff:127.0.0.1]:6379/'))],
    ['2 MiB JSON body', () => post(url, key, graphql('{ __typename }', { pad: 'x'.repeat(2 * 1024 * 1024) }))],
    ['query without a key', () => post(url, null, graphql('{ generations(first: 5) { totalCount } }'))],
  ];
  const outcomes: HostileOutcomes = {};
  await Promise.all(requests.map(async ([name, send]) => (outcomes[name] = await send())));
  return outcomes;
}

/** Opens a graphql-ws socket; resolves with the close code once the server closes it (or after `waitMs`). */
function socket(url: string, setup: (ws: WebSocket) => void, waitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('still open');
    }, waitMs);
    ws.on('error', () => {});
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(`closed ${code}`);
    });
    ws.on('open', () => setup(ws));
  });
}

async function webSocketBurst(url: string, key: string): Promise<HostileOutcomes> {
  const errorsFor: string[] = [];
  const badOps = socket(
    url,
    (ws) => {
      ws.send(JSON.stringify({ type: 'connection_init', payload: { 'x-api-key': key } }));
      ws.on('message', (raw: Buffer) => {
        const message = JSON.parse(raw.toString()) as { type: string; id?: string };
        if (message.type === 'connection_ack') {
          ws.send(JSON.stringify({ id: 'syntax', type: 'subscribe', payload: { query: 'subscription { generationUpdated(id: ' } }));
          ws.send(JSON.stringify({ id: 'deep', type: 'subscribe', payload: { query: `{ ${'generations(first: 1) { edges { node { source { '.repeat(8)}id${' } } } }'.repeat(8)} }` } }));
        }
        if (message.type === 'error' && message.id) errorsFor.push(message.id);
      });
    },
    3000,
  );
  const outcomes: HostileOutcomes = {
    'WebSocket message of 16 MiB without a key': await socket(url, (ws) => ws.send('x'.repeat(16 * 1024 * 1024)), 10_000),
  };
  let keylessAnswer = 'no answer';
  const keyless = await socket(
    url,
    (ws) => {
      ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      ws.on('message', (raw: Buffer) => {
        const message = JSON.parse(raw.toString()) as { type: string; payload?: { extensions?: { code?: string } }[] };
        if (message.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ generations(first: 1) { totalCount } }' } }));
        if (message.type === 'error') keylessAnswer = `error ${message.payload?.[0]?.extensions?.code ?? ''} for its id`;
        if (message.type === 'next') keylessAnswer = 'executed';
      });
    },
    3000,
  );
  outcomes['WebSocket operation without a key'] = `${keylessAnswer}; ${keyless}`;
  outcomes['WebSocket syntax error and over-deep operation beside each other'] = `${await badOps}; errors for ${errorsFor.sort().join(', ') || 'none'}`;
  return outcomes;
}

/** Clients that send headers and then a byte now and then: the server must cut them off. */
function slowBodies(url: string, count: number): { outcome(): string; close(): void } {
  const { hostname, port } = new URL(url);
  let cut = 0;
  const sockets = Array.from({ length: count }, () => {
    const s = connect(Number(port), hostname, () => {
      s.write(`POST /graphql HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{`);
    });
    const drip = setInterval(() => s.writable && s.write(' '), 1000);
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(drip);
      cut++;
    });
    return { s, drip };
  });
  return {
    outcome: () => `${cut} of ${count} cut off by the server`,
    close: () => sockets.forEach(({ s, drip }) => (clearInterval(drip), s.destroy())),
  };
}

/** Sends the whole burst from `key` and reports how each request was answered. */
export async function hostileBurst(url: string, key: string, foreignId: string): Promise<{ outcomes: HostileOutcomes; slow: { outcome(): string; close(): void } }> {
  const slow = slowBodies(url, 5);
  const [fromHttp, fromSockets] = await Promise.all([httpBurst(url, key, foreignId), webSocketBurst(url, key)]);
  return { outcomes: { ...fromHttp, ...fromSockets }, slow };
}

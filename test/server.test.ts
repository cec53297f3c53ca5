import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearApiKeyCache } from '../src/auth/api-keys.ts';
import { GenerationsDocument } from './gql/graphql.ts';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.close());

describe('HTTP surface', () => {
  it('serves GraphiQL with the ready-to-run extendVideo example, a subscription, a generation query and the key bar', async () => {
    const response = await fetch(stack.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    // Not to be framed by another site.
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('content-security-policy')).toBe("frame-ancestors 'none'");
    const html = await response.text();
    expect(html).toContain('mutation ExtendVideo');
    expect(html).toContain('extendVideo(');
    expect(html).toContain('query Generation');
    expect(html).toContain('subscription Follow');
    expect(html).toContain('x-api-key');
    // The key bar that sends one key from every tab, and the way to the studio.
    expect(html).toContain('API key for every tab');
    expect(html).toContain('<a class="xq-studio" href="/">Open the studio');
    // The example's source is this server's own sample clip, on whatever port it listens.
    expect(stack.app.url).not.toMatch(/:4000$/);
    expect(html).toContain(`${stack.app.publicBaseUrl}/samples/beach.mp4`);
    expect(html).not.toContain('localhost:4000');
  });

  it('answers /health and /ready', async () => {
    expect((await fetch(`${stack.app.url}/health`)).status).toBe(200);
    expect((await fetch(`${stack.app.url}/ready`)).status).toBe(200);
  });

  it('serves Prometheus metrics: GraphQL, generations by status, upstream latency, queue depth', async () => {
    const { ExtendVideoDocument } = await import('./gql/graphql.ts');
    const { waitForTerminal } = await import('./helpers/stack.ts');
    const created = (await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'measured' } })).data!.extendVideo;
    if (created.__typename !== 'ExtendVideoSuccess') throw new Error(created.__typename);
    await waitForTerminal(stack, created.generation.id);
    const response = await fetch(`${stack.app.url}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(/^extendql_generations\{status="SUCCEEDED"\} 1$/m);
    expect(text).toMatch(/^extendql_upstream_request_duration_seconds_count\{operation="submit",outcome="ok"\} 1$/m);
    expect(text).toMatch(/^extendql_queue_depth \d+$/m);
    expect(text).toContain('graphql_yoga_http_duration');
    expect(text).not.toContain(stack.key);
  });

  it('answers an unknown video with 404', async () => {
    const response = await fetch(`${stack.app.url}/videos/AAAAAAAAAAAAAAAAAAAAAA.mp4`);
    expect(response.status).toBe(404);
  });

  it('masks unexpected errors and keeps typed ones', async () => {
    const response = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.key },
      body: JSON.stringify({ query: '{ generations(first: -1) { totalCount } }' }),
    });
    const body = (await response.json()) as { errors?: { message: string }[] };
    expect(body.errors?.length).toBeGreaterThan(0);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  });
});

describe('request ids', () => {
  it('every response carries x-request-id, and the log lines of that request carry it as reqId', async () => {
    const { ExtendVideoDocument } = await import('./gql/graphql.ts');
    const { print } = await import('graphql');
    const body = JSON.stringify({ query: print(ExtendVideoDocument), variables: { input: { videoUrl: 'https://videos.example/b.mp4', prompt: 'traced' } } });
    const headers = { 'content-type': 'application/json', 'x-api-key': stack.key };

    const given = await fetch(stack.graphqlUrl, { method: 'POST', headers: { ...headers, 'x-request-id': 'gateway-trace.42' }, body });
    expect(given.headers.get('x-request-id')).toBe('gateway-trace.42');
    await given.json();
    // A caller's id that is not log-safe is replaced with a fresh one.
    const replaced = await fetch(stack.graphqlUrl, { method: 'POST', headers: { ...headers, 'x-request-id': 'no spaces or {braces} allowed' }, body });
    const fresh = replaced.headers.get('x-request-id');
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    await replaced.json();

    const lines = () => stack.logs.map((line) => JSON.parse(line) as { reqId?: string; msg: string; path?: string; status?: number; generationId?: string });
    await expect.poll(() => lines().filter((l) => l.reqId === 'gateway-trace.42').map((l) => l.msg)).toEqual(['generation accepted', 'request']);
    const access = lines().find((l) => l.reqId === fresh && l.msg === 'request');
    expect(access).toMatchObject({ path: '/graphql', status: 200 });
    expect(lines().find((l) => l.reqId === 'gateway-trace.42' && l.msg === 'generation accepted')?.generationId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('npm run apikey:create', () => {
  it('prints a new key as the last line, and the key works', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['src/admin/apikey.ts', 'create', '--name', 'from the command line'], {
      env: { ...process.env, DATABASE_URL: stack.app.databaseUrl, LOG_LEVEL: 'warn' },
    });
    const key = stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^xq_[A-Za-z0-9_-]{43}$/);
    const result = await stack.execute(GenerationsDocument, { first: 1 }, key);
    expect(result.errors).toBeUndefined();
    expect(result.data!.generations.totalCount).toBe(0);
  });

  it('refuses to run without a name', async () => {
    await expect(
      promisify(execFile)(process.execPath, ['src/admin/apikey.ts', 'create'], { env: { ...process.env, DATABASE_URL: stack.app.databaseUrl } }),
    ).rejects.toMatchObject({ code: 2 });
  });
});

describe('npm run apikey:list', () => {
  const command = async (...args: string[]) =>
    (
      await promisify(execFile)(process.execPath, ['src/admin/apikey.ts', ...args], {
        env: { ...process.env, DATABASE_URL: stack.app.databaseUrl, LOG_LEVEL: 'warn' },
      })
    ).stdout;
  const idOf = (created: string) => /Created API key (\S+) /.exec(created)![1]!;
  const secondsOf = (date: Date) => `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;

  it('shows name, id, prefix, created, last used and revoked of every key, never a key, hash or secret', async () => {
    const usedOutput = await command('create', '--name', 'used key');
    const used = { id: idOf(usedOutput), key: usedOutput.trim().split('\n').at(-1)! };
    const revokedId = idOf(await command('create', '--name', 'revoked key'));
    await command('revoke', '--id', revokedId);

    // A request records the use, after (not before) it is answered: poll for it.
    expect((await stack.execute(GenerationsDocument, { first: 1 }, used.key)).errors).toBeUndefined();
    let lastUsedAt: Date | null = null;
    for (let attempt = 0; attempt < 50 && !lastUsedAt; attempt++) {
      lastUsedAt = (await stack.app.db.apiKey.findUniqueOrThrow({ where: { id: used.id } })).lastUsedAt;
      if (!lastUsedAt) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(lastUsedAt).toBeInstanceOf(Date);
    // Within the minute, another lookup (the remembered identity forgotten) writes nothing.
    clearApiKeyCache(stack.app.db);
    expect((await stack.execute(GenerationsDocument, { first: 1 }, used.key)).errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await stack.app.db.apiKey.findUniqueOrThrow({ where: { id: used.id } })).lastUsedAt).toEqual(lastUsedAt);

    const listed = await command('list');
    const lines = listed.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +ID +PREFIX +CREATED +LAST USED +REVOKED$/);
    const rows = await stack.app.db.apiKey.findMany({ where: { id: { in: [used.id, revokedId] } } });
    const usedRow = rows.find((row) => row.id === used.id)!;
    const revokedRow = rows.find((row) => row.id === revokedId)!;
    const row = (id: string) => lines.find((line) => line.includes(id))!.split(/ {2,}/);
    expect(row(used.id)).toEqual(['used key', used.id, `${usedRow.prefix}…`, secondsOf(usedRow.createdAt), secondsOf(lastUsedAt!), '-']);
    expect(row(revokedId)).toEqual(['revoked key', revokedId, `${revokedRow.prefix}…`, secondsOf(revokedRow.createdAt), 'never', secondsOf(revokedRow.revokedAt!)]);
    for (const secret of [used.key, usedRow.keyHash, usedRow.webhookSecret, revokedRow.keyHash, revokedRow.webhookSecret, stack.key]) {
      expect(listed).not.toContain(secret);
    }
  });
});

describe('secret scanning', () => {
  it('every stack fails its close() if a key reached a response or log line', async () => {
    const leaky = await startStack({ worker: false });
    leaky.logs.push(JSON.stringify({ msg: `oops ${leaky.segmindKey}` }));
    await expect(leaky.close()).rejects.toThrow(/Segmind key leaked/);
  });
});

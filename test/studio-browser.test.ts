// The studio (web/) in real Chromium against the real server, the simulator as Segmind and real
// PostgreSQL: the journey a person takes, from the key prompt to chained and uploaded videos.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoBriefDocument } from './gql/graphql.ts';
import { startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

/** Debian's Chromium (`apt-get install chromium`); .ci/run installs it when it is missing. */
const CHROMIUM = '/usr/bin/chromium';
/** Test output, outside the repository. */
const SCREENSHOT_DIR = join(tmpdir(), 'extendql-screenshots');

let stack: Stack;
let browser: Browser;
let page: Page;
const problems: string[] = [];
/** Every GraphQL operation the page sent over HTTP, by name, in order. */
const operations: string[] = [];

async function screenshot(name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = join(SCREENSHOT_DIR, `studio-${name}-${Date.now()}.png`);
  await page.screenshot({ path: file, fullPage: false });
  console.log(`studio screenshot: ${file}`);
}

function operationOf(request: Request): string | null {
  if (request.method() !== 'POST' || new URL(request.url()).pathname !== '/graphql') return null;
  const body = request.postDataBuffer()?.toString('latin1') ?? '';
  const named = /"operationName":"(\w+)"/.exec(body)?.[1] ?? /(?:query|mutation|subscription) (\w+)/.exec(body)?.[1];
  // Chromium does not hand a body holding a file to the test: a multipart request is an upload.
  return named ?? (/^multipart\/form-data/.test(request.headers()['content-type'] ?? '') ? 'upload' : 'anonymous');
}

/** Reads that answer null rather than wait when the element is not (yet) there; polled by expect.poll. */
const QUICK = { timeout: 1000 };
const textOf = async (locator: Locator) => (await locator.textContent(QUICK).catch(() => null)) ?? '';
const attributeOf = async (locator: Locator, name: string) => (await locator.getAttribute(name, QUICK).catch(() => null)) ?? '';
const valueOf = (locator: Locator) => locator.inputValue(QUICK).catch(() => '');
const visible = (locator: Locator) => locator.waitFor({ state: 'visible', timeout: 15_000 });
/** How long the page may take to show something: a generation takes a few seconds at the fake Segmind. */
const SOON = { timeout: 15_000 };
const LATER = { timeout: 45_000 };

/** The card of a generation, wherever it is shown. */
const card = (id: string, within: Locator | Page = page) => within.locator(`article[data-generation-id="${id}"]`).first();

/** Submits the extend form and returns the id of the generation it started. */
async function submitExtend(upload = false): Promise<string> {
  const multipart = (request: Request) => /^multipart\/form-data/.test(request.headers()['content-type'] ?? '');
  const answered = page.waitForResponse((response) => (upload ? multipart(response.request()) : operationOf(response.request()) === 'StudioExtendVideo'));
  await page.getByRole('button', { name: 'Extend', exact: true }).click();
  const body = (await (await answered).json()) as { data: { extendVideo: { __typename: string; generation?: { id: string } } } };
  expect(body.data.extendVideo.__typename, JSON.stringify(body)).toBe('ExtendVideoSuccess');
  return body.data.extendVideo.generation!.id;
}

/** Records every status a card shows, as it changes, in the page (window.__statuses). */
async function recordStatuses(): Promise<void> {
  await page.evaluate(`(() => {
    window.__statuses = [];
    const record = (el) => el.dataset && el.dataset.generationId && window.__statuses.push([el.dataset.generationId, el.dataset.status]);
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.type === 'attributes') record(m.target);
        for (const node of m.addedNodes) {
          if (node.nodeType !== 1) continue;
          record(node);
          node.querySelectorAll('[data-generation-id]').forEach(record);
        }
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  })()`);
}

async function statusesOf(id: string): Promise<string[]> {
  const seen = (await page.evaluate('window.__statuses')) as [string, string][];
  return seen.filter(([of]) => of === id).map(([, status]) => status).filter((status, index, all) => status !== all[index - 1]);
}

interface MediaState {
  readyState: number;
  currentTime: number;
  paused: boolean;
  src: string;
}
const mediaState = (video: Locator) =>
  video.evaluate((element) => {
    const media = element as unknown as MediaState;
    return { readyState: media.readyState, currentTime: media.currentTime, paused: media.paused, src: media.src };
  });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium), as .ci/run does`);
  // Slow enough to see each status: 0.8 s queued and 1.5 s processing at the fake Segmind, which
  // fetches each source as Segmind does (a missing one fails the job; an output continues its source).
  // A call to it may take 30 s, so that a submit held back on purpose (the cancel test) stays RUNNING.
  stack = await startStack({ segmind: { queueMs: 800, processingMs: 1500, fetchSources: true }, env: { UPSTREAM_TIMEOUT_MS: '30000' } });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Failed requests the studio shows itself (a refused key) log "Failed to load resource"; anything else is a problem.
  page.on('console', (message) => message.type() === 'error' && !message.text().startsWith('Failed to load resource') && problems.push(`console: ${message.text()}`));
  page.on('request', (request) => {
    const name = operationOf(request);
    if (name) operations.push(name);
  });
  // Offline: the page may reach this server only (no CDN, no fonts, no analytics).
  await page.route(
    (url) => url.origin !== stack.app.url && url.origin !== stack.app.publicBaseUrl,
    (route) => {
      problems.push(`request outside the server: ${route.request().url()}`);
      return route.abort();
    },
  );
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

describe('the studio in a real browser', () => {
  it('is served at / with its bundle, and asks for a key: a wrong one is refused, a right one kept', async () => {
    const response = await page.goto(`${stack.app.url}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await visible(page.getByRole('heading', { name: 'extendql studio' }));
    await screenshot('key-prompt');

    await page.getByLabel('API key').fill('xq_not-a-key');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => textOf(page.locator('#api-key-error')), SOON).toContain('not accepted');

    await page.getByLabel('API key').fill(stack.key);
    await page.getByRole('button', { name: 'Continue' }).click();
    await visible(page.getByRole('heading', { name: 'Extend a video' }));
    await visible(page.getByRole('button', { name: 'Forget key' }));
    expect(await page.evaluate(`localStorage.getItem('extendql.apiKey')`)).toBe(stack.key);
    await expect.poll(() => textOf(page.locator('.empty-state')), SOON).toContain('No generations yet');
  });

  let first: string;
  it('extends the sample clip and follows the card QUEUED → RUNNING → SUCCEEDED live, without polling or a reload', async () => {
    await page.evaluate('window.__sameDocument = true');
    await recordStatuses();
    await page.getByRole('button', { name: 'Use the sample clip' }).click();
    await expect.poll(() => valueOf(page.getByLabel('Video URL')), SOON).toBe(`${stack.app.url}/samples/beach.mp4`);
    await page.getByLabel('Prompt', { exact: true }).fill('The camera glides forward as waves roll onto the shore at sunset');
    await page.getByLabel('Quality').selectOption('Q720P');
    await expect.poll(() => textOf(page.getByTestId('estimate')), SOON).toBe('$0.50');
    await screenshot('form');

    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    const before = operations.length;
    first = await submitExtend();
    await expect.poll(() => attributeOf(card(first), 'data-status'), LATER).toBe('SUCCEEDED');
    expect(await statusesOf(first)).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    // Live over one WebSocket; over HTTP only the mutation and one read of the header's usage (nothing polled).
    expect(operations.slice(before)).toEqual(['StudioExtendVideo', 'StudioViewer']);
    expect(sockets).toEqual([`${stack.app.url.replace('http:', 'ws:')}/graphql`]);
    await expect.poll(() => textOf(card(first)), SOON).toContain('720p · 5 s · Normal');
    await expect.poll(() => textOf(card(first)), SOON).toContain('The camera glides forward');
  });

  it('plays the finished video in its card', async () => {
    const video = card(first).locator('video');
    await expect.poll(() => attributeOf(video, 'src'), SOON).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]+\\.mp4$`));
    await video.evaluate((element) => {
      const media = element as unknown as { muted: boolean; play(): Promise<void> };
      media.muted = true;
      return media.play();
    });
    await expect.poll(async () => (await mediaState(video)).readyState, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    const start = (await mediaState(video)).currentTime;
    await expect.poll(async () => (await mediaState(video)).currentTime, { timeout: 15_000 }).toBeGreaterThan(start + 0.2);
    await screenshot('playing');
  });

  let chained: string;
  it('chains from the card, and the chain view plays the source and its extensions in order', async () => {
    await card(first).getByRole('button', { name: 'Extend this' }).click();
    await expect.poll(() => textOf(page.locator('.chained')), SOON).toContain('The camera glides forward');
    await expect.poll(() => valueOf(page.getByLabel('Quality')), SOON).toBe('');
    await page.getByLabel('Prompt', { exact: true }).fill('Night falls over the bay');
    chained = await submitExtend();
    await expect.poll(() => attributeOf(card(chained), 'data-status'), LATER).toBe('SUCCEEDED');
    await expect.poll(() => textOf(card(chained)), SOON).toContain('Extends an earlier generation');
    await expect.poll(() => textOf(card(chained)), SOON).toContain('720p');

    await card(chained).getByRole('link', { name: 'Chain' }).click();
    await visible(page.getByRole('heading', { name: 'Chain of 2 generations' }));
    const lineage = page.getByTestId('lineage').locator('article');
    await expect.poll(() => lineage.count(), SOON).toBe(2);
    await expect.poll(() => attributeOf(lineage.nth(0), 'data-generation-id'), SOON).toBe(first);
    await expect.poll(() => attributeOf(lineage.nth(1), 'data-generation-id'), SOON).toBe(chained);
    const urls = async (id: string) => (await mediaState(card(id, page.getByTestId('lineage')).locator('video'))).src;
    const order = page.getByRole('list', { name: 'Play order' }).locator('button');
    await expect.poll(() => order.count(), SOON).toBe(3);
    expect(await order.evaluateAll((buttons) => buttons.map((button) => (button as unknown as { dataset: { url: string } }).dataset.url))).toEqual([
      `${stack.app.url}/samples/beach.mp4`,
      await urls(first),
      await urls(chained),
    ]);
    // When a clip ends, the player goes on with the next one.
    const current = () => textOf(page.getByRole('list', { name: 'Play order' }).locator('li[aria-current="true"]'));
    await expect.poll(current, SOON).toBe('The first video');
    await page.locator('.chain-player video').dispatchEvent('ended');
    await expect.poll(current, SOON).toContain('Extension 1: The camera glides forward');
    await expect.poll(async () => (await mediaState(page.locator('.chain-player video'))).src, SOON).toBe(await urls(first));
    await screenshot('chain');

    // The source's chain view lists the extension.
    await page.goto(`${stack.app.url}/#/generation/${encodeURIComponent(first)}`);
    await expect.poll(() => page.getByTestId('extensions').locator('article').count(), SOON).toBe(1);
    await visible(card(chained, page.getByTestId('extensions')));
    await page.getByRole('link', { name: '← All generations' }).click();
    await visible(page.getByRole('heading', { name: 'Extend a video' }));
  });

  it('uploads a file through the file input (multipart) and follows it to SUCCEEDED', async () => {
    const clip = Buffer.from(await (await fetch(`${stack.app.url}/samples/beach.mp4`)).arrayBuffer());
    await page.getByRole('radio', { name: 'Upload a file' }).click();
    // A file dropped on the upload area is taken as the one to send.
    await page.evaluate(
      `(() => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(16)], 'dropped.mov', { type: 'video/quicktime' }));
        const zone = document.querySelector('.drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
      })()`,
    );
    await expect.poll(() => textOf(page.locator('.drop-zone')), SOON).toContain('dropped.mov');
    await page.locator('#video-file').setInputFiles({ name: 'my-beach.mp4', mimeType: 'video/mp4', buffer: clip });
    await expect.poll(() => textOf(page.locator('.drop-zone')), SOON).toContain('my-beach.mp4');
    await page.getByLabel('Prompt', { exact: true }).fill('Gulls rise from the surf');
    await page.getByLabel('Quality').selectOption('Q360P');
    const id = await submitExtend(true);
    await expect.poll(() => attributeOf(card(id), 'data-status'), LATER).toBe('SUCCEEDED');
    const generation = await waitForTerminal(stack, id);
    expect(generation.sourceVideoUrl).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]+\\.mp4$`));
    await expect.poll(() => textOf(page.locator('.drop-zone')), SOON).toContain('Drop an MP4 or MOV here');
  });

  it('shows the typed error for FAST + 8 s next to the duration, and starts nothing', async () => {
    await page.getByRole('radio', { name: 'Video URL' }).click();
    await page.getByRole('button', { name: 'Use the sample clip' }).click();
    await page.getByLabel('Prompt', { exact: true }).fill('Waves crash faster');
    await page.getByLabel('Quality').selectOption('Q540P');
    await page.locator('label', { hasText: 'Fast' }).click();
    await page.locator('label', { hasText: '8 s' }).click();
    await expect.poll(() => textOf(page.locator('.rules li.broken')), SOON).toBe('Fast motion: 5 s only');

    const cards = await page.locator('.history article').count();
    const answered = page.waitForResponse((response) => operationOf(response.request()) === 'StudioExtendVideo');
    await page.getByRole('button', { name: 'Extend', exact: true }).click();
    const body = (await (await answered).json()) as { data: { extendVideo: { __typename: string } } };
    expect(body.data.extendVideo.__typename).toBe('InvalidInputError');
    await expect.poll(() => textOf(page.locator('#duration-error')), SOON).toBe('FAST motion requires a duration of 5 seconds');
    await expect.poll(() => attributeOf(page.locator('fieldset#duration'), 'aria-describedby'), SOON).toBe('duration-error');
    await screenshot('typed-error');
    expect(await page.locator('.history article').count()).toBe(cards);

    await page.locator('label', { hasText: '5 s' }).click();
    await expect.poll(() => page.locator('#duration-error').count(), SOON).toBe(0);
    await page.locator('label', { hasText: 'Normal' }).click();
  });

  it('cancels a generation from its card', async () => {
    // The fake Segmind holds the submit for a while, so the generation is still RUNNING when canceled.
    stack.segmind.faults.inject('submit', { kind: 'delay', ms: 12_000 });
    await page.getByLabel('Prompt', { exact: true }).fill('A storm rolls in');
    const id = await submitExtend();
    await expect.poll(() => attributeOf(card(id), 'data-status'), SOON).toBe('RUNNING');
    await screenshot('in-flight');
    await card(id).getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => attributeOf(card(id), 'data-status'), SOON).toBe('CANCELED');
    await expect.poll(() => textOf(card(id)), SOON).toContain('Canceled');
    await expect.poll(() => card(id).getByRole('button', { name: 'Cancel' }).count(), SOON).toBe(0);
  });

  it('pages the history as it scrolls (Relay pagination), filters by status and explains failures', async () => {
    // 14 generations whose source is missing: the fake Segmind fails them at once.
    const failing: string[] = [];
    for (let index = 0; index < 14; index++) {
      const result = await stack.execute(ExtendVideoBriefDocument, { input: { videoUrl: `${stack.app.url}/samples/missing-${index}.mp4`, prompt: `missing ${index}` } });
      if (result.data?.extendVideo.__typename !== 'ExtendVideoSuccess') throw new Error(JSON.stringify(result));
      failing.push(result.data.extendVideo.generation.id);
    }
    for (const id of failing) expect((await waitForTerminal(stack, id)).status).toBe('FAILED');

    await page.reload();
    const history = page.locator('.history .grid article');
    await expect.poll(() => textOf(page.locator('#history-title .count')), SOON).toBe('18');
    await expect.poll(() => attributeOf(history.first(), 'data-generation-id'), SOON).toBe(failing.at(-1));
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await expect.poll(() => history.count(), SOON).toBe(18);

    await page.getByLabel('Status').selectOption('FAILED');
    await expect.poll(() => textOf(page.locator('#history-title .count')), SOON).toBe('14');
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await expect.poll(() => history.count(), SOON).toBe(14);
    expect(new Set(await history.evaluateAll((cards) => cards.map((c) => (c as unknown as { dataset: { status: string } }).dataset.status)))).toEqual(new Set(['FAILED']));
    await expect.poll(() => textOf(card(failing[0]!).locator('.media.failed')), SOON).toContain('HTTP 404');

    await page.getByLabel('Status').selectOption('SUCCEEDED');
    await expect.poll(() => history.count(), SOON).toBe(3);
    await page.getByLabel('Status').selectOption('');
    await expect.poll(() => history.count(), SOON).toBeGreaterThanOrEqual(12);
    await page.evaluate('window.scrollTo(0, 0)');
    await screenshot('history');
  });

  it('fits a phone screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await visible(page.getByRole('heading', { name: 'Extend a video' }));
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await page.getByRole('heading', { name: 'History' }).scrollIntoViewIfNeeded();
    await screenshot('phone');
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  it('forgets the key', async () => {
    await page.getByRole('button', { name: 'Forget key' }).click();
    await visible(page.getByLabel('API key'));
    expect(await page.evaluate(`localStorage.getItem('extendql.apiKey')`)).toBeNull();
    await page.reload();
    await visible(page.getByLabel('API key'));
    expect(problems).toEqual([]);
  });
});

describe('the studio against a server that runs only its trusted documents (ALLOW_ARBITRARY_OPERATIONS=false)', () => {
  let strict: Stack;
  let strictPage: Page;
  const bodies: string[] = [];
  const frames: string[] = [];

  beforeAll(async () => {
    strict = await startStack({ segmind: { queueMs: 300, processingMs: 600, fetchSources: true }, env: { ALLOW_ARBITRARY_OPERATIONS: 'false' } });
    strictPage = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    strictPage.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/graphql') bodies.push(request.postDataBuffer()?.toString('latin1') ?? '');
    });
    strictPage.on('websocket', (socket) => socket.on('framesent', (frame) => void frames.push(String(frame.payload))));
  });
  afterAll(async () => {
    await strictPage?.close();
    await strict?.close();
  });

  it('sends ids, never query text, over HTTP, multipart and the WebSocket, and works end to end', async () => {
    await strictPage.goto(`${strict.app.url}/`);
    await strictPage.getByLabel('API key').fill(strict.key);
    await strictPage.getByRole('button', { name: 'Continue' }).click();
    await visible(strictPage.getByRole('heading', { name: 'Extend a video' }));
    await strictPage.getByRole('button', { name: 'Use the sample clip' }).click();
    await strictPage.getByLabel('Prompt', { exact: true }).fill('Allowlisted waves');
    await strictPage.getByLabel('Quality').selectOption('Q360P');
    const answered = strictPage.waitForResponse((response) => /StudioExtendVideo/.test(response.request().postDataBuffer()?.toString('latin1') ?? ''));
    await strictPage.getByRole('button', { name: 'Extend', exact: true }).click();
    const body = (await (await answered).json()) as { data?: { extendVideo: { __typename: string; generation?: { id: string } } } };
    expect(body.data?.extendVideo.__typename, JSON.stringify(body)).toBe('ExtendVideoSuccess');
    const id = body.data!.extendVideo.generation!.id;
    await expect.poll(() => attributeOf(card(id, strictPage), 'data-status'), LATER).toBe('SUCCEEDED');

    // An upload: a multipart request whose operation is named by its id too.
    const clip = Buffer.from(await (await fetch(`${strict.app.url}/samples/beach.mp4`)).arrayBuffer());
    await strictPage.getByRole('radio', { name: 'Upload a file' }).click();
    await strictPage.locator('#video-file').setInputFiles({ name: 'strict.mp4', mimeType: 'video/mp4', buffer: clip });
    await strictPage.getByLabel('Prompt', { exact: true }).fill('Allowlisted upload');
    const uploaded = strictPage.waitForResponse((response) => /^multipart\/form-data/.test(response.request().headers()['content-type'] ?? ''));
    await strictPage.getByRole('button', { name: 'Extend', exact: true }).click();
    const uploadBody = (await (await uploaded).json()) as { data?: { extendVideo: { __typename: string; generation?: { id: string } } } };
    expect(uploadBody.data?.extendVideo.__typename, JSON.stringify(uploadBody)).toBe('ExtendVideoSuccess');
    await expect.poll(() => attributeOf(card(uploadBody.data!.extendVideo.generation!.id, strictPage), 'data-status'), LATER).toBe('SUCCEEDED');

    expect(bodies.length).toBeGreaterThan(2);
    for (const sent of bodies.filter((text) => text.startsWith('{'))) {
      expect(sent).not.toMatch(/"query":/);
      expect(sent).toMatch(/"persistedQuery":\{[^}]*"sha256Hash":"[0-9a-f]{64}"/);
    }
    const subscribes = frames.map((frame) => JSON.parse(frame) as { type: string; payload?: { query?: string; extensions?: unknown } }).filter((message) => message.type === 'subscribe');
    expect(subscribes.length).toBeGreaterThan(0);
    for (const message of subscribes) {
      expect(message.payload?.query ?? '').toBe('');
      expect(JSON.stringify(message.payload?.extensions)).toMatch(/"sha256Hash":"[0-9a-f]{64}"/);
    }
  });
});

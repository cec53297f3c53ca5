import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.ts';

/** Debian's Chromium (`apt-get install chromium`); .ci/run installs it when it is missing. */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT_DIR = join(tmpdir(), 'extendql-screenshots');

/**
 * Yoga's GraphiQL page loads its script, stylesheet and Monaco workers from unpkg.com. When
 * @graphql-yoga/graphiql is installed they are served from node_modules instead, so the test runs
 * offline; otherwise the browser fetches them from unpkg.
 */
function localGraphiqlDist(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@graphql-yoga/graphiql/package.json')), 'dist');
  } catch {
    return null;
  }
}

/** The text of a Monaco editor: its rendered lines in screen order (Monaco reuses line nodes). */
async function editorText(editor: Locator): Promise<string> {
  const lines = await editor.locator('.view-line').evaluateAll((nodes) =>
    nodes.map((node) => ({ top: Number.parseFloat((node as unknown as { style: { top: string } }).style.top) || 0, text: node.textContent ?? '' })),
  );
  return lines
    .sort((a, b) => a.top - b.top)
    .map((line) => line.text.replaceAll('\u00a0', ' '))
    .join('\n');
}

/**
 * Replaces the whole content of a Monaco editor, as a user would: click into it, select all and
 * paste. Pasting, not typing: Monaco would auto-close and auto-indent typed JSON.
 */
async function replaceEditorText(page: Page, editor: Locator, text: string) {
  await editor.locator('.view-lines').click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // The page has no clipboard of its own in headless mode: the paste event carries the text.
  await page.evaluate((pasted) => {
    const dom = globalThis as unknown as {
      document: { activeElement: { dispatchEvent(event: unknown): boolean } | null };
      DataTransfer: new () => { setData(type: string, data: string): void };
      ClipboardEvent: new (type: string, init: unknown) => unknown;
    };
    const data = new dom.DataTransfer();
    data.setData('text/plain', pasted);
    dom.document.activeElement?.dispatchEvent(new dom.ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
  const shown = async () => (await editorText(editor)).replace(/\s+/g, '');
  await expect.poll(shown).toBe(text.replace(/\s+/g, ''));
}

/**
 * The first string value of a field in the result pane's JSON. The pane wraps long values over
 * several screen lines; ids and URLs hold no whitespace, so the wrapping is removed.
 */
function jsonString(text: string, field: string): string | undefined {
  return new RegExp(`"${field}":\\s*"([^"]+)"`).exec(text)?.[1]?.replace(/\s+/g, '');
}

/**
 * Switches GraphiQL to a tab. The first click after typing in an editor can be lost while the
 * editor gives up focus, so it clicks again until the tab is the selected one.
 */
async function selectTab(page: Page, title: string) {
  const tab = page.locator('.graphiql-tab', { has: page.locator('.graphiql-tab-button', { hasText: title }) });
  for (let attempt = 0; attempt < 10; attempt++) {
    await tab.locator('.graphiql-tab-button').click();
    for (let check = 0; check < 10; check++) {
      if ((await tab.getAttribute('aria-selected')) === 'true') return;
      await page.waitForTimeout(50);
    }
  }
  throw new Error(`the ${title} tab could not be selected`);
}

/** Clicks the run button and returns the result pane's text once it shows the server's answer. */
async function run(page: Page): Promise<string> {
  const pane = page.locator('.graphiql-response');
  const answered = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/graphql' && !r.request().postData()?.includes('IntrospectionQuery'),
    { timeout: 15_000 },
  );
  await page.locator('.graphiql-execute-button').click();
  const response = await answered.catch(async (error: unknown) => {
    throw new Error(`running sent no request; the result pane shows: ${await editorText(pane)}`, { cause: error });
  });
  // Compared without whitespace: the pane pretty-prints the JSON and wraps long lines.
  const expected = JSON.stringify(await response.json()).replace(/\s+/g, '');
  let shown = '';
  for (let attempt = 0; attempt < 100; attempt++) {
    shown = await editorText(pane);
    if (shown.replace(/\s+/g, '') === expected) return shown;
    await page.waitForTimeout(50);
  }
  throw new Error(`the result pane does not show the response ${expected}; it shows: ${shown}`);
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.close());

describe('GraphiQL in a real browser', () => {
  it('shares one key across its tabs: extends the sample, follows it in the subscription tab and reads it in the query tab', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium), as .ci/run does`);
    }
    const profile = await mkdtemp(join(tmpdir(), 'extendql-chromium-'));
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1400, height: 1000 },
      });
      const dist = localGraphiqlDist();
      if (dist) {
        await context.route(/^https:\/\/unpkg\.com\/@graphql-yoga\/graphiql@[^/]+\/dist\/(.+)$/, async (route) => {
          const file = new URL(route.request().url()).pathname.replace(/^.*?\/dist\//, '');
          await route.fulfill({
            body: await readFile(join(dist, file)),
            contentType: file.endsWith('.css') ? 'text/css' : 'application/javascript',
            headers: { 'access-control-allow-origin': '*' },
          });
        });
      }
      // The favicon is decoration; it need not come from the network.
      await context.route(/^https:\/\/raw\.githubusercontent\.com\//, (route) => route.fulfill({ status: 404 }));

      const page = context.pages()[0] ?? (await context.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(stack.graphqlUrl);

      const queryEditor = page.locator('.graphiql-query-editor');
      try {
        await page.locator('.graphiql-execute-button').waitFor({ timeout: 30_000 });
        await queryEditor.locator('.view-line').first().waitFor({ timeout: 30_000 });
      } catch (error) {
        throw new Error(
          `GraphiQL did not render${dist ? '' : ' (its assets come from unpkg.com: install @graphql-yoga/graphiql to serve them locally)'}; page errors: ${pageErrors.join('; ') || 'none'}`,
          { cause: error },
        );
      }

      // Every request GraphiQL sends to /graphql, with the key it carried.
      const sent: { operation: string; key: string | undefined }[] = [];
      page.on('request', (request) => {
        const url = new URL(request.url());
        if (url.pathname !== '/graphql' || request.resourceType() === 'document') return;
        // Subscriptions over SSE are GETs with the query in the URL.
        const text = request.method() === 'GET' ? (url.searchParams.get('query') ?? '') : (request.postData() ?? '');
        const operation = /(?:query|mutation|subscription) (\w+)/.exec(text)?.[1] ?? 'introspection';
        sent.push({ operation, key: request.headers()['x-api-key'] });
      });

      // GraphiQL opens on the extendVideo example; its tabs have no key of their own.
      await expect.poll(() => page.locator('.graphiql-tab-active').textContent()).toContain('ExtendVideo');
      await expect
        .poll(() => editorText(queryEditor), { message: "GraphiQL's query editor should open on the extendVideo example" })
        .toContain('mutation ExtendVideo');
      expect(await page.locator('.graphiql-tab-button').allTextContents()).toEqual(['ExtendVideo', 'Follow', 'Generation', 'History']);
      await page.getByRole('button', { name: 'Headers' }).click();
      // The headers and variables editors share the tools pane; the visible one is the open tab's.
      const toolEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)');
      await expect.poll(() => editorText(toolEditor)).toBe('{}');

      // One key, entered once in the key bar above GraphiQL, for every tab.
      await page.getByLabel('API key for every tab').fill(stack.key);
      await page.getByRole('button', { name: 'Use key' }).click();
      await expect.poll(() => page.locator('#xq-key-state').textContent()).toContain(`Key ${stack.key.slice(0, 7)}… is sent from every tab.`);
      expect(await page.getByLabel('API key for every tab').inputValue()).toBe('');

      const created = await run(page);
      expect(created).toContain('"ExtendVideoSuccess"');
      const id = jsonString(created, 'id');
      expect(id, created).toBeTruthy();

      // The subscription tab follows the generation live, with the same key and nothing pasted into its headers.
      await selectTab(page, 'Follow');
      await expect.poll(() => editorText(queryEditor)).toContain('subscription Follow');
      await page.getByRole('button', { name: 'Headers' }).click();
      await expect.poll(() => editorText(toolEditor)).toBe('{}');
      await page.getByRole('button', { name: 'Variables' }).click();
      await expect.poll(() => editorText(toolEditor)).toContain('paste the generation id');
      await replaceEditorText(page, toolEditor, JSON.stringify({ id }, null, 2));
      await page.locator('.graphiql-execute-button').click();
      const pane = page.locator('.graphiql-response');
      await expect.poll(() => editorText(pane), { timeout: 30_000 }).toMatch(/"status":\s*"SUCCEEDED"/);
      const streamed = await editorText(pane);
      expect(jsonString(streamed, 'url')).toMatch(/^http:\/\/[^/]+\/videos\/[A-Za-z0-9_-]+\.mp4$/);

      // The query tab too.
      await selectTab(page, 'Generation');
      await expect.poll(() => editorText(queryEditor)).toContain('query Generation');
      await page.getByRole('button', { name: 'Variables' }).click();
      await replaceEditorText(page, toolEditor, JSON.stringify({ id }, null, 2));
      const result = await run(page);
      expect(result).toContain('"status": "SUCCEEDED"');
      const url = jsonString(result, 'url');
      expect(url, result).toMatch(/^http:\/\/[^/]+\/videos\/[A-Za-z0-9_-]+\.mp4$/);
      expect(url!.startsWith(`${stack.app.publicBaseUrl}/videos/`)).toBe(true);
      const video = await fetch(url!);
      expect(video.status).toBe(200);
      expect(video.headers.get('content-type')).toBe('video/mp4');
      await video.arrayBuffer();

      // Every operation of every tab carried the one key.
      const operations = sent.filter((request) => request.operation !== 'introspection');
      expect(operations.map((request) => request.operation)).toEqual(['ExtendVideo', 'Follow', 'Generation']);
      expect(operations.every((request) => request.key === stack.key)).toBe(true);

      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const screenshot = join(SCREENSHOT_DIR, `graphiql-${Date.now()}.png`);
      await page.screenshot({ path: screenshot });
      const png = await readFile(screenshot);
      expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      expect((await stat(screenshot)).size).toBeGreaterThan(20_000);
      console.log(`GraphiQL screenshot: ${screenshot}`);
      expect(pageErrors).toEqual([]);

      // The studio is one link away, and already has the key.
      await page.getByRole('link', { name: 'Open the studio →' }).click();
      await page.getByRole('heading', { name: 'Extend a video' }).waitFor({ timeout: 15_000 });
      // Forgotten in the studio, forgotten in GraphiQL: they share it.
      await page.getByRole('button', { name: 'Forget key' }).click();
      await page.goto(stack.graphqlUrl);
      await expect.poll(() => page.locator('#xq-key-state').textContent()).toContain('No key yet');
    } catch (error) {
      const page = context?.pages()[0];
      if (page) {
        await mkdir(SCREENSHOT_DIR, { recursive: true });
        const screenshot = join(SCREENSHOT_DIR, `graphiql-failure-${Date.now()}.png`);
        await page.screenshot({ path: screenshot }).then(
          () => console.log(`GraphiQL at the failure: ${screenshot}`),
          () => undefined,
        );
      }
      throw error;
    } finally {
      await context?.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});

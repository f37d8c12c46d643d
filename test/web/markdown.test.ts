import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';
import { parseModels } from '../../src/modelsFile.ts';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { api, startServer } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

const available = chromiumAvailable();

const MARKDOWN = [
  'Here is **the plan**:',
  '',
  '- first, install',
  '- then, run `npm start`',
  '',
  '```js',
  "const answer = 6 * 7;",
  'console.log(answer);',
  '```',
  '',
  'See [the docs](https://example.com/docs).',
].join('\n');

const HOSTILE = [
  'Look: <img src=x onerror="window.__pwned = (window.__pwned || 0) + 1">',
  '',
  '<script>window.__pwned = "script"</script>',
  '',
  '[click me](javascript:window.__pwned="link") and <a href="javascript:window.__pwned=1">this</a>',
  '',
  '<svg onload="window.__pwned=\'svg\'"></svg><iframe src="javascript:parent.__pwned=1"></iframe>',
  '',
  '![pixel](x" onerror="window.__pwned=\'md-img\')',
].join('\n');

/** The markdown reply holds still for this long once its list is out, so a loaded machine still sees it mid-stream. */
const PAUSE_AFTER_LIST_MS = 1500;

/** A model that streams a fixed text for each prompt, cut in awkward places (mid-fence, mid-tag). */
function scriptedModel(replies: Record<string, string>): ModelProvider {
  return {
    name: 'scripted',
    async *stream(request, signal): AsyncIterable<ProviderChunk> {
      const text = replies[request.prompt] ?? request.prompt;
      const listEnd = text === MARKDOWN ? MARKDOWN.indexOf('```') : -1;
      for (let at = 0; at < text.length; at += 7) {
        const pause = listEnd > 0 && at < listEnd && at + 7 >= listEnd;
        await new Promise((resolve) => setTimeout(resolve, pause ? PAUSE_AFTER_LIST_MS : 5));
        if (signal.aborted) return;
        yield { text: text.slice(at, at + 7), last: false };
      }
      yield { text: '', last: true };
    },
  };
}

describe.skipIf(!available)('the chat page renders the assistant’s markdown, safely, as it streams', () => {
  let running: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    running = await startServer({ provider: scriptedModel({ markdown: MARKDOWN, hostile: HOSTILE }) });
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(5000);
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: running.url });
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  async function chat(): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${running.url}/`);
    await page.waitForSelector('#connection[data-state="open"]');
    return { page, errors };
  }

  async function ask(page: Page, text: string) {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
    await page.waitForSelector('.message.assistant[data-status="complete"]');
    return page.locator('.message.assistant .bubble').last();
  }

  it('a markdown reply renders: a list, inline code, a link, and a fenced code block with a copy button', async () => {
    const { page, errors } = await chat();
    const bubble = await ask(page, 'markdown');
    await expect(bubble.locator('strong').textContent()).resolves.toBe('the plan');
    await expect(bubble.locator('ul > li').allTextContents()).resolves.toEqual(['first, install', 'then, run npm start']);
    await expect(bubble.locator('li code').textContent()).resolves.toBe('npm start');
    await expect(bubble.locator('pre code').textContent()).resolves.toBe('const answer = 6 * 7;\nconsole.log(answer);\n');
    await expect(bubble.locator('pre code').getAttribute('class')).resolves.toBe('language-js');
    const link = bubble.locator('a', { hasText: 'the docs' });
    await expect(link.getAttribute('href')).resolves.toBe('https://example.com/docs');
    await expect(link.getAttribute('rel')).resolves.toContain('noopener');
    await page.screenshot({ path: screenshotPath('chat-markdown') });

    await bubble.locator('.code-block .copy').click();
    await bubble.locator('.code-block .copy', { hasText: 'Copied' }).waitFor();
    await expect(page.evaluate('navigator.clipboard.readText()')).resolves.toBe('const answer = 6 * 7;\nconsole.log(answer);\n');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('renders while it streams, not only at the end', async () => {
    const { page } = await chat();
    await page.fill('#input', 'markdown');
    await page.press('#input', 'Enter');
    // The list is there while the reply is still streaming.
    await page.locator('.message.assistant[data-status="streaming"] .bubble ul > li').first().waitFor();
    await page.waitForSelector('.message.assistant[data-status="complete"] .bubble pre code');
    await page.close();
  });

  it('a reply with <img onerror>, <script>, javascript: links, svg and iframes runs nothing', async () => {
    const { page, errors } = await chat();
    const bubble = await ask(page, 'hostile');
    await new Promise((resolve) => setTimeout(resolve, 300)); // time for an onerror to fire, were there one
    await expect(page.evaluate('window.__pwned')).resolves.toBeUndefined();
    await expect(bubble.locator('img, script, svg, iframe, [onerror], [onload]').count()).resolves.toBe(0);
    const hrefs = await bubble.locator('a').evaluateAll((links) => links.map((link) => link.getAttribute('href') ?? ''));
    expect(hrefs.some((href) => href.toLowerCase().startsWith('javascript:'))).toBe(false);
    // The raw HTML is shown as the text the model wrote.
    await expect(bubble.textContent()).resolves.toContain('<img src=x onerror=');
    await expect(bubble.textContent()).resolves.toContain('<script>window.__pwned = "script"</script>');
    await page.screenshot({ path: screenshotPath('chat-hostile-markdown') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a user’s own text is shown as written, never as markup', async () => {
    const { page } = await chat();
    await ask(page, '**not bold** <b>nor this</b>');
    await expect(page.locator('.message.user .bubble').last().textContent()).resolves.toBe('**not bold** <b>nor this</b>');
    await expect(page.locator('.message.user .bubble b, .message.user .bubble strong').count()).resolves.toBe(0);
    await page.close();
  });
});

describe.skipIf(!available)('the chat page’s model picker', () => {
  let running: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    const models = parseModels({ default: 'sim', models: [{ name: 'sim', provider: 'simulated' }, { name: 'sim-two', provider: 'simulated' }] }, {});
    running = await startServer({ models, simIntervalMs: 20 });
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(5000);
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  it('lists /v1/models, sends the chosen one with the message, remembers it, and shows which model answered', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${running.url}/`);
    await page.waitForSelector('#connection[data-state="open"]');
    await expect(page.locator('#model option').allTextContents()).resolves.toEqual(['default', 'sim', 'sim-two']);
    await page.selectOption('#model', 'sim-two');
    await page.fill('#input', 'which model?');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.message.assistant[data-status="complete"]');
    await expect(page.locator('.message.assistant .tag').last().textContent()).resolves.toBe('sim-two');
    const sessionId = new URLSearchParams(new URL(page.url()).hash.slice(1)).get('session') ?? '';
    const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).at(-1)).toMatchObject({ role: 'assistant', model: 'sim-two' });
    await page.reload();
    await page.waitForSelector('#connection[data-state="open"]');
    await expect(page.locator('#model').inputValue()).resolves.toBe('sim-two');
    await page.screenshot({ path: screenshotPath('chat-model-picker') });
    await page.close();
  });
});

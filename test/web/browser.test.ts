import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const ADMIN_TOKEN = 'browser-test-admin-token-0001';
const available = chromiumAvailable();

// Real chromium, real server on a loopback port; the simulated model streams
// five chunks per reply, slowly enough for a person (and a test) to act mid-reply.
describe.skipIf(!available)('web chat page and inspector in headless chromium', () => {
  let running: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    running = await startServer({ simIntervalMs: 250, inspector: { adminToken: ADMIN_TOKEN } });
    browser = await launchBrowser();
    // Fail a step in seconds, with its selector in the message, rather than time out the test.
    browser.context.setDefaultTimeout(5000);
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  async function openChat(hash = ''): Promise<Page> {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${running.url}/${hash}`);
    await page.waitForSelector('#connection[data-state="open"]');
    expect(errors).toEqual([]);
    return page;
  }

  const sessionOf = (page: Page) => new URLSearchParams(new URL(page.url()).hash.slice(1)).get('session') ?? '';
  const replies = (page: Page) => page.locator('.message.assistant');

  async function send(page: Page, text: string) {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
  }

  it('sends a message and shows the reply stream in: five chunks, then complete', async () => {
    const page = await openChat();
    expect(sessionOf(page)).toMatch(/^[\w-]{22}$/);
    await expect(page.locator('#connection').textContent()).resolves.toBe('Connected');
    await send(page, 'hello');
    await page.waitForSelector('.message.assistant[data-status="streaming"]');
    await page.screenshot({ path: screenshotPath('chat-streaming') });
    await page.waitForSelector('.message.assistant[data-status="complete"]');
    const text = await replies(page).first().locator('.bubble').textContent();
    expect(text).toBe([1, 2, 3, 4, 5].map((n) => `chunk ${n}: hello`).join(''));
    await expect(page.locator('.message.user .bubble').textContent()).resolves.toBe('hello');
    await expect(page.locator('#stop').isDisabled()).resolves.toBe(true);
    await page.screenshot({ path: screenshotPath('chat-complete') });
    // The history is the server's too.
    const view = (await (await fetch(`${running.url}/api/sessions/${sessionOf(page)}`)).json()) as { messages: { content: string }[] };
    expect(view.messages.at(-1)?.content).toBe(text);
    await page.close();
  });

  it('Stop cancels the reply mid-stream and keeps the partial text', async () => {
    const page = await openChat();
    await send(page, 'stop me');
    await page.locator('.message.assistant .bubble', { hasText: 'chunk 2' }).waitFor();
    await expect(page.locator('#stop').isEnabled()).resolves.toBe(true);
    await page.click('#stop');
    await page.waitForSelector('.message.assistant[data-status="cancelled"]');
    const partial = await replies(page).first().locator('.bubble').textContent();
    expect(partial).toContain('chunk 2: stop me');
    expect(partial).not.toContain('chunk 5');
    await expect(replies(page).first().locator('.tag').textContent()).resolves.toBe('stopped');
    await page.screenshot({ path: screenshotPath('chat-stopped') });
    await page.close();
  });

  it('a reload mid-reply shows the whole reply: history, then the rest resumed without gap', async () => {
    const page = await openChat();
    await send(page, 'survive reload');
    await page.locator('.message.assistant .bubble', { hasText: 'chunk 2' }).waitFor();
    await page.reload();
    await page.waitForSelector('#connection[data-state="open"]');
    await page.waitForSelector('.message.assistant[data-status="complete"]');
    const text = await replies(page).first().locator('.bubble').textContent();
    expect(text).toBe([1, 2, 3, 4, 5].map((n) => `chunk ${n}: survive reload`).join(''));
    await expect(replies(page).count()).resolves.toBe(1);
    await page.screenshot({ path: screenshotPath('chat-after-reload') });
    await page.close();
  });

  it('the inspector asks for the token, then shows the session in the right state as it moves', async () => {
    const chat = await openChat();
    const sessionId = sessionOf(chat);
    const inspector = await browser.context.newPage();
    await inspector.goto(`${running.url}/inspector`);
    await inspector.waitForSelector('#login:not([hidden])');
    await inspector.fill('#token', 'wrong-token-wrong-token');
    await inspector.click('#login button[type="submit"]');
    await inspector.locator('#login-error', { hasText: 'That token was not accepted.' }).waitFor();
    await inspector.fill('#token', ADMIN_TOKEN);
    await inspector.click('#login button[type="submit"]');
    await inspector.waitForSelector('#connection[data-state="open"]');
    await inspector.click(`tr[data-session-id="${sessionId}"]`);
    await inspector.waitForSelector('#detail-title[data-supervisor="dormant"][data-session=""]');

    await send(chat, 'inspect me');
    await inspector.waitForSelector('#detail-title[data-session="generating"]');
    await inspector.waitForSelector('[data-machine="session"] .node.active[data-state="generating"]');
    await inspector.waitForSelector(`tr[data-session-id="${sessionId}"] .state[data-value="generating"]`);
    await inspector.locator('#events', { hasText: 'chunk 1: inspect me' }).waitFor();
    await inspector.screenshot({ path: screenshotPath('inspector-generating') });
    // Reply done: the session actor ends and its supervisor goes back to dormant.
    await inspector.waitForSelector('#detail-title[data-supervisor="dormant"][data-session=""]');
    await inspector.waitForSelector('[data-machine="supervisor"] .node.active[data-state="dormant"]');
    const log = (await inspector.locator('#events').textContent()) ?? '';
    expect(log).toContain('dormant → running on user.message');
    expect(log).toContain('running → dormant on xstate.done.actor.session');
    await inspector.close();
    await chat.close();
  });
});

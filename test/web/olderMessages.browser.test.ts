import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const available = chromiumAvailable();

// A conversation longer than one page (50): the page shows the latest page and
// pages back through the store on request, never the whole history at once.
describe.skipIf(!available)('the chat page pages back through a long conversation', () => {
  let running: RunningServer;
  let browser: Browser;
  let sessionId = '';

  beforeAll(async () => {
    running = await startServer({ simChunks: 1, messagesPerMinute: 0 });
    const opened = await WsClient.session(running.wsUrl);
    sessionId = opened.sessionId;
    // 60 user messages and 60 replies: 120 messages, the latest 50 on the first page.
    for (let index = 0; index < 60; index += 1) {
      opened.client.send(`m${index}`);
      await opened.client.waitForCount((frame) => frame.type === 'completed', index + 1);
    }
    opened.client.close();
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(5000);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  it('shows the latest 50; "Load older messages" adds the pages before, in order, until none is left', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${running.url}/#session=${sessionId}`);
    await page.waitForSelector('#connection[data-state="open"]');
    const shown = page.locator('#log .message');
    await expect(shown.count()).resolves.toBe(50);
    await expect(shown.first().locator('.bubble').textContent()).resolves.toBe('m35');

    await page.click('#load-older');
    await expect.poll(() => shown.count(), { timeout: 5000 }).toBe(100);
    await expect(shown.first().locator('.bubble').textContent()).resolves.toBe('m10');
    await page.click('#load-older');
    await expect.poll(() => shown.count(), { timeout: 5000 }).toBe(120);
    await expect(page.locator('#load-older').isHidden()).resolves.toBe(true);
    await page.screenshot({ path: screenshotPath('chat-older') });

    // The whole conversation, in order, each user message followed by its reply.
    const texts = await shown.locator('.bubble').allTextContents();
    expect(texts.filter((_, index) => index % 2 === 0)).toEqual(Array.from({ length: 60 }, (_, index) => `m${index}`));
    expect(texts[1]).toContain('m0');
    // And new messages still arrive at the end.
    await page.fill('#input', 'after paging');
    await page.press('#input', 'Enter');
    await expect.poll(() => shown.count(), { timeout: 5000 }).toBe(122);
    // The reply's bubble comes with `accepted`, empty; its text with the first chunk.
    await expect.poll(() => shown.last().locator('.bubble').textContent(), { timeout: 5000 }).toContain('after paging');
    await page.close();
  });
});

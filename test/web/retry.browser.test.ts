import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { flaky } from '../support/flakyStore.ts';
import { startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const available = chromiumAvailable();

describe.skipIf(!available)('the chat page treats 1013 as "retry later", never as final', () => {
  let running: RunningServer;
  let browser: Browser;
  const store = flaky(createMemoryStore());

  beforeAll(async () => {
    running = await startServer({ store });
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(8000);
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
  });

  it('with the store down at open (1013, store_unavailable) it shows the notice, reconnects with backoff, and connects once the store is back', async () => {
    store.down = true;
    const page = await browser.context.newPage();
    const closes: number[] = [];
    await page.exposeFunction('noteClose', (code: number) => closes.push(code));
    // Watch the page's sockets (same behaviour; only their close codes are reported).
    await page.addInitScript({
      content: `{
        const Native = window.WebSocket;
        window.WebSocket = class extends Native {
          constructor(...args) {
            super(...args);
            this.addEventListener('close', (event) => window.noteClose(event.code));
          }
        };
      }`,
    });
    await page.goto(`${running.url}/`);
    await page.waitForSelector('#connection[data-state="reconnecting"]');
    await expect(page.locator('#notice').textContent()).resolves.toBe('Storage is unavailable right now; try again shortly.');
    await page.screenshot({ path: screenshotPath('chat-store-unavailable') });
    expect(closes[0]).toBe(1013);
    store.down = false;
    await page.waitForSelector('#connection[data-state="open"]');
    expect(closes.every((code) => code === 1013)).toBe(true);
    await page.fill('#input', 'back again');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.message.assistant[data-status="complete"]');
    await page.close();
  });
});

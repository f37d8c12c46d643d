import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser, screenshotPath } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { api, startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey, revokeKey } from '../support/keys.ts';
import type { TestKey } from '../support/keys.ts';

const available = chromiumAvailable();

// Real chromium against a real server with API keys: the cookie flow end to end.
describe.skipIf(!available)('signing in on the chat page (headless chromium)', () => {
  let running: RunningServer;
  let browser: Browser;
  let elsewhere: Server;
  let elsewhereUrl: string;
  let key: TestKey;

  beforeAll(async () => {
    running = await startServer({ simIntervalMs: 60, auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    browser = await launchBrowser();
    browser.context.setDefaultTimeout(5000);
    key = await createKey(running.url, 'alice');
    // Another origin on the same host (so the same site: SameSite alone would let the cookie go).
    elsewhere = createServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end('<!doctype html><title>another site</title><p>nothing to see</p>');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await running?.close();
    await new Promise((resolve) => elsewhere?.close(resolve));
  });

  async function page(url: string): Promise<Page> {
    const opened = await browser.context.newPage();
    const errors: string[] = [];
    opened.on('pageerror', (error) => errors.push(error.message));
    await opened.goto(url);
    expect(errors).toEqual([]);
    return opened;
  }

  async function send(chat: Page, text: string) {
    await chat.fill('#input', text);
    await chat.press('#input', 'Enter');
    await chat.locator('.message.assistant[data-status="complete"] .bubble', { hasText: `chunk 5: ${text}` }).waitFor();
  }

  const titles = (chat: Page) => chat.locator('#conversations .title').allTextContents();

  it('signs in from the printed link, drops the key from the address bar, keeps it from scripts, lists the conversations and survives a reload', async () => {
    const chat = await page(`${running.url}/#key=${key.key}`);
    await chat.waitForSelector('#connection[data-state="open"]');
    expect(new URL(chat.url()).hash).toMatch(/^#session=[\w-]{22}$/);
    expect(chat.url()).not.toContain(key.key);
    expect(await chat.evaluate('document.cookie')).toBe('');
    const [cookie] = await browser.context.cookies(running.url);
    expect(cookie).toMatchObject({ name: 'llm_chat_key', httpOnly: true, sameSite: 'Strict' });
    await expect(chat.locator('#who').textContent()).resolves.toBe('alice');

    await send(chat, 'plans for the weekend');
    await chat.locator('#conversations .title', { hasText: 'plans for the weekend' }).waitFor();
    const first = new URL(chat.url()).hash;
    await chat.click('#new-chat');
    await chat.waitForSelector('#connection[data-state="open"]');
    await send(chat, 'a second talk');
    await chat.locator('#conversations .title', { hasText: 'a second talk' }).waitFor();
    expect(await titles(chat)).toEqual(['a second talk', 'plans for the weekend']); // newest first
    await chat.screenshot({ path: screenshotPath('signed-in-conversations') });

    // Another key's conversations never show up here.
    const bob = await createKey(running.url, 'bob');
    await api(running.url, 'POST', '/api/sessions', { title: 'bob’s secret' }, bob.headers);

    await chat.reload();
    await chat.waitForSelector('#connection[data-state="open"]');
    await expect(chat.locator('#sign-in').isHidden()).resolves.toBe(true);
    await chat.locator('#conversations .title', { hasText: 'plans for the weekend' }).waitFor();
    expect(await titles(chat)).toEqual(['a second talk', 'plans for the weekend']);
    // Opening one shows its history.
    await chat.click('#conversations button:has-text("plans for the weekend")');
    await chat.locator('.message.user .bubble', { hasText: 'plans for the weekend' }).waitFor();
    expect(new URL(chat.url()).hash).toBe(first);
    await expect(chat.locator('.message.user').count()).resolves.toBe(1);
    await chat.close();
  });

  it('a page of another origin gets nothing: its EventSource and WebSocket are refused though the browser holds the cookie', async () => {
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const before = running.server.admission.connections;
    const other = await page(elsewhereUrl);
    const outcome = await other.evaluate(
      async ({ base, ws, id }) => {
        const events: string[] = [];
        const source = new EventSource(`${base}/sse/${id}`, { withCredentials: true });
        source.onmessage = (event) => events.push(`sse message ${String(event.data)}`);
        source.onopen = () => events.push('sse open');
        const sse = await new Promise<string>((resolve) => {
          source.onerror = () => resolve(`sse error, state ${source.readyState}`);
          setTimeout(() => resolve('sse no error'), 3000);
        });
        source.close();
        const socket = new WebSocket(`${ws}?sessionId=${id}`);
        socket.onmessage = (event) => events.push(`ws message ${String(event.data)}`);
        const wsResult = await new Promise<string>((resolve) => {
          socket.onopen = () => resolve('ws open');
          socket.onclose = (event) => resolve(`ws closed ${event.code}`);
          setTimeout(() => resolve('ws pending'), 3000);
        });
        const read = await fetch(`${base}/api/sessions`, { credentials: 'include' }).then(
          (response) => `fetch ${response.status}`,
          () => 'fetch blocked',
        );
        return { sse, ws: wsResult, read, events };
      },
      { base: running.url, ws: running.wsUrl, id: sessionId },
    );
    expect(outcome.events).toEqual([]);
    expect(outcome.sse).toMatch(/^sse error/);
    expect(outcome.ws).toBe('ws closed 1006'); // the upgrade got 403
    expect(outcome.read).toBe('fetch blocked'); // no CORS: the page cannot read an answer
    // Nothing was admitted for it (the earlier page's socket may still be closing: fewer is fine).
    expect(running.server.admission.connections).toBeLessThanOrEqual(before);
    await other.close();
  });

  it('shows the sign-in prompt when the key is revoked, and goes on with a new key typed in', async () => {
    const doomed = await createKey(running.url, 'doomed');
    const chat = await page(`${running.url}/#key=${doomed.key}`);
    await chat.waitForSelector('#connection[data-state="open"]');
    expect(await revokeKey(running.url, doomed.id)).toBe(204);
    await chat.waitForSelector('#sign-in:not([hidden])');
    await expect(chat.locator('#sign-in-reason').textContent()).resolves.toContain('no longer accepted');
    await expect(chat.locator('#connection').getAttribute('data-state')).resolves.toBe('closed');
    await chat.screenshot({ path: screenshotPath('sign-in-after-revocation') });

    await chat.fill('#key', `llmc_${'x'.repeat(43)}`);
    await chat.click('#sign-in-form button[type="submit"]');
    await chat.locator('#sign-in-error', { hasText: 'That key was not accepted.' }).waitFor();
    const fresh = await createKey(running.url, 'fresh');
    await chat.fill('#key', fresh.key);
    await chat.click('#sign-in-form button[type="submit"]');
    await chat.waitForSelector('#sign-in', { state: 'hidden' });
    await chat.waitForSelector('#connection[data-state="open"]');
    await send(chat, 'back in');
    await chat.close();
  });

  it('a link with a wrong key asks for one, and never keeps it in the address bar', async () => {
    await browser.context.clearCookies();
    const chat = await page(`${running.url}/#key=llmc_${'w'.repeat(43)}`);
    await chat.waitForSelector('#sign-in:not([hidden])');
    await expect(chat.locator('#sign-in-reason').textContent()).resolves.toContain('not accepted');
    expect(chat.url()).not.toContain('key=');
    await chat.close();
  });
});

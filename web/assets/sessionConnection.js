// The session's WebSocket (docs/protocol.md): (re)attaching after the
// history, reconnecting with backoff, and sending over the socket or, while
// it is down, over REST.

import { Unauthorized } from './conversationHistory.js';
import { applyFrame } from './frames.js';

const RETRY_MAX_MS = 10_000;

/**
 * @param {{ state: { sessionId: string | undefined, lastSeq: number, socket: WebSocket | undefined, retries: number,
 *     retryTimer: ReturnType<typeof setTimeout> | undefined, retryAfterMs: number, signedIn: boolean },
 *   framePage: Parameters<typeof applyFrame>[1], setConnection(kind: string, text: string): void, showNotice(text: string): void,
 *   setSession(id: string | undefined): void, clearConversation(): void, loadHistory(id: string): Promise<boolean>,
 *   end(text: string): void, unauthorized(): void, chosenModel(): { model?: string } }} page
 */
export function createSessionConnection({ state, framePage, setConnection, showNotice, setSession, clearConversation, loadHistory, end, unauthorized, chosenModel }) {
  function connect() {
    clearTimeout(state.retryTimer);
    setConnection(state.retries === 0 ? 'connecting' : 'reconnecting', state.retries === 0 ? 'Connecting…' : 'Reconnecting…');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = state.sessionId ? `?sessionId=${state.sessionId}&lastSeq=${state.lastSeq}` : '';
    const socket = new WebSocket(`${scheme}//${location.host}/ws${query}`);
    state.socket = socket;
    socket.addEventListener('message', (event) => {
      try {
        applyFrame(JSON.parse(event.data), framePage);
      } catch (error) {
        console.error('bad frame', error);
      }
    });
    socket.addEventListener('close', (event) => {
      if (state.socket !== socket) return; // replaced on purpose (new chat)
      state.socket = undefined;
      onClose(event.code);
    });
  }

  function onClose(code) {
    switch (code) {
      case 4401:
        unauthorized();
        return;
      case 4404:
        showNotice('That chat no longer exists. A new one was started.');
        clearConversation();
        setSession(undefined);
        state.lastSeq = 0;
        connect();
        return;
      case 4410:
        end('This chat was deleted.');
        return;
      case 1011:
        end('This chat was stopped after repeated failures. Start a new chat to go on.');
        return;
      case 1013:
        // Try again later (server full, rate limited, too slow a reader, storage briefly unavailable): never final.
        scheduleReconnect(state.retryAfterMs);
        return;
      default:
        scheduleReconnect();
    }
  }

  function scheduleReconnect(atLeastMs = 0) {
    state.retries += 1;
    // Exponential backoff with jitter, so a restarted server is not stampeded; never sooner than the server asked.
    const backoff = Math.min(RETRY_MAX_MS, 250 * 2 ** Math.min(state.retries, 6)) * (0.5 + Math.random() / 2);
    const delay = Math.max(backoff, Math.min(atLeastMs, RETRY_MAX_MS));
    state.retryAfterMs = 0;
    setConnection('reconnecting', `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    state.retryTimer = setTimeout(resume, delay);
  }

  /** (Re)attaches: history first (the truth, whatever was missed), then the live stream after its last chunk. */
  async function resume() {
    if (!state.signedIn) return;
    try {
      if (state.sessionId) {
        const found = await loadHistory(state.sessionId);
        if (!found) {
          onClose(4404);
          return;
        }
      }
      connect();
    } catch (error) {
      if (error instanceof Unauthorized) unauthorized();
      else scheduleReconnect();
    }
  }

  async function send(text) {
    showNotice('');
    if (state.socket?.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: 'message', text, ...chosenModel() }));
      return;
    }
    if (!state.sessionId) throw new Error('Not connected yet; try again in a moment.');
    // While the socket reconnects, REST takes the message; its frames arrive on reconnect.
    const response = await fetch(`/api/sessions/${state.sessionId}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text, ...chosenModel() }),
    });
    if (response.status === 401) {
      unauthorized();
      throw new Error('Sign in to send.');
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    }
  }

  async function stop() {
    if (state.socket?.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: 'cancel' }));
      return;
    }
    if (state.sessionId) await fetch(`/api/sessions/${state.sessionId}/cancel`, { method: 'POST' });
  }

  return { connect, resume, send, stop };
}

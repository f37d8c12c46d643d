// The llm-chat page: one session over WebSocket, history over REST, the
// signed-in key's conversations beside it. Plain JavaScript modules, no build step.

import { createConversationList } from './conversationList.js';
import { applyFrame } from './frames.js';
import { createMessageList } from './messageList.js';
import { signIn, signInAgain, signOut } from './signIn.js';

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;
const RETRY_MAX_MS = 10_000;

const $ = (id) => document.getElementById(id);
const log = $('log');
const input = $('input');
const modelPicker = $('model');
const sendButton = $('send');
const stopButton = $('stop');
const connection = $('connection');
const notice = $('notice');
const messages = createMessageList(log, $('empty'), () => refreshControls());
const OLDER_PAGE = 50;
const olderButton = document.createElement('button');
olderButton.id = 'load-older';
olderButton.type = 'button';
olderButton.className = 'secondary older';
olderButton.textContent = 'Load older messages';
olderButton.hidden = true;
olderButton.addEventListener('click', () => void loadOlder());
const conversations = createConversationList(openSession, () => unauthorized());

const state = {
  sessionId: undefined,
  lastSeq: 0,
  socket: undefined,
  retries: 0,
  retryTimer: undefined,
  /** The server's hint (an error frame's retryAfterMs) for the next reconnect. */
  retryAfterMs: 0,
  /** True once the session can take no more messages (stopped for good, deleted). */
  ended: false,
  /** False while the key is not (or no longer) accepted: nothing reconnects until signed in again. */
  signedIn: false,
  /** Where the page before the oldest shown message starts; null: none; undefined: not loaded yet. */
  olderCursor: undefined,
};

function sessionFromUrl() {
  const id = new URLSearchParams(location.hash.slice(1)).get('session');
  return id && SESSION_ID.test(id) ? id : undefined;
}

function setSession(id) {
  state.sessionId = id;
  $('session-id').textContent = id ?? '';
  conversations.select(id);
  // The id lives in the fragment: it is never sent to a server or a referrer.
  history.replaceState(null, '', id ? `#session=${id}` : location.pathname);
}

function setConnection(kind, text) {
  connection.dataset.state = kind;
  connection.textContent = text;
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

function refreshControls() {
  stopButton.disabled = !messages.pending() || !state.sessionId;
  sendButton.disabled = state.ended;
  input.disabled = state.ended;
}

// ---- history ---------------------------------------------------------------

/** Loads the stored conversation; false when the session does not exist. */
async function loadHistory(id) {
  const response = await fetch(`/api/sessions/${id}`, { headers: { accept: 'application/json' } });
  if (response.status === 401) throw new Unauthorized();
  if (response.status === 404) return false;
  if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
  const view = await response.json();
  for (const message of view.messages) messages.upsert(shownMessage(message));
  // Only the first load sets the cursor: a reconnect's reload must not lose the pages already shown.
  if (state.olderCursor === undefined) showOlderCursor(view.olderCursor);
  state.lastSeq = view.lastSeq;
  if (view.status === 'stopped') end('This chat was stopped after repeated failures. Start a new chat to go on.');
  return true;
}

/** Empties the log for another conversation (or none). */
function clearConversation() {
  messages.clear();
  state.olderCursor = undefined;
  olderButton.hidden = true;
}

/** A stored message as the list shows it. */
function shownMessage(message) {
  return {
    id: message.id,
    role: message.role,
    content: message.content,
    status: message.status,
    ...(message.toolCalls ? { toolCalls: message.toolCalls } : {}),
    ...(message.model ? { model: message.model } : {}),
  };
}

/** The "Load older messages" button leads the log while the store has pages before those shown. */
function showOlderCursor(cursor) {
  state.olderCursor = cursor ?? null;
  olderButton.hidden = state.olderCursor === null;
  olderButton.disabled = false;
  if (!olderButton.hidden) log.prepend(olderButton);
}

/** One page before the oldest shown (GET …/messages?order=desc&cursor=), drawn above it. */
async function loadOlder() {
  const id = state.sessionId;
  if (!id || !state.olderCursor) return;
  olderButton.disabled = true;
  try {
    const query = new URLSearchParams({ order: 'desc', limit: String(OLDER_PAGE), cursor: state.olderCursor });
    const response = await fetch(`/api/sessions/${id}/messages?${query}`, { headers: { accept: 'application/json' } });
    if (response.status === 401) return unauthorized();
    if (!response.ok) throw new Error(`older messages: HTTP ${response.status}`);
    const page = await response.json();
    if (id !== state.sessionId) return; // another conversation was opened meanwhile
    messages.prependOlder(page.messages.map(shownMessage).reverse());
    showOlderCursor(page.nextCursor);
  } catch {
    olderButton.disabled = false;
    showNotice('Could not load older messages; try again.');
  }
}

// ---- the socket ------------------------------------------------------------

// What the frames do to this page (frames.js holds the message-level ones).
const framePage = {
  messages,
  state,
  onSession(id) {
    setSession(id);
    setConnection('open', 'Connected');
    state.retries = 0;
    state.retryAfterMs = 0;
    refreshControls();
  },
  // A first message gives a new conversation its words in the list.
  onAccepted(sessionId) {
    if (!conversations.knows(sessionId)) conversations.refresh();
  },
  notice: (text) => showNotice(text),
  connection: (kind, text) => setConnection(kind, text),
};

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

function end(text) {
  state.ended = true;
  setConnection('closed', 'Session ended');
  showNotice(text);
  refreshControls();
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

class Unauthorized extends Error {}

/** The key is no longer accepted (revoked, cookie expired): stop everything and ask for one. */
async function unauthorized() {
  if (!state.signedIn) return;
  state.signedIn = false;
  clearTimeout(state.retryTimer);
  const old = state.socket;
  state.socket = undefined;
  old?.close(1000);
  setConnection('closed', 'Signed out');
  showNotice('');
  showSignedIn(await signInAgain());
  state.signedIn = true;
  conversations.refresh();
  resume();
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

/** Opens one of the caller's conversations from the list. */
function openSession(id) {
  if (id === state.sessionId) return;
  const old = state.socket;
  state.socket = undefined;
  old?.close(1000);
  clearTimeout(state.retryTimer);
  clearConversation();
  showNotice('');
  setSession(id);
  state.lastSeq = 0;
  state.ended = false;
  state.retries = 0;
  refreshControls();
  resume();
}

// ---- user actions ----------------------------------------------------------

// ---- the model picker --------------------------------------------------------

const MODEL_KEY = 'llm-chat.model';

/** Fills the picker from /v1/models; the last choice is remembered in this browser. */
async function loadModels() {
  const response = await fetch('/v1/models', { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`models: HTTP ${response.status}`);
  const { data } = await response.json();
  const saved = localStorage.getItem(MODEL_KEY) ?? '';
  for (const { id } of data) {
    const option = document.createElement('option');
    option.value = id;
    option.textContent = id;
    modelPicker.append(option);
  }
  modelPicker.value = data.some(({ id }) => id === saved) ? saved : '';
  modelPicker.hidden = data.length < 2;
}

modelPicker.addEventListener('change', () => localStorage.setItem(MODEL_KEY, modelPicker.value));

/** The model chosen for the next message, if any (otherwise the session's, or the server's default). */
const chosenModel = () => (modelPicker.value ? { model: modelPicker.value } : {});

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

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (text.trim() === '') return;
  send(text).then(
    () => {
      input.value = '';
    },
    (error) => showNotice(error.message),
  );
});

input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});

stopButton.addEventListener('click', () => {
  stop().catch((error) => showNotice(error.message));
});

$('new-chat').addEventListener('click', () => {
  const old = state.socket;
  state.socket = undefined;
  old?.close(1000);
  clearConversation();
  showNotice('');
  setSession(undefined);
  state.lastSeq = 0;
  state.ended = false;
  state.retries = 0;
  refreshControls();
  if (state.signedIn) connect();
  input.focus();
});

$('sign-out').addEventListener('click', () => {
  signOut().finally(() => location.reload());
});

// Back online: do not wait for the backoff.
window.addEventListener('online', () => {
  if (!state.socket && !state.ended && state.signedIn) resume();
});

window.addEventListener('hashchange', () => {
  const id = sessionFromUrl();
  // A pasted sign-in link (#key=…) is exchanged by a fresh start.
  if ((id && id !== state.sessionId) || new URLSearchParams(location.hash.slice(1)).has('key')) location.reload();
});

// ---- start -----------------------------------------------------------------

function showSignedIn(me) {
  $('who').textContent = me.auth === 'keys' ? me.name : '';
  $('sign-out').hidden = me.auth !== 'keys';
}

async function start() {
  // Signing in first also takes a `#key=` out of the fragment before anything else reads it.
  showSignedIn(await signIn());
  state.signedIn = true;
  setSession(sessionFromUrl());
  refreshControls();
  conversations.refresh();
  resume();
  // The models this key may use, for the picker (after sign-in: /v1 asks for the key too).
  loadModels().catch((error) => console.error('could not list the models', error));
  input.focus();
}

start().catch((error) => {
  setConnection('closed', 'Unavailable');
  showNotice(`Could not start: ${error.message}. Reload to try again.`);
});

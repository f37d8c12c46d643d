// The llm-chat page: one session over WebSocket, history over REST, the
// signed-in key's conversations beside it. Plain JavaScript modules, no build step.

import { createConversationHistory } from './conversationHistory.js';
import { createConversationList } from './conversationList.js';
import { createMessageList } from './messageList.js';
import { createModelPicker } from './modelPicker.js';
import { createSessionConnection } from './sessionConnection.js';
import { signIn, signInAgain, signOut } from './signIn.js';

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

const $ = (id) => document.getElementById(id);
const log = $('log');
const input = $('input');
const { loadModels, chosenModel } = createModelPicker($('model'));
const sendButton = $('send');
const stopButton = $('stop');
const connection = $('connection');
const notice = $('notice');
const messages = createMessageList(log, $('empty'), () => refreshControls());
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

const { loadHistory, clearConversation } = createConversationHistory({ log, messages, state, unauthorized, showNotice, end });

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

const { connect, resume, send, stop } = createSessionConnection({
  state,
  framePage,
  setConnection,
  showNotice,
  setSession,
  clearConversation,
  loadHistory,
  end,
  unauthorized,
  chosenModel,
});

function end(text) {
  state.ended = true;
  setConnection('closed', 'Session ended');
  showNotice(text);
  refreshControls();
}

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

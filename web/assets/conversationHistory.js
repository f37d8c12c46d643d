// The stored conversation over REST: the history a (re)connect loads first,
// and the pages before the oldest shown ("Load older messages").

const OLDER_PAGE = 50;

/** Thrown when the key is no longer accepted (HTTP 401). */
export class Unauthorized extends Error {}

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

/**
 * @param {{ log: HTMLElement, messages: ReturnType<typeof import('./messageList.js').createMessageList>,
 *   state: { sessionId: string | undefined, lastSeq: number, olderCursor: string | null | undefined },
 *   unauthorized(): void, showNotice(text: string): void, end(text: string): void }} page
 */
export function createConversationHistory({ log, messages, state, unauthorized, showNotice, end }) {
  const olderButton = document.createElement('button');
  olderButton.id = 'load-older';
  olderButton.type = 'button';
  olderButton.className = 'secondary older';
  olderButton.textContent = 'Load older messages';
  olderButton.hidden = true;
  olderButton.addEventListener('click', () => void loadOlder());

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

  return { loadHistory, clearConversation };
}

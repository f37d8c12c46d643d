// The caller's conversations, newest first (GET /api/sessions only lists the
// signed-in key's own), each shown by its title or its first words.

const $ = (id) => document.getElementById(id);

function when(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : date.toLocaleDateString();
}

/**
 * @param {(sessionId: string) => void} onOpen called when one is picked
 * @param {() => void} onUnauthorized called when the key is no longer accepted
 */
export function createConversationList(onOpen, onUnauthorized) {
  const list = $('conversations');
  let current;
  let shown = [];

  function render() {
    list.replaceChildren();
    for (const session of shown) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.sessionId = session.sessionId;
      if (session.sessionId === current) button.setAttribute('aria-current', 'true');
      const title = document.createElement('span');
      title.className = 'title';
      title.textContent = session.title ?? session.preview ?? 'New conversation';
      const time = document.createElement('span');
      time.className = 'when';
      time.textContent = when(session.lastActiveAt);
      button.append(title, time);
      button.addEventListener('click', () => onOpen(session.sessionId));
      item.append(button);
      list.append(item);
    }
    $('no-conversations').hidden = shown.length > 0;
  }

  return {
    /** Loads the newest 50 again. */
    async refresh() {
      const response = await fetch('/api/sessions?limit=50', { headers: { accept: 'application/json' } });
      if (response.status === 401) {
        onUnauthorized();
        return;
      }
      if (!response.ok) return;
      shown = (await response.json()).sessions;
      render();
    },
    /** Marks the one open. */
    select(sessionId) {
      current = sessionId;
      render();
    },
    /** True when the list shows this session with some words to show. */
    knows(sessionId) {
      return shown.some((session) => session.sessionId === sessionId && (session.title ?? session.preview));
    },
  };
}

// The conversation as shown: messages by id, in display order. A user's text
// is shown as written (textContent); the assistant's markdown is rendered
// through markdown.js (sanitised: nothing a model writes can run), at most
// once per frame while it streams.

import { renderMarkdown } from './markdown.js';

const STATUS_TAGS = {
  queued: '',
  cancelled: 'stopped',
  failed: 'failed',
  interrupted: 'interrupted (the server restarted)',
};

/**
 * @param {HTMLElement} log where messages are drawn
 * @param {HTMLElement} empty shown while there is no message
 * @param {() => void} onChange called after every change (to refresh the controls)
 */
export function createMessageList(log, empty, onChange) {
  /** Map keeps insertion order: the display order. */
  const messages = new Map();
  /** Reply id → the user message it answers, for replies announced by `accepted`. */
  const prompts = new Map();

  /** Messages whose markdown is waiting for the next frame, by id. */
  const dirty = new Set();
  let frame = 0;

  function paint(element, message) {
    const bubble = element.querySelector('.bubble');
    if (message.role === 'assistant') {
      renderMarkdown(bubble, message.content);
      element.querySelector('.tools').textContent = (message.toolCalls ?? [])
        .map((call) => `→ ${call.function?.name ?? '?'}(${call.function?.arguments ?? ''})`)
        .join('\n');
    } else bubble.textContent = message.role === 'tool' ? `tool result: ${message.content}` : message.content;
  }

  function flush() {
    frame = 0;
    for (const id of dirty) {
      const message = messages.get(id);
      const element = log.querySelector(`[data-id="${id}"]`);
      if (message && element) paint(element, message);
    }
    dirty.clear();
    log.scrollTop = log.scrollHeight;
  }

  /** The message's element, made (at the end, or before `before`) if it has none yet. */
  function elementOf(message, before) {
    let element = log.querySelector(`[data-id="${message.id}"]`);
    if (!element) {
      element = document.createElement('article');
      element.dataset.id = message.id;
      element.className = `message ${message.role}`;
      const bubble = document.createElement('div');
      bubble.className = message.role === 'assistant' ? 'bubble markdown' : 'bubble';
      const tools = document.createElement('div');
      tools.className = 'tools';
      const tag = document.createElement('div');
      tag.className = 'tag';
      element.append(bubble, tools, tag);
      if (before) log.insertBefore(element, before);
      else log.append(element);
      empty.hidden = true;
    }
    return element;
  }

  function render(message) {
    const element = elementOf(message);
    element.dataset.status = message.status;
    const model = message.model && message.status === 'complete' ? message.model : '';
    element.querySelector('.tag').textContent = message.errorMessage ?? STATUS_TAGS[message.status] ?? model;
    // Markdown is rendered once per frame however many chunks arrive in it; a
    // finished message at once, so what is shown is final when its status is.
    if (message.role === 'assistant' && message.status === 'streaming') {
      dirty.add(message.id);
      frame ||= requestAnimationFrame(flush);
    } else {
      dirty.delete(message.id);
      paint(element, message);
    }
    log.scrollTop = log.scrollHeight;
  }

  function upsert(message) {
    const existing = messages.get(message.id);
    const merged = existing ? { ...existing, ...message } : message;
    messages.set(message.id, merged);
    render(merged);
    onChange();
    return merged;
  }

  /** The user message a reply answers: known from `accepted`, else the oldest one still queued (replies go in order). */
  function promptOf(replyId) {
    const known = messages.get(prompts.get(replyId));
    if (known) return known;
    for (const message of messages.values()) if (message.role === 'user' && message.status === 'queued') return message;
    return undefined;
  }

  function settlePrompt(replyId, status) {
    const prompt = promptOf(replyId);
    if (prompt && prompt.status === 'queued') upsert({ ...prompt, status });
  }

  return {
    get: (id) => messages.get(id),
    upsert,
    /**
     * Older messages (oldest first) above the ones shown, keeping what the
     * reader looks at where it is. Those already shown are left alone.
     */
    prependOlder(older) {
      const fresh = older.filter((message) => !messages.has(message.id));
      if (fresh.length === 0) return;
      const shown = [...messages.entries()];
      messages.clear();
      for (const message of fresh) messages.set(message.id, message);
      for (const [id, message] of shown) messages.set(id, message);
      const first = log.querySelector('.message');
      const heightBefore = log.scrollHeight;
      for (const message of fresh) {
        const element = elementOf(message, first ?? undefined);
        element.dataset.status = message.status;
        element.querySelector('.tag').textContent = STATUS_TAGS[message.status] ?? (message.status === 'complete' ? message.model ?? '' : '');
        paint(element, message);
      }
      log.scrollTop += log.scrollHeight - heightBefore;
      onChange();
    },
    settlePrompt,
    /** Remembers which user message a reply answers. */
    link(replyId, userMessageId) {
      prompts.set(replyId, userMessageId);
    },
    /** Ends a reply with a final status; a reply cancelled before it started disappears. */
    finish(id, status) {
      const reply = messages.get(id);
      const started = reply !== undefined && reply.status !== 'queued';
      settlePrompt(id, started || status === 'complete' ? 'complete' : status);
      if (!started && status === 'cancelled') {
        if (reply) {
          messages.delete(id);
          log.querySelector(`[data-id="${id}"]`)?.remove();
          onChange();
        }
        return;
      }
      upsert({ ...(reply ?? { id, role: 'assistant', content: '' }), status });
    },
    /** True while a reply streams or waits. */
    pending() {
      for (const message of messages.values()) if (message.status === 'streaming' || message.status === 'queued') return true;
      return false;
    },
    clear() {
      dirty.clear();
      messages.clear();
      prompts.clear();
      for (const element of log.querySelectorAll('.message')) element.remove();
      empty.hidden = false;
      onChange();
    },
  };
}

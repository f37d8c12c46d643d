// What each WebSocket frame does to the page. The page hands in the message
// list, its state (for the resume position) and what to do on the rest.

/**
 * @param {object} frame a server frame (docs/protocol.md)
 * @param {{ messages: ReturnType<typeof import('./messageList.js').createMessageList>, state: { lastSeq: number, retryAfterMs: number },
 *   onSession(id: string): void, onAccepted(sessionId: string): void, notice(text: string): void, connection(kind: string, text: string): void }} page
 */
export function applyFrame(frame, page) {
  const { messages, state } = page;
  switch (frame.type) {
    case 'session':
      page.onSession(frame.sessionId);
      break;
    case 'accepted':
      page.onAccepted(frame.sessionId);
      messages.link(frame.messageId, frame.userMessageId);
      messages.upsert({ id: frame.userMessageId, role: 'user', content: frame.text, status: frame.position > 0 ? 'queued' : 'complete' });
      messages.upsert({ id: frame.messageId, role: 'assistant', content: '', status: frame.position > 0 ? 'queued' : 'streaming' });
      break;
    case 'chunk': {
      if (frame.seq <= state.lastSeq) break; // already shown (history or an earlier connection)
      state.lastSeq = frame.seq;
      const reply = messages.get(frame.messageId) ?? { id: frame.messageId, role: 'assistant', content: '' };
      messages.settlePrompt(frame.messageId, 'complete');
      messages.upsert({ ...reply, content: reply.content + frame.chunk, status: frame.is_last ? 'complete' : 'streaming' });
      break;
    }
    case 'completed':
      messages.finish(frame.messageId, 'complete');
      break;
    case 'cancelled':
      messages.finish(frame.messageId, 'cancelled');
      break;
    case 'interrupted':
      messages.finish(frame.messageId, 'interrupted');
      break;
    case 'error':
      // A refusal's hint (1013 with retryAfterMs) paces the next reconnect.
      if (frame.retryAfterMs) state.retryAfterMs = frame.retryAfterMs;
      if (frame.messageId) {
        const reply = messages.get(frame.messageId);
        if (reply) messages.upsert({ ...reply, status: 'failed', errorMessage: frame.message });
      } else page.notice(frame.message);
      break;
    case 'restarted':
      page.notice('The model failed and the session was restarted; your history is kept.');
      break;
    case 'shutdown':
      page.connection('draining', 'Server restarting…');
      break;
    case 'stopped':
      if (frame.reason === 'shutdown') page.connection('draining', 'Server restarting…');
      break;
    default:
      break; // newer servers may send more; ignore what we do not know
  }
}

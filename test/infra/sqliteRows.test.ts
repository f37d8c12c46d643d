import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/domain/message.ts';
import { MESSAGE_COLUMNS, messageColumns, messageValues } from '../../src/infra/sql/rows.ts';

// The group commit binds a row's values by position (messageValues), the other
// writes by name (messageColumns): a column out of place would store one field
// in another's column, so the two must agree column by column.
describe('a message as a row', () => {
  const full: Message = {
    id: 'm1' as Message['id'],
    order: 3,
    role: 'assistant',
    content: 'text',
    status: 'failed',
    createdAt: 10,
    updatedAt: 11,
    replyTo: 'm0' as Message['id'],
    errorCode: 'provider_error',
    usage: { inputTokens: 5, outputTokens: 7 },
    parts: [{ type: 'text', text: 'text' }],
    toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
    toolCallId: 'call_0',
    finishReason: 'stop',
    model: 'sim',
  };

  it('has the same values by position as by name, every column set', () => {
    const byName = messageColumns('s1', full);
    expect(messageValues('s1', full)).toEqual(MESSAGE_COLUMNS.map((column) => byName[column]));
    // Every column carries a value of its own here, so a swap of any two would show.
    expect(new Set(messageValues('s1', full).map((value) => JSON.stringify(value))).size).toBe(MESSAGE_COLUMNS.length);
  });

  it('has the same values by position as by name, the optional columns empty', () => {
    const bare: Message = { id: 'm2' as Message['id'], order: 4, role: 'user', content: 'hi', status: 'complete', createdAt: 1, updatedAt: 2 };
    const byName = messageColumns('s1', bare);
    expect(messageValues('s1', bare)).toEqual(MESSAGE_COLUMNS.map((column) => byName[column]));
  });
});

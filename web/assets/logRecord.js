// The inspector's live log of one session's records: machine events,
// transitions, actions and domain events, one line each, the newest last.

import { element } from './element.js';

const MAX_EVENTS = 400;

const $ = (id) => document.getElementById(id);

function describe(record) {
  if (record.source === 'domain') {
    const text = record.text !== undefined ? ` “${record.text}”` : record.chars !== undefined ? ` [${record.chars} chars hidden]` : '';
    const extra = [record.seq !== undefined ? `seq ${record.seq}` : '', record.detail ?? ''].filter(Boolean).join(', ');
    return `bus        ${record.event}${extra ? ` (${extra})` : ''}${text}`;
  }
  const who = record.actor.padEnd(11);
  switch (record.kind) {
    case 'event':
      return `${who}← ${record.event}${record.detail ? ` (${record.detail})` : ''}${record.sender ? ` from ${record.sender}` : ''}`;
    case 'transition':
      return `${who}${record.transitions.map((t) => `${t.from} → ${t.to.join(',') || t.from}`).join('; ') || 'no transition'} on ${record.event}`;
    case 'snapshot':
      return `${who}is ${record.state ?? record.status}${record.status && record.status !== 'active' ? ` (${record.status})` : ''}`;
    case 'actor':
      return `${who}started`;
    case 'action':
      return `${who}does ${record.action}`;
    default:
      return `${who}${record.kind}`;
  }
}

/** Appends one record's line, keeping the newest MAX_EVENTS, following the end when the reader is there. */
export function logRecord(record) {
  const events = $('events');
  const time = new Date(record.at).toISOString().slice(11, 23);
  const line = element('div', `${time}  ${describe(record)}`, record.source === 'domain' ? 'domain' : record.kind);
  const atEnd = events.scrollTop + events.clientHeight >= events.scrollHeight - 8;
  events.append(line);
  while (events.childElementCount > MAX_EVENTS) events.firstElementChild.remove();
  if (atEnd) events.scrollTop = events.scrollHeight;
}

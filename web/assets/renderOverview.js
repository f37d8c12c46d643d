// The inspector's overview: counts by state, the cluster's nodes and the
// table of live sessions (a row's click watches that session).

import { element } from './element.js';

const $ = (id) => document.getElementById(id);

function stateBadge(value) {
  const badge = element('span', value ?? '—', 'state');
  badge.dataset.value = value ?? 'none';
  return badge;
}

function ago(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

/**
 * @param {object} overview an `overview` event of /inspector/stream
 * @param {{ watched: string | undefined }} state the session watched, if any (its row is marked)
 * @param {(sessionId: string) => void} watch called with the session of a clicked row
 */
export function renderOverview(overview, state, watch) {
  const counts = $('counts');
  counts.replaceChildren();
  const add = (label, value) => {
    const box = element('span', undefined, 'count');
    box.append(element('b', String(value)), document.createTextNode(label));
    counts.append(box);
  };
  add('live', overview.live);
  for (const [name, value] of Object.entries(overview.bySupervisor)) add(name, value);
  for (const [name, value] of Object.entries(overview.bySession)) if (name !== 'none') add(name, value);
  add('recent restarts', overview.restarts);
  // Many nodes: who this node is (it owns every session listed) and the others' counts, from their heartbeats.
  const cluster = $('cluster');
  cluster.hidden = !overview.cluster;
  if (overview.cluster) {
    const nodes = overview.cluster.nodes.map((node) =>
      node.alive ? `${node.id}${node.id === overview.node ? ' (this node)' : ''}: ${node.sessions ?? 0} sessions, ${node.connections ?? 0} connections` : `${node.id}: gone`,
    );
    cluster.textContent = `Owner of these sessions: ${overview.node}. Nodes: ${nodes.join('; ')}.`;
  }

  const body = $('sessions');
  body.replaceChildren();
  for (const session of overview.sessions) {
    const row = document.createElement('tr');
    row.dataset.sessionId = session.sessionId;
    if (session.sessionId === state.watched) row.className = 'selected';
    const id = element('td');
    id.append(element('code', session.sessionId.slice(0, 10) + '…'));
    id.title = session.sessionId;
    const supervisor = element('td');
    supervisor.append(stateBadge(session.supervisor));
    const actor = element('td');
    actor.append(stateBadge(session.session));
    // The key the session belongs to (none: made under --auth none).
    const key = element('td', session.keyName ?? (session.owner ? session.owner : '—'));
    key.className = 'key-name';
    if (session.owner) key.title = session.owner;
    row.append(id, supervisor, actor, key, element('td', String(session.restarts)), element('td', String(session.messages)), element('td', String(session.pending)), element('td', ago(session.lastActiveAt)));
    row.addEventListener('click', () => watch(session.sessionId));
    body.append(row);
  }
  $('more').textContent = overview.live > overview.sessions.length ? `Showing the ${overview.sessions.length} most recently activated of ${overview.live}.` : overview.live === 0 ? 'No live sessions: open the chat page and send a message.' : '';
}

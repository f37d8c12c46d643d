// The llm-chat inspector: live sessions and, for the one picked, its machines'
// states and events. Data comes over one SSE stream read with fetch, so the
// admin token travels in a header, never in a URL. Text is set with
// textContent only.

import { element } from './element.js';
import { logRecord } from './logRecord.js';
import { renderOverview } from './renderOverview.js';

const TOKEN_KEY = 'llm-chat-admin-token';

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? undefined,
  watched: undefined,
  machines: [],
  /** Active state per actor name: supervisor, session. */
  active: { supervisor: undefined, session: undefined },
  abort: undefined,
  retries: 0,
  retryTimer: undefined,
};

// A token handed over in the fragment (#token=…) is kept for this tab and removed from the address bar.
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token) {
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  const session = params.get('session');
  if (session) state.watched = session;
  history.replaceState(null, '', state.watched ? `#session=${state.watched}` : location.pathname);
}

function setConnection(kind, text) {
  const pill = $('connection');
  pill.dataset.state = kind;
  pill.textContent = text;
}

function showLogin(message) {
  $('login').hidden = false;
  $('inspector').hidden = true;
  $('login-error').textContent = message ?? '';
  setConnection('closed', 'Locked');
  $('token').focus();
}

// ---- stream ----------------------------------------------------------------

function open() {
  state.abort?.abort();
  clearTimeout(state.retryTimer);
  const controller = new AbortController();
  state.abort = controller;
  const query = state.watched ? `?sessionId=${encodeURIComponent(state.watched)}` : '';
  setConnection(state.retries ? 'reconnecting' : 'connecting', state.retries ? 'Reconnecting…' : 'Connecting…');
  read(`/inspector/stream${query}`, controller).catch((error) => {
    if (controller.signal.aborted) return;
    if (error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = undefined;
      showLogin('That token was not accepted.');
      return;
    }
    state.retries += 1;
    const delay = Math.min(10_000, 500 * 2 ** Math.min(state.retries, 5));
    setConnection('reconnecting', `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    state.retryTimer = setTimeout(open, delay);
  });
}

async function read(url, controller) {
  const response = await fetch(url, { headers: { authorization: `Bearer ${state.token}` }, signal: controller.signal });
  if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
  $('login').hidden = true;
  $('inspector').hidden = false;
  setConnection('open', 'Live');
  state.retries = 0;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return;
  const payload = JSON.parse(data.join('\n'));
  if (event === 'overview') renderOverview(payload, state, watch);
  else if (event === 'machines') renderCharts(payload);
  else if (event === 'inspect') onRecord(payload);
}

// ---- one session -----------------------------------------------------------

function watch(sessionId) {
  state.watched = sessionId;
  state.active = { supervisor: undefined, session: undefined };
  history.replaceState(null, '', `#session=${sessionId}`);
  $('events').replaceChildren();
  $('detail-title').textContent = `Session ${sessionId}`;
  for (const row of $('sessions').children) row.classList.toggle('selected', row.dataset.sessionId === sessionId);
  open();
}

// Machine ids in the charts (`supervisor`, `session`) are also the actors' names in records.
function renderCharts(machines) {
  state.machines = machines;
  const charts = $('charts');
  charts.replaceChildren();
  for (const machine of machines) {
    const chart = element('div', undefined, 'chart');
    chart.dataset.machine = machine.id;
    chart.append(element('h3', `${machine.id} machine`));
    for (const node of machine.states) {
      const box = element('div', undefined, 'node');
      box.dataset.state = node.key;
      const name = element('div', node.key, 'name');
      const notes = [node.key === machine.initial ? 'initial' : '', node.type === 'final' ? 'final' : '', ...node.invokes.map((id) => `invokes ${id}`)].filter(Boolean);
      if (notes.length) name.append(element('small', notes.join(', ')));
      box.append(name);
      const list = element('ul');
      for (const transition of node.type === 'final' ? [] : [...node.transitions, ...machine.global]) {
        const item = element('li', `${transition.label} → ${transition.targets.length ? transition.targets.join(' | ') : '(stays)'}`);
        item.dataset.event = transition.event;
        list.append(item);
      }
      box.append(list);
      chart.append(box);
    }
    charts.append(chart);
  }
  highlight();
}

function highlight(fired) {
  for (const chart of $('charts').children) {
    const actor = chart.dataset.machine;
    for (const box of chart.querySelectorAll('.node')) {
      box.classList.toggle('active', box.dataset.state === state.active[actor]);
      for (const item of box.querySelectorAll('li')) item.classList.toggle('fired', fired?.actor === actor && item.dataset.event === fired.event && box.dataset.state === fired.from);
    }
  }
  const detail = $('detail-title');
  detail.dataset.supervisor = state.active.supervisor ?? '';
  detail.dataset.session = state.active.session ?? '';
}

function onRecord(record) {
  let fired;
  if (record.source === 'state') {
    state.active.supervisor = record.overview?.supervisor;
    state.active.session = record.overview?.session ?? undefined;
  } else if (record.source === 'xstate' && record.state && (record.actor === 'supervisor' || record.actor === 'session')) {
    if (record.kind === 'transition' || record.kind === 'snapshot') {
      const from = record.transitions?.[0]?.from ?? state.active[record.actor];
      if (record.kind === 'transition') fired = { actor: record.actor, event: record.event, from };
      state.active[record.actor] = record.status === 'active' || record.status === undefined ? record.state : undefined;
    }
  }
  if (record.source === 'xstate' && record.actor === 'session' && record.kind === 'actor') state.active.session = record.state;
  highlight(fired);
  if (record.source !== 'state') logRecord(record);
}

// ---- start -----------------------------------------------------------------

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  open();
});

$('forget').addEventListener('click', () => {
  state.abort?.abort();
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = undefined;
  showLogin();
});

readFragment();
if (state.watched) $('detail-title').textContent = `Session ${state.watched}`;
if (state.token) open();
else showLogin();

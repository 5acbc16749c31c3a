// maglev dashboard, the entry point: loads /api/summary (every frontend
// in brief) and the pools of the cards that are open
// (/api/frontends/{name}), keeps them current from the /api/events
// stream (a debounced reload after events, with the states events carry
// shown at once on the cards they touch), polls the counters of the
// cards on the page, watches for a dead stream or a clock jump, and runs
// operator actions behind a confirmation dialog. Modules: util.js
// (helpers), list.js (the frontend list, its filter and window), view.js
// (rendering), log.js (the event log), stream.js (the SSE reader),
// fleet.js (the tabs: a peer's tab is this page over the peer's API,
// polled instead of streamed; the fleet tab's matrix).

import {$, h, seqOf, epochOf, ms} from './util.js';
import {renderVpp, renderNode, tick, heartbeat, counters, renderDetail, renderPools, cardOf} from './view.js';
import {FrontendList} from './list.js';
import {EventLog, describe} from './log.js';
import {Stream} from './stream.js';
import {tab, api, renderTabs, renderFleet} from './fleet.js';

const REFRESH_DELAY = 250; // after events, coalesced (longer for big sites)
const COUNTERS_MAX = 1000; // frontends per counters request (the server's bound)
const DRAIN_FRONTENDS_MAX = 32; // frontends a pause's dry run looks at
const COUNTERS_EVERY = 5000;
const FULL_REFRESH_EVERY = 30000; // in case anything was missed
const SILENCE = 45000; // the server pings every 15 s
const BEAT_MIN = 300; // a heartbeat stays visible at least this long
const PEER_EVERY = 10000; // a peer's tab and the fleet tab: reloaded on
// each of the peers' events (`peer` events on this maglevd's stream), and
// polled this often as the fallback
const TABS_EVERY = 5000; // the tab bar's reachability

let state = null; // the last /api/summary
let first = true;
// States from events newer than `state`: name → {state, since, seq};
// announce: frontend → {announce, reason, seq}; node: {drained, by, since, seq}.
const ov = {backends: new Map(), frontends: new Map(), announce: new Map(), node: null};

const log = new EventLog($('#events'), $('#events-pause'), $('#events-filter'));
const stream = new Stream(onEvent, onLive);
let loading = false; // in loadState, which loads every open card's pools
const list = new FrontendList(ov, (name) => loading || void loadFrontend(name, false));

// The page's own origin, never its URL: that may hold `user:password@`,
// which fetch refuses.
const url = (path) => location.origin + path;

async function answer(res) {
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status} ${res.statusText}`);
  return body;
}

const getJSON = async (path) => answer(await fetch(url(path), {cache: 'no-store'}));

const post = async (path, body) => answer(await fetch(url(path), {
  method: 'POST',
  headers: {'Content-Type': 'application/json', 'X-CSRF-Token': state ? state.session.csrf : ''},
  body: JSON.stringify(body || {}),
}));

const sleep = (t) => new Promise((r) => setTimeout(r, t));

// A bug in the page says so (and leaves `data-error` for the tests).
function failed(what) {
  document.body.dataset.error = what;
  notice(`The page failed (${what}); reloading it may help.`);
}
window.addEventListener('error', (e) => failed(e.message));
window.addEventListener('unhandledrejection', (e) => failed(String(e.reason)));

function notice(text) {
  const n = $('#notice');
  n.textContent = text || '';
  n.hidden = !text;
}

// ------------------------------------------------------------------ state

async function loadState() {
  const st = await getJSON(api('/summary'));
  if (tab.peer) peerStatus(st);
  // A peer that cannot be read keeps its last cards, marked unreachable.
  if (tab.peer && !st.reachable && state) return st;
  const epoch = epochOf(st.event_id);
  const upTo = seqOf(st.event_id, epoch);
  for (const m of [ov.backends, ov.frontends, ov.announce]) {
    for (const [k, v] of m) if (v.epoch !== epoch || v.seq <= upTo) m.delete(k);
  }
  if (ov.node && (ov.node.epoch !== epoch || ov.node.seq <= upTo)) ov.node = null;
  state = st;
  loading = true;
  try {
    list.load(st, !first);
  } finally {
    loading = false;
  }
  // The open cards' pools, before the first render counts as done.
  await Promise.all(list.openOnPage().map((n) => loadFrontend(n, !first)));
  show();
  if (first) loadCounters();
  if (detailName) loadDetail(detailName).catch(() => {});
  return st;
}

// The pools of frontend `name`'s card, if it is on the page and open.
async function loadFrontend(name, animate) {
  let d;
  try {
    d = await getJSON(api(`/frontends/${encodeURIComponent(name)}`));
  } catch (e) {
    // Gone by a reload: the next summary drops it.
    if (!/no frontend|not found/i.test(e.message)) notice(`Frontend ${name}: ${e.message}`);
    return;
  }
  const c = cardOf(name);
  if (c && list.isOpen(name) && state) renderPools(c, d, ov, state.session.admin, animate && c.shape !== null);
}

// The counters of the VIPs whose cards are on the page.
async function loadCounters() {
  if (tab.peer) return; // counters are this maglevd's only
  const names = list.pageNames().slice(0, COUNTERS_MAX);
  if (!names.length) return;
  const q = names.map((n) => `frontend=${encodeURIComponent(n)}`).join('&');
  try {
    counters(await getJSON(`/api/counters?${q}`));
  } catch {
    // The stream notices a daemon that went away.
  }
}

function show() {
  if (!state) return;
  const ses = state.session;
  renderVpp(state.vpp, !first);
  renderNode(state.node, ov.node, ses.admin);
  $('#version').textContent = state.version;
  $('#who').textContent = `${ses.identity} (${ses.admin ? 'admin' : 'read-only'})`;
  $('#who').title = `signed in by ${ses.auth}`;
  $('#login').hidden = !(ses.login && !ses.admin);
  document.body.dataset.admin = ses.admin;
  if (first) {
    first = false;
    document.body.dataset.ready = 'true';
    // Time to the first full render, for docs/performance.md.
    performance.mark('maglev-ready');
  }
}

let refreshTimer = null;
let refreshing = false;
let again = false;

// Reloads the state soon; events within the delay share one reload (a
// longer delay for a big site: its summary is bigger).
function refreshSoon(delay = Math.max(REFRESH_DELAY, Math.min(2000, list.order.length / 10))) {
  if (refreshing) {
    again = true;
  } else if (!refreshTimer) {
    refreshTimer = setTimeout(refreshNow, delay);
  }
}

async function refreshNow() {
  refreshTimer = null;
  refreshing = true;
  try {
    await loadState();
    notice(null);
  } catch (e) {
    notice(`Cannot reach maglevd: ${e.message}`);
  }
  refreshing = false;
  if (again) {
    again = false;
    refreshSoon();
  }
}

let generation = 0;

// Reloads everything and reopens the stream from the new state, retrying
// until maglevd answers.
async function restart(why) {
  if (tab.peer || tab.fleet) return; // polled, no stream
  const mine = ++generation;
  stream.close();
  if (why) log.add('stream', why, 'warn');
  for (let delay = 1000; ; delay = Math.min(delay * 2, 10000)) {
    try {
      const st = await loadState();
      if (mine !== generation) return;
      notice(null);
      stream.open(st.event_id);
      return;
    } catch (e) {
      if (mine !== generation) return;
      notice(`Cannot reach maglevd (${e.message}); retrying.`);
      await sleep(delay);
      if (mine !== generation) return;
    }
  }
}

// ----------------------------------------------------------------- events

const beats = new Map(); // backend → when its probe started

function onEvent(type, data, id) {
  let ev;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  if (type === 'peer') {
    // A peer's event: this tab shows only this maglevd; the tab bar may
    // change when a peer's stream ends.
    if (ev.error) loadTabs();
    return;
  }
  if (type === 'probe') {
    const b = ev.backend;
    if (ev.phase === 'start') {
      beats.set(b, Date.now());
      heartbeat(b, true);
    } else {
      const left = BEAT_MIN - (Date.now() - (beats.get(b) || 0));
      beats.delete(b);
      setTimeout(() => beats.has(b) || heartbeat(b, false), Math.max(0, left));
    }
    return;
  }
  if (type === 'resync' || type === 'lag') {
    restart(type === 'lag' ? 'events were lost: reloading everything' : 'resync: reloading everything');
    return;
  }
  const line = describe(type, ev);
  if (line) log.add(...line);
  const epoch = epochOf(id);
  const seq = seqOf(id, epoch);
  if (ev.backend && ev.backend.transition) {
    const t = ev.backend.transition;
    ov.backends.set(ev.backend.backend, {state: t.to, since: ms(t.unix_nanos), epoch, seq});
    list.backendChanged(ev.backend.backend);
  } else if (ev.frontend) {
    ov.frontends.set(ev.frontend.frontend, {state: ev.frontend.to, epoch, seq});
    list.frontendChanged(ev.frontend.frontend);
  } else if (ev.announce) {
    // Only the cards of its frontends.
    const a = ev.announce;
    for (const f of a.frontends) {
      if (!a.error) ov.announce.set(f, {announce: a.announced ? 'announced' : 'withdrawn', reason: a.reason, epoch, seq});
      list.frontendChanged(f);
    }
  } else if (ev.node) {
    // Only the header.
    ov.node = {drained: ev.node.drained, by: ev.node.by, since: ms(ev.unix_nanos), epoch, seq};
    if (state) renderNode(state.node, ov.node, state.session.admin);
  } else if (ev.vpp) {
    const api = $('#vpp-api');
    api.classList.remove('pulse');
    void api.offsetWidth;
    api.classList.add('pulse');
    $('#vpp-last').textContent = ev.vpp.op || ev.vpp.kind;
    $('#vpp-last').title = ev.vpp.error || '';
  }
  refreshSoon();
}

function onLive(live, closed) {
  document.body.dataset.live = live;
  $('#live').textContent = live ? 'live' : 'reconnecting…';
  if (live) log.add('stream', 'connected to maglevd');
  else if (!closed) log.add('stream', 'lost the connection to maglevd; retrying', 'warn');
}

// ----------------------------------------------------------------- detail

const detail = $('#detail');
let detailName = null;

async function loadDetail(name) {
  const b = await getJSON(api(`/backends/${encodeURIComponent(name)}`));
  if (detailName === name) renderDetail(b);
}

async function openDetail(name) {
  detailName = name;
  try {
    await loadDetail(name);
  } catch (e) {
    detailName = null;
    notice(`Backend ${name}: ${e.message}`);
    return;
  }
  if (!detail.open) detail.showModal();
}

detail.addEventListener('close', () => {
  detailName = null;
});

// ---------------------------------------------------------------- actions

const confirmDlg = $('#confirm');
const ok = $('#confirm-ok');
const weightInput = $('#weight-input');
const flush = $('#weight-flush');
const planEl = $('#plan');
let pending = null; // the action in the dialog: data-* of its button

const ACTIONS = {
  pause: ['Pause', (b) => `maglevd stops probing ${b} and drains it: weight 0 in every pool, established flows stay.`],
  resume: ['Resume', (b) => `maglevd probes ${b} again, from unknown; it takes traffic once it is up.`],
  disable: ['Disable', (b) => `${b} gets weight 0 and its flows are flushed; probing stops until it is enabled.`],
  enable: ['Enable', (b) => `maglevd probes ${b} again, from unknown; it takes traffic once it is up.`],
  drain: ['Drain', () => 'maglevd withdraws every VIP prefix of this router from BGP and keeps them withdrawn, across restarts, until it is undrained: traffic moves to the other routers.'],
  undrain: ['Undrain', () => 'maglevd announces again every VIP prefix this router can serve.'],
  weight: ['Set weight', (b, d) => `The configured weight of ${b} in pool ${d.pool} of frontend ${d.frontend}, in the running config (not the file).`],
};

function configuredWeight(d) {
  const c = cardOf(d.frontend);
  const fe = c && c.detail && c.detail.frontend;
  const pool = fe && fe.pools.find((p) => p.name === d.pool);
  const b = pool && pool.backends.find((x) => x.name === d.backend);
  return b ? b.weight : 0;
}

function ask(d) {
  const [label, text] = ACTIONS[d.action];
  pending = {...d};
  $('#confirm-title').textContent = `${label}: ${d.backend || 'this node'}`;
  $('#confirm-text').textContent = text(d.backend, d);
  $('#confirm-error').hidden = true;
  ok.textContent = label;
  ok.disabled = false;
  const isWeight = d.action === 'weight';
  $('#confirm-weight').hidden = !isWeight;
  planEl.replaceChildren();
  confirmDlg.showModal();
  if (isWeight) {
    weightInput.value = configuredWeight(d);
    flush.checked = false;
    weightInput.focus();
    weightInput.select();
    plan();
  } else {
    if (d.action === 'pause' || d.action === 'disable') planDrain(d);
    ok.focus();
  }
}

// A pause or disable drains the backend from every pool it is in: the
// dry run of weight 0 there (with flush for disable) shows what moves.
// The pools of the frontends using it come from the server: the page
// holds only the open cards' pools.
async function planDrain(d) {
  if (tab.peer) return; // dry runs are this maglevd's only
  const mine = ++planSeq;
  planEl.replaceChildren(h('p', {class: 'muted'}, 'Planning…'));
  try {
    const info = await getJSON(`/api/backends/${encodeURIComponent(d.backend)}`);
    const fes = await Promise.all(info.frontends.slice(0, DRAIN_FRONTENDS_MAX)
      .map((f) => getJSON(`/api/frontends/${encodeURIComponent(f)}`)));
    const members = fes.flatMap(({frontend: fe}) => fe.pools
      .filter((p) => p.backends.some((b) => b.name === d.backend))
      .map((p) => ({frontend: fe.name, pool: p.name, backend: d.backend, weight: 0, flush: d.action === 'disable'})));
    if (!members.length) {
      if (mine === planSeq) planEl.replaceChildren();
      return;
    }
    const plans = await Promise.all(members.map((m) => post('/api/plan', m)));
    if (mine === planSeq) {
      planEl.replaceChildren(...plans.flatMap((r, i) =>
        [h('p', {}, h('strong', {}, members[i].frontend)), ...planView(r).flat()]));
    }
  } catch (e) {
    if (mine === planSeq) planEl.replaceChildren(h('p', {class: 'error'}, `No dry run: ${e.message}`));
  }
}

function weightBody() {
  const w = Number(weightInput.value);
  if (weightInput.value.trim() === '' || !Number.isInteger(w) || w < 0 || w > 100) return null;
  const {frontend, pool, backend} = pending;
  return {frontend, pool, backend, weight: w, flush: flush.checked};
}

let planSeq = 0;
let planTimer = null;

async function plan() {
  clearTimeout(planTimer);
  const mine = ++planSeq;
  const body = weightBody();
  ok.disabled = !body;
  if (!body) {
    planEl.replaceChildren(h('p', {class: 'error'}, 'The weight is a whole number from 0 to 100.'));
    return;
  }
  if (tab.peer) {
    planEl.replaceChildren(h('p', {class: 'muted'}, `No dry run on a peer's tab: ${tab.peer} decides.`));
    return;
  }
  planEl.replaceChildren(h('p', {class: 'muted'}, 'Planning…'));
  try {
    const r = await post('/api/plan', body);
    if (mine === planSeq) planEl.replaceChildren(...planView(r).flat());
  } catch (e) {
    if (mine === planSeq) planEl.replaceChildren(h('p', {class: 'error'}, `No dry run: ${e.message}`));
  }
}

function planView(r) {
  if (!r.ops.length) return [h('p', {}, 'No change: VPP already holds this.')];
  const names = new Map();
  for (const t of r.tables) for (const a of t.after) if (a.backend) names.set(a.address, a.backend);
  const who = (addr) => (addr ? names.get(addr) || addr : 'drop');
  const pct = (x) => `${(Number(x) * 100).toFixed(1)}%`;
  return [
    h('p', {}, `Dry run: ${r.ops.length} ${r.ops.length === 1 ? 'operation' : 'operations'} to VPP`),
    h('ol', {class: 'ops'}, r.ops.map((op) => h('li', {}, h('code', {}, op)))),
    r.tables.map((t) => h('div', {class: 'table-change'},
      h('p', {}, h('strong', {}, t.vip), ': ',
        t.recreated ? 'recreated, every bucket moves and established flows lose their entries'
          : t.created ? 'created' : t.removed ? 'removed'
            : `${t.buckets_moved} of ${t.table_length} buckets move (${pct(t.moved_share)} of new flows)`),
      t.transfers.length ? h('ul', {}, t.transfers.map((x) => h('li', {}, `${who(x.from)} → ${who(x.to)}: ${x.buckets}`))) : null)),
  ];
}

async function run() {
  const d = pending;
  if (!d) return;
  let body = {};
  if (d.action === 'weight') {
    body = weightBody();
    if (!body) return;
  }
  ok.disabled = true;
  try {
    if (d.action === 'weight') await post(api('/weight'), body);
    else if (d.action === 'drain' || d.action === 'undrain') await post(api(`/node/${d.action}`), body);
    else await post(api(`/backends/${encodeURIComponent(d.backend)}/${d.action}`), body);
    pending = null;
    confirmDlg.close();
    refreshSoon(0);
  } catch (e) {
    const err = $('#confirm-error');
    err.textContent = e.message;
    err.hidden = false;
  } finally {
    ok.disabled = false;
  }
}

ok.addEventListener('click', run);
$('#confirm-cancel').addEventListener('click', () => confirmDlg.close());
confirmDlg.addEventListener('close', () => {
  pending = null;
  planSeq++;
});
weightInput.addEventListener('input', () => {
  clearTimeout(planTimer);
  planTimer = setTimeout(plan, 200);
});
weightInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') run();
});
flush.addEventListener('change', plan);

// A click on a dialog's backdrop closes it (the content fills the rest).
for (const dlg of [detail, confirmDlg]) {
  dlg.addEventListener('click', (e) => e.target === dlg && dlg.close());
}
$('#detail-close').addEventListener('click', () => detail.close());

document.addEventListener('click', (e) => {
  const link = e.target.closest('.backend-link');
  if (link) return void openDetail(link.dataset.backend);
  const act = e.target.closest('button[data-action]');
  if (act && state && state.session.admin) ask(act.dataset);
});

// ------------------------------------------------------------ the clocks

let lastTick = Date.now();
setInterval(() => {
  const now = Date.now();
  const gap = now - lastTick;
  lastTick = now;
  tick(now);
  // A background tab's timers are throttled: only a visible page can
  // tell a clock jump (sleep, wake) from that.
  if (!document.hidden && (gap > 10000 || gap < -1000)) {
    restart(`the clock jumped ${Math.round(gap / 1000)} s (sleep or wake?): reloading`);
  } else if (stream.live && now - stream.seen > SILENCE) {
    restart('nothing from maglevd for 45 s: reconnecting');
  }
}, 1000);

// With the counters, the open cards' pools: what VPP holds (buckets) has
// no event of its own.
setInterval(() => {
  if (!stream.live) return;
  loadCounters();
  for (const n of list.openOnPage()) loadFrontend(n, true);
}, COUNTERS_EVERY);

setInterval(() => stream.live && refreshSoon(0), FULL_REFRESH_EVERY);
window.addEventListener('online', () => restart('back online: reloading'));
// A tab coming back to the front had its timers throttled, not its clock
// moved: catch up without a full reload.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  lastTick = Date.now();
  if (stream.live) refreshSoon(0);
});

// ------------------------------------------------------------ the tabs

// A peer's tab: whether the peer answered, in the header and on the body.
function peerStatus(st) {
  const el = $('#peer-status');
  el.hidden = false;
  el.dataset.reachable = st.reachable;
  document.body.dataset.live = st.reachable;
  $('#live').textContent = st.reachable ? `peer ${tab.peer}` : `peer ${tab.peer}: unreachable`;
  el.textContent = st.reachable
    ? `${tab.peer} (${st.addr}), streamed through this maglevd`
    : `${tab.peer} (${st.addr}) is unreachable: ${st.error}`;
  $('#empty').hidden = true;
}

async function loadTabs() {
  try {
    renderTabs((await getJSON('/api/peers')).nodes);
  } catch {
    // This maglevd is away: the stream or the poll says so.
  }
}

async function loadFleet() {
  try {
    renderFleet(await getJSON('/api/fleet'));
    document.body.dataset.live = 'true';
    notice(null);
  } catch (e) {
    document.body.dataset.live = 'false';
    notice(`Cannot reach maglevd: ${e.message}`);
  }
  document.body.dataset.ready = 'true';
}

// A peer's tab, reloaded on its events (and polled): its frontends, with its own admin actions.
async function pollPeer() {
  try {
    await loadState();
    notice(null);
  } catch (e) {
    notice(`Cannot reach maglevd: ${e.message}`);
  }
  if (!state) document.body.dataset.ready = 'true';
  for (const n of list.openOnPage()) loadFrontend(n, true);
}

// A peer's tab and the fleet tab follow the peers' events on this
// maglevd's stream: each reloads (coalesced) on an event of its peer
// (the fleet tab: of any peer).
let peerTimer = null;
function onPeerEvent(type, data) {
  if (type !== 'peer') return;
  let ev;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  if (tab.peer && ev.peer !== tab.peer) return;
  // How many came (for tests and a curious operator's inspector).
  document.body.dataset.peerEvents = Number(document.body.dataset.peerEvents || 0) + 1;
  if (ev.error) loadTabs();
  if (peerTimer) return;
  peerTimer = setTimeout(() => {
    peerTimer = null;
    if (tab.fleet) loadFleet();
    else pollPeer();
  }, REFRESH_DELAY);
}

document.body.dataset.tab = tab.fleet ? 'fleet' : tab.peer ? 'peer' : 'self';
loadTabs();
setInterval(loadTabs, TABS_EVERY);
if (tab.fleet) {
  $('#live').textContent = 'fleet';
  loadFleet();
  setInterval(loadFleet, PEER_EVERY);
  new Stream(onPeerEvent, () => {}).open('');
} else if (tab.peer) {
  pollPeer();
  setInterval(pollPeer, PEER_EVERY);
  new Stream(onPeerEvent, () => {}).open('');
} else {
  restart();
}

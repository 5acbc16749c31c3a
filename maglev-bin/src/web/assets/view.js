// maglev dashboard, the view: frontend cards (a summary line, and a
// table per pool once opened), the VPP panel, per-VIP packet-rate
// sparklines and the backend detail. Each update compares with what is
// on screen and changes (and flashes) only what changed, so a refresh
// after events is cheap and quiet. Which cards are on the page is
// list.js's business.

import {h, s, $, $$, setText, setData, age, ms, stamp, duration, si} from './util.js';

const cards = new Map(); // frontend name → {el, shape, badge, ..., rows}
const rates = new Map(); // frontend name → {t, packets, points: [pkt/s]}
const SPARK_POINTS = 60; // 5 minutes at one scrape every 5 s

// The VIP as text: `192.0.2.1 tcp/80`, `192.0.2.1 tcp (all ports)`,
// `192.0.2.1 (all protocols and ports)`.
function vipText(fe) {
  if (!fe.protocol) return `${fe.address} (all protocols and ports)`;
  return fe.port ? `${fe.address} ${fe.protocol}/${fe.port}` : `${fe.address} ${fe.protocol} (all ports)`;
}

// The time of a backend's last transition, in Unix milliseconds (0: none).
function lastTransition(info) {
  const t = info && info.transitions;
  return t && t.length ? ms(t[t.length - 1].unix_nanos) : 0;
}

// A frontend's card from its summary entry (of /api/summary): the header
// (name, state, VIP, packet rate), the active pool and serving counts,
// and a button that shows or hides its pools (filled by renderPools).
function buildCard(fe) {
  const c = {name: fe.name, rows: [], pools: [], shape: null};
  c.badge = h('span', {class: 'badge'});
  c.announce = h('span', {class: 'announce', hidden: true, title: 'its VIP prefix, as this router announces it to BGP'});
  c.vip = h('span', {class: 'vip'});
  c.active = h('span', {class: 'muted'});
  c.counts = h('span', {class: 'muted counts'});
  c.toggle = h('button', {type: 'button', class: 'expand', 'aria-expanded': 'false',
    dataset: {expand: fe.name}}, 'Backends');
  c.desc = h('p', {class: 'desc', hidden: true});
  c.body = h('div', {class: 'pools'});
  c.line = s('polyline', {class: 'line', points: ''});
  c.area = s('polygon', {class: 'area', points: ''});
  const svg = s('svg', {class: 'spark', viewBox: '0 0 100 24', preserveAspectRatio: 'none', 'aria-hidden': 'true'});
  svg.append(c.area, c.line);
  c.rate = h('span', {class: 'rate', title: 'packets per second to this VIP'}, '— pkt/s');
  c.el = h('section', {class: 'card', dataset: {frontend: fe.name}, 'aria-label': `frontend ${fe.name}`},
    h('header', {},
      h('h2', {}, fe.name), c.badge, c.announce, c.vip,
      h('span', {class: 'traffic'}, svg, c.rate)),
    h('p', {class: 'meta'}, c.active, ' · ', c.counts, ' ', c.toggle),
    c.desc, c.body);
  return c;
}

// The card of `fe` (a summary entry), made if there is none yet.
export function cardFor(fe, ov) {
  let c = cards.get(fe.name);
  if (!c) {
    c = buildCard(fe);
    cards.set(fe.name, c);
    updateSummary(c, fe, ov, false);
    drawSpark(fe.name);
  }
  return c;
}

// The card of frontend `name`, if the page has one.
export const cardOf = (name) => cards.get(name);

// Forgets the card of frontend `name` (no longer on the page).
export function dropCard(name) {
  cards.delete(name);
}

// Brings a card's header up to its summary entry and `ov`'s newer state.
export function updateSummary(c, fe, ov, animate) {
  const f = ov.frontends.get(fe.name);
  const state = (f && f.state) || fe.state;
  setData(c.el, 'state', state, false);
  c.badge.dataset.state = state;
  setText(c.badge, state, animate);
  setText(c.vip, vipText(fe), animate);
  setText(c.active, fe.active_pool ? `active pool: ${fe.active_pool}` : 'no active pool', animate);
  setText(c.counts, `${fe.serving} serving, ${fe.up} of ${fe.backends} up`, animate);
  // Its prefix's announcement (only with an announce section).
  const a = ov.announce.get(fe.name);
  const announce = (a && a.announce) || fe.announce || '';
  const reason = (a && a.reason) || fe.announce_reason || '';
  c.announce.hidden = !announce;
  setData(c.announce, 'announce', announce, false);
  setText(c.announce, announce === 'withdrawn' ? `withdrawn (${reason})` : announce, animate);
}

// The header's node line: `node` is NodeInfo (of /api/summary), `o` a
// newer drain from an event ({drained, by, since} or undefined). An
// admin gets the drain / undrain button.
export function renderNode(node, o, admin) {
  const el = $('#node');
  const btn = $('#node-action');
  const enabled = !!(node && node.announce_enabled);
  const drained = o ? o.drained : !!(node && node.drained);
  const by = o ? o.by : node && node.drained_by;
  const since = o ? o.since : ms(node && node.drained_since_unix_nanos);
  el.hidden = !enabled && !drained;
  setData(el, 'drained', drained, false);
  setText(el, drained
    ? `drained${since ? ` since ${stamp(since)}` : ''}${by ? ` by ${by}` : ''}: every VIP withdrawn`
    : `announcing ${node ? node.announced : 0} of ${node ? node.prefixes : 0} prefixes`, false);
  el.title = enabled ? `routes go to ${node.table}` : '';
  if (admin && enabled) {
    btn.dataset.action = drained ? 'undrain' : 'drain';
    btn.textContent = drained ? 'Undrain' : 'Drain';
    btn.hidden = false;
  } else {
    delete btn.dataset.action;
    btn.hidden = true;
  }
}

// Shows the card's pools open or closed; closed, they are dropped.
export function setOpen(c, open) {
  c.toggle.setAttribute('aria-expanded', open);
  c.el.dataset.open = open;
  if (!open && c.shape !== null) {
    c.body.replaceChildren();
    c.rows = [];
    c.pools = [];
    c.shape = null;
    c.detail = null;
  }
}

function buildPools(c, fe, admin) {
  c.rows = [];
  c.pools = [];
  const els = [];
  for (const pool of fe.pools) {
    const p = {name: pool.name, tag: h('span', {class: 'tag'}, 'active'), info: h('small', {class: 'muted'})};
    const head = h('tr', {},
      ['Backend', 'State', 'Weight', 'Effective', 'Buckets', 'Share', 'Since'].map((t) => h('th', {scope: 'col'}, t)),
      h('th', {scope: 'col', title: 'probe in flight', 'aria-label': 'probe'}, '♥'),
      admin && h('th', {scope: 'col'}, 'Actions'));
    const body = h('tbody');
    for (const b of pool.backends) {
      const r = {name: b.name, pool: pool.name};
      r.state = h('span', {class: 'state'});
      r.weight = h('td', {class: 'num', dataset: {col: 'weight'}});
      r.effective = h('td', {class: 'num', dataset: {col: 'effective'}});
      r.buckets = h('td', {class: 'num', dataset: {col: 'buckets'}});
      r.bar = h('span', {class: 'bar'});
      r.share = h('span', {class: 'pct'});
      r.age = h('td', {class: 'num', dataset: {col: 'age'}});
      r.beat = h('td', {class: 'beat', dataset: {col: 'beat'}, 'aria-hidden': 'true'}, '·');
      r.actions = admin ? h('td', {class: 'actions', dataset: {col: 'actions'}}) : null;
      r.tr = h('tr', {dataset: {backend: b.name}},
        h('th', {scope: 'row'}, h('button', {type: 'button', class: 'backend-link', dataset: {backend: b.name}}, b.name)),
        h('td', {dataset: {col: 'state'}}, r.state), r.weight, r.effective, r.buckets,
        h('td', {dataset: {col: 'share'}}, h('span', {class: 'meter'}, r.bar), r.share),
        r.age, r.beat, r.actions);
      body.append(r.tr);
      c.rows.push(r);
    }
    p.el = h('div', {class: 'pool', dataset: {pool: pool.name}},
      h('h3', {}, pool.name, ' ', p.tag, ' ', p.info),
      h('div', {class: 'scroll'}, h('table', {}, h('thead', {}, head), body)));
    c.pools.push(p);
    els.push(p.el);
  }
  c.body.replaceChildren(...els);
}

function actionButtons(r, frontend, mode) {
  const btn = (action, label) => h('button', {type: 'button', class: 'act',
    dataset: {action, backend: r.name, frontend, pool: r.pool}}, label);
  r.actions.replaceChildren(...[
    mode === 'disabled' ? btn('enable', 'Enable')
      : [mode === 'paused' ? btn('resume', 'Resume') : btn('pause', 'Pause'), btn('disable', 'Disable')],
    btn('weight', 'Weight')].flat());
  r.actions.dataset.mode = mode;
}

// Fills an open card's pools from `detail` (of /api/frontends/{name}:
// the frontend's FrontendInfo and its backends' BackendInfo), or with
// `detail` null from the one it has, with `ov`'s newer states. Only what
// changed is touched (and flashed when `animate`).
export function renderPools(c, detail, ov, admin, animate) {
  if (detail) c.detail = detail;
  const d = c.detail;
  if (!d) return;
  const fe = d.frontend;
  const shape = JSON.stringify([admin, fe.pools.map((p) => [p.name, p.backends.map((b) => b.name)])]);
  const fresh = c.shape !== shape;
  if (fresh) {
    buildPools(c, fe, admin);
    c.shape = shape;
  }
  animate = animate && !fresh;
  const infos = new Map(d.backends.map((b) => [b.name, b]));
  const now = Date.now();
  setText(c.desc, fe.description, false);
  c.desc.hidden = !fe.description;
  const pools = new Map(fe.pools.map((p) => [p.name, p]));
  for (const p of c.pools) {
    const pool = pools.get(p.name);
    const active = p.name === fe.active_pool;
    p.el.dataset.active = active;
    p.tag.hidden = !active;
    setText(p.info, `serving ${pool.serving}, min-up ${pool.min_up}`, animate);
  }
  for (const r of c.rows) {
    const b = pools.get(r.pool).backends.find((x) => x.name === r.name);
    const info = infos.get(r.name);
    const o = ov.backends.get(r.name);
    const st = (o && o.state) || b.state;
    setData(r.tr, 'state', st, false);
    r.state.dataset.state = st;
    // Probes that cannot run for a reason of ours hold the state.
    const blocked = info && info.probe_blocked;
    setText(r.state, blocked ? `${st} (held)` : st, animate);
    r.state.title = blocked
      ? `probes cannot run (${blocked.reason}) since ${stamp(ms(blocked.since_unix_nanos))}: state held, unconfirmed`
      : '';
    setText(r.weight, b.weight, animate);
    // Operator overrides: a marker (CSS) and who/when/what the file says.
    marker(r.weight, b.weight_override, (o) =>
      `weight ${o.weight} set by ${o.by} at ${stamp(ms(o.at_unix_nanos))}; file says ${o.file_weight}`);
    marker(r.state, info && info.operator_override, (o) =>
      `${o.kind} by ${o.by} at ${stamp(ms(o.at_unix_nanos))} (an override of the config file)`);
    let eff = String(b.effective_weight);
    if (b.slow_start_step !== undefined && b.slow_start_step !== null) eff += ` ↗${b.slow_start_step + 1}/10`;
    if (b.suppressed) eff += ' (damped)';
    setText(r.effective, eff, animate);
    setText(r.buckets, b.buckets === undefined || b.buckets === null ? '—' : b.buckets, animate);
    const share = Number(b.share) || 0;
    r.bar.style.width = `${Math.min(100, share * 100)}%`;
    setText(r.share, `${(share * 100).toFixed(1)}%`, false);
    const since = (o && o.since) || lastTransition(info);
    r.age.dataset.since = since;
    setText(r.age, since ? age(now - since) : '—', false);
    if (r.actions) {
      const enabled = o ? st !== 'disabled' : !info || info.enabled;
      const mode = !enabled ? 'disabled' : st === 'paused' ? 'paused' : 'active';
      if (r.actions.dataset.mode !== mode) actionButtons(r, fe.name, mode);
    }
  }
}

// Whether an open card's pools hold `backend`.
export const holds = (c, backend) => c.rows.some((r) => r.name === backend);

// The VPP panel: `vpp` is VPPInfo or null (disconnected).
export function renderVpp(vpp, animate) {
  const panel = $('#vpp');
  const connected = !!vpp;
  setData(panel, 'connected', connected, false);
  setText($('#vpp-badge'), connected ? 'connected' : 'disconnected', animate);
  setText($('#vpp-version'), connected ? vpp.version : '—', animate);
  $('#vpp-version').title = connected ? `built ${vpp.build_date} in ${vpp.build_directory}` : '';
  setText($('#vpp-pid'), connected ? vpp.pid : '—', animate);
  const times = [
    ['#vpp-uptime', connected && vpp.boottime_ns],
    ['#vpp-since', connected && vpp.connecttime_ns],
    ['#vpp-full-sync', connected && Number(vpp.last_full_sync_ns) > 0 && vpp.last_full_sync_ns],
  ];
  for (const [id, t] of times) {
    const el = $(id);
    el.dataset.since = ms(t);
    el.title = t ? stamp(ms(t)) : '';
  }
  renderSync(connected ? vpp : null, animate);
  tick(Date.now());
}

// The sync-health line: frontends waiting for a sync (and the oldest
// wait), and in the tooltip the failures. The last full sync's age is a
// `[data-since]` of its own.
function renderSync(vpp, animate) {
  const el = $('#vpp-sync');
  if (!vpp) {
    setText(el, '—', animate);
    setData(el, 'stuck', false, false);
    el.title = '';
    return;
  }
  const pending = vpp.sync_pending || [];
  const count = vpp.sync_pending_count ?? pending.length;
  const oldest = vpp.sync_oldest_pending ? age(parseFloat(vpp.sync_oldest_pending) * 1000) : 'now';
  const full = vpp.sync_full_pending ? ' · full sync pending' : '';
  const text = count
    ? `${count} pending (oldest ${oldest})${full}`
    : `in step${full}`;
  setText(el, text, animate);
  setData(el, 'stuck', count > 0, false);
  const names = pending.slice(0, 8).map((p) => p.frontend).join(', ');
  el.title = `${names ? `pending: ${names}${count > 8 ? ', …' : ''}\n` : ''}`
    + `read errors ${vpp.read_errors}; failed syncs: refused ${vpp.sync_failures_refused}, `
    + `read ${vpp.sync_failures_read}, unavailable ${vpp.sync_failures_unavailable}`;
}

// Counts every `[data-since]` age on the page up to `now`.
export function tick(now) {
  for (const el of $$('[data-since]')) {
    const since = Number(el.dataset.since);
    setText(el, since ? age(now - since) : '—', false);
  }
}

// Shows or hides the probe heartbeat on `backend`'s rows.
export function heartbeat(backend, on) {
  for (const el of $$(`tr[data-backend="${CSS.escape(backend)}"] [data-col=beat]`)) {
    el.textContent = on ? '❤️' : '·';
    el.classList.toggle('on', on);
  }
}

// Takes a counter snapshot (VPPLBCounters or null) and draws each VIP's
// packet rate since the previous one.
export function counters(c) {
  if (!c || !c.scrape_unix_nanos) return;
  const t = ms(c.scrape_unix_nanos);
  for (const v of c.vips) {
    const lb = Number(v.next) + Number(v.first) + Number(v.untracked) + Number(v.no_server);
    const packets = Number(v.route_packets) || lb;
    let r = rates.get(v.frontend);
    if (!r) rates.set(v.frontend, (r = {t, packets, points: []}));
    if (t <= r.t) continue; // the same scrape again
    const dt = (t - r.t) / 1000;
    // A counter that went back (VPP restarted) starts over.
    if (packets >= r.packets) r.points.push((packets - r.packets) / dt);
    r.t = t;
    r.packets = packets;
    r.drops = Number(v.no_server);
    if (r.points.length > SPARK_POINTS) r.points.shift();
    drawSpark(v.frontend);
  }
}

function drawSpark(name) {
  const c = cards.get(name);
  const r = rates.get(name);
  if (!c || !r || !r.points.length) return;
  const pts = r.points;
  const max = Math.max(...pts, 1e-9);
  const x = (i) => (pts.length === 1 ? 100 : (i * 100) / (pts.length - 1)).toFixed(2);
  const y = (v) => (23 - (v / max) * 18).toFixed(2);
  const line = pts.map((v, i) => `${x(i)},${y(v)}`).join(' ');
  c.line.setAttribute('points', pts.length === 1 ? `0,${y(pts[0])} ${line}` : line);
  c.area.setAttribute('points', `0,24 ${pts.length === 1 ? `0,${y(pts[0])} ` : ''}${line} 100,24`);
  const last = pts[pts.length - 1];
  c.rate.textContent = `${si(last)} pkt/s`;
  c.rate.title = `packets per second to this VIP; peak ${si(max)} over the last ${pts.length} scrapes` +
    (r.drops ? `; ${r.drops} dropped for want of a backend` : '');
}

// Marks `el` as overridden by `o` (an OperatorOverride, or none), with
// `text(o)` as its tooltip.
function marker(el, o, text) {
  if (o) {
    el.dataset.override = o.kind;
    el.title = text(o);
  } else if (el.dataset.override) {
    delete el.dataset.override;
    el.title = '';
  }
}

// Fills the detail dialog from a BackendInfo.
export function renderDetail(b) {
  $('#detail-title').textContent = b.name;
  const badge = $('#detail-state');
  badge.textContent = b.state;
  badge.dataset.state = b.state;
  const facts = [
    ['address', b.address],
    ['health check', b.healthcheck || 'none (static: always up)'],
    ['enabled', b.enabled ? 'yes' : 'no'],
    ['health', b.healthcheck ? `${b.health} of ${b.rise + b.fall - 1} (rise ${b.rise}, fall ${b.fall})` : '—'],
    ['flaps', b.flaps],
    ['frontends', b.frontends.join(', ') || '—'],
  ];
  if (b.damping) {
    const d = b.damping;
    facts.push(['damping', `${d.suppressed ? 'suppressed' : 'not suppressed'}, penalty ${Number(d.penalty).toFixed(2)}` +
      (d.suppressed && d.release_unix_nanos ? `, released at ${stamp(ms(d.release_unix_nanos))}` : '')]);
  }
  if (b.probe_blocked) {
    const pb = b.probe_blocked;
    facts.push(['probes', h('span', {class: 'warn'},
      `blocked (${pb.reason}) since ${stamp(ms(pb.since_unix_nanos))}, ${pb.count} in a row: ${pb.detail}; ` +
      'the state is held until a probe can run')]);
  }
  const so = b.operator_override;
  if (so) facts.push(['override', `${so.kind} (by ${so.by} at ${stamp(ms(so.at_unix_nanos))})`]);
  for (const wo of b.weight_overrides || []) {
    facts.push(['override', `${wo.frontend}/${wo.pool}: weight ${wo.weight} (set by ${wo.by} at ` +
      `${stamp(ms(wo.at_unix_nanos))}; file says ${wo.file_weight})`]);
  }
  if (b.slow_start) facts.push(['slow start', `step ${b.slow_start.step + 1} of 10 since ${stamp(ms(b.slow_start.since_unix_nanos))}`]);
  const p = b.last_probe;
  const probe = p ? [
    ['code', h('code', {}, p.code)],
    ['detail', p.detail || '—'],
    ['duration', duration(p.duration)],
    ['age', h('span', {dataset: {since: ms(p.unix_nanos)}, title: stamp(ms(p.unix_nanos))})],
  ] : [['probe', 'none yet']];
  const dl = (rows) => rows.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)));
  $('#detail-facts').replaceChildren(...dl(facts));
  $('#detail-probe').replaceChildren(...dl(probe));
  const items = [...b.transitions].reverse().map((t) => h('li', {dataset: {to: t.to}},
    h('time', {}, stamp(ms(t.unix_nanos))), ' (',
    h('span', {dataset: {since: ms(t.unix_nanos)}}), ') ',
    h('span', {class: 'state', dataset: {state: t.from}}, t.from), ' → ',
    h('span', {class: 'state', dataset: {state: t.to}}, t.to), ' ',
    h('code', {}, t.code), t.detail ? ` ${t.detail}` : ''));
  $('#detail-history').replaceChildren(...items);
  $('#detail-none').hidden = items.length > 0;
  tick(Date.now());
}

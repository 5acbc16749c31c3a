// maglev dashboard, the live event log (#events): one line per event,
// newest at the bottom, capped, with pause/resume and a text filter; and
// how each kind of event reads as a line.

import {h, clock, ms} from './util.js';

const CAP = 500;

export class EventLog {
  constructor(list, pause, filter) {
    this.list = list;
    this.pause = pause;
    this.filter = filter;
    this.paused = false;
    this.held = [];
    pause.addEventListener('click', () => this.setPaused(!this.paused));
    filter.addEventListener('input', () => {
      for (const li of this.list.children) this.match(li);
    });
  }

  setPaused(paused) {
    this.paused = paused;
    this.pause.setAttribute('aria-pressed', paused);
    if (!paused) {
      const held = this.held;
      this.held = [];
      this.append(held);
    }
    this.label();
  }

  label() {
    this.pause.textContent = this.paused ? `Resume${this.held.length ? ` (${this.held.length} new)` : ''}` : 'Pause';
  }

  match(li) {
    const q = this.filter.value.trim().toLowerCase();
    li.hidden = q !== '' && !li.textContent.toLowerCase().includes(q);
  }

  // Adds a line: `kind` (backend, frontend, vpp, announce, node, log, lag, stream),
  // `text`, `level` (info, warn, error…), at Unix milliseconds `t`.
  add(kind, text, level = 'info', t = Date.now()) {
    const li = h('li', {dataset: {kind, level}},
      h('time', {}, clock(t)), ' ', h('span', {class: 'kind'}, kind), ' ', h('span', {class: 'msg'}, text));
    if (this.paused) {
      this.held.push(li);
      if (this.held.length > CAP) this.held.shift();
      this.label();
    } else {
      this.append([li]);
    }
  }

  append(lis) {
    const l = this.list;
    const atBottom = l.scrollTop + l.clientHeight >= l.scrollHeight - 8;
    for (const li of lis) this.match(li);
    l.append(...lis);
    while (l.children.length > CAP) l.firstElementChild.remove();
    if (atBottom) l.scrollTop = l.scrollHeight;
  }
}

// Log records that say what a typed event already said.
const DUPLICATES = /^(backend-transition|frontend-transition|vpp-lbsync|backend-suppressed|backend-released)\b/;

function fields(f) {
  return Object.entries(f || {}).map(([k, v]) => `${k}=${v}`).join(' ');
}

// An event of SSE type `type` (its JSON `ev`, a maglev.Event) as
// [kind, text, level, Unix ms], or null for none.
export function describe(type, ev) {
  const t = ms(ev.unix_nanos) || Date.now();
  if (ev.backend) {
    const b = ev.backend;
    if (b.transition) {
      const x = b.transition;
      const level = x.to === 'down' ? 'warn' : 'info';
      return ['backend', `${b.backend}: ${x.from} → ${x.to} (${x.code}${x.detail ? `: ${x.detail}` : ''})`, level, t];
    }
    if (b.damping) {
      const d = b.damping;
      return ['backend', `${b.backend}: ${d.suppressed ? 'suppressed by' : 'released from'} flap damping (penalty ${Number(d.penalty).toFixed(2)})`, 'warn', t];
    }
    if (b.probe_blocked) {
      const p = b.probe_blocked;
      const s = p.spell || {};
      return p.blocked
        ? ['backend', `${b.backend}: probes cannot run (${s.reason}${s.detail ? `: ${s.detail}` : ''}); state held`, 'warn', t]
        : ['backend', `${b.backend}: probes run again${s.count ? ` (${s.count} could not)` : ''}`, 'info', t];
    }
    return ['backend', b.backend, 'info', t];
  }
  if (ev.frontend) {
    const f = ev.frontend;
    return ['frontend', `${f.frontend}: ${f.from} → ${f.to}`, f.to === 'down' ? 'warn' : 'info', t];
  }
  if (ev.vpp) {
    const v = ev.vpp;
    const text = `${v.frontend ? `[${v.frontend}] ` : ''}${v.op || v.kind}${v.error ? ` failed: ${v.error}` : ''}`;
    return ['vpp', text, v.error ? 'error' : 'info', t];
  }
  if (ev.log) {
    const l = ev.log;
    if (DUPLICATES.test(l.message)) return null;
    const f = fields(l.fields);
    return ['log', `${l.message}${f ? ` ${f}` : ''}`, l.level, t];
  }
  if (ev.announce) {
    const a = ev.announce;
    const what = a.announced ? 'announced' : 'withdrawn';
    const fes = a.frontends.length ? ` (${a.frontends.join(', ')})` : '';
    return a.error
      ? ['announce', `${a.prefix}${fes}: ${what} (${a.reason}); the table change failed: ${a.error}`, 'error', t]
      : ['announce', `${a.prefix}${fes}: ${what} (${a.reason})`, a.announced ? 'info' : 'warn', t];
  }
  if (ev.node) {
    const n = ev.node;
    return ['node', `${n.drained ? 'drained' : 'undrained'} by ${n.by}`, n.drained ? 'warn' : 'info', t];
  }
  if (ev.lag) return ['lag', `the stream lost ${ev.lag.lost} events`, 'warn', t];
  return type ? [type, JSON.stringify(ev), 'info', t] : null;
}

// maglev dashboard, the frontend list: the model of every frontend (the
// entries of /api/summary), the filter (words and a state, kept in the
// page's URL so a link shows the same), and the window of cards on the
// page: the first PAGE matches, PAGE more whenever the end of the list
// comes into view. Updates change the model; only cards on the page are
// touched, and a card stays the same element while it stays on the page.

import {$} from './util.js';
import {cardFor, cardOf, dropCard, updateSummary, setOpen, renderPools, holds} from './view.js';

const PAGE = 100;
// Up to this many frontends, every card opens by itself: a small site
// sees its pools at once.
const OPEN_ALL_UP_TO = 20;
const STATES = ['up', 'down', 'unknown'];

export class FrontendList {
  // `ov`: the states from events newer than the model (app.js's);
  // `onOpen(name)`: a card opened, load its pools.
  constructor(ov, onOpen) {
    this.ov = ov;
    this.onOpen = onOpen;
    this.model = new Map(); // name → summary entry
    this.order = []; // names, in the summary's order
    this.matches = []; // names that pass the filter
    this.onPage = new Set(); // names with a card on the page
    this.shown = PAGE;
    this.opened = new Set(); // opened by the operator
    this.closed = new Set(); // closed by the operator
    this.admin = false;
    this.root = $('#frontends');
    this.input = $('#fe-filter');
    this.stateSel = $('#fe-state');
    this.more = $('#fe-more');
    this.count = $('#fe-count');
    const q = new URLSearchParams(location.search);
    this.input.value = q.get('q') || '';
    this.stateSel.value = STATES.includes(q.get('state')) ? q.get('state') : '';
    this.input.addEventListener('input', () => this.filterChanged());
    this.stateSel.addEventListener('change', () => this.filterChanged());
    this.more.addEventListener('click', () => this.showMore());
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((es) => {
        if (es.some((e) => e.isIntersecting)) this.showMore();
      }, {rootMargin: '400px'}).observe(this.more);
    }
    this.root.addEventListener('click', (e) => {
      const t = e.target.closest('button[data-expand]');
      if (t) this.toggle(t.dataset.expand);
    });
  }

  // Takes a new summary (/api/summary): the model follows it, the cards
  // on the page show what changed (flashed when `animate`).
  load(st, animate) {
    this.admin = st.session.admin;
    const names = [];
    for (const fe of st.frontends) {
      fe.hay = `${fe.name} ${fe.address} ${fe.protocol}/${fe.port}`.toLowerCase();
      names.push(fe.name);
      this.model.set(fe.name, fe);
    }
    if (this.model.size !== names.length) {
      const keep = new Set(names);
      for (const n of [...this.model.keys()]) {
        if (!keep.has(n)) {
          this.model.delete(n);
          this.opened.delete(n);
          this.closed.delete(n);
        }
      }
    }
    this.order = names;
    for (const n of this.onPage) {
      const c = cardOf(n);
      const fe = this.model.get(n);
      if (c && fe) updateSummary(c, fe, this.ov, animate);
    }
    this.apply();
  }

  stateOf(fe) {
    const o = this.ov.frontends.get(fe.name);
    return (o && o.state) || fe.state;
  }

  isOpen(name) {
    if (this.opened.has(name)) return true;
    return this.order.length <= OPEN_ALL_UP_TO && !this.closed.has(name);
  }

  // The open cards on the page, by name.
  openOnPage() {
    return [...this.onPage].filter((n) => this.isOpen(n));
  }

  // The names with a card on the page, in order.
  pageNames() {
    return this.matches.slice(0, this.shown);
  }

  filterChanged() {
    const q = new URLSearchParams(location.search);
    for (const [k, v] of [['q', this.input.value.trim()], ['state', this.stateSel.value]]) {
      if (v) q.set(k, v);
      else q.delete(k);
    }
    const search = q.toString();
    history.replaceState(history.state, '', `${location.pathname}${search ? `?${search}` : ''}${location.hash}`);
    this.shown = PAGE;
    this.apply();
  }

  showMore() {
    if (this.shown >= this.matches.length) return;
    this.shown += PAGE;
    this.render();
  }

  // Filters the model again and shows the window of matches.
  apply() {
    const words = this.input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const only = this.stateSel.value;
    const tally = {up: 0, down: 0, unknown: 0};
    const matches = [];
    for (const n of this.order) {
      const fe = this.model.get(n);
      const state = this.stateOf(fe);
      tally[state] = (tally[state] || 0) + 1;
      if (only && state !== only) continue;
      if (words.length && !words.every((w) => fe.hay.includes(w) || state === w)) continue;
      matches.push(n);
    }
    this.matches = matches;
    const total = this.order.length;
    const noun = total === 1 ? 'frontend' : 'frontends';
    const filtered = words.length > 0 || !!only;
    const states = STATES.filter((s) => tally[s]).map((s) => `${tally[s]} ${s}`).join(', ');
    this.count.textContent = `${filtered ? `${matches.length} of ` : ''}${total} ${noun}${states ? ` (${states})` : ''}`;
    this.count.dataset.total = total;
    this.count.dataset.matches = matches.length;
    $('#empty').hidden = total > 0;
    $('#no-match').hidden = total === 0 || matches.length > 0;
    this.render();
  }

  // Puts the window's cards on the page: cards that stay are the same
  // elements (untouched); cards that leave are forgotten.
  render() {
    const names = this.pageNames();
    const on = new Set(names);
    const els = names.map((n) => cardFor(this.model.get(n), this.ov).el);
    for (const n of this.onPage) if (!on.has(n)) dropCard(n);
    this.onPage = on;
    const kids = this.root.children;
    // Reorder only when needed: moving a node would lose the focus in it.
    if (els.length !== kids.length || els.some((el, i) => kids[i] !== el)) this.root.replaceChildren(...els);
    for (const n of names) {
      const c = cardOf(n);
      const open = this.isOpen(n);
      const was = c.el.dataset.open === 'true';
      setOpen(c, open);
      if (open && !was) this.onOpen(n);
    }
    const left = this.matches.length - names.length;
    this.more.hidden = left <= 0;
    this.more.textContent = `Show ${Math.min(PAGE, left)} more (${left} not shown)`;
  }

  toggle(name) {
    const c = cardOf(name);
    if (!c) return;
    const open = !this.isOpen(name);
    (open ? this.opened : this.closed).add(name);
    (open ? this.closed : this.opened).delete(name);
    setOpen(c, open);
    if (open) this.onOpen(name);
  }

  // An event changed frontend `name`'s state: its card, if on the page.
  frontendChanged(name) {
    const c = cardOf(name);
    const fe = this.model.get(name);
    if (c && fe) updateSummary(c, fe, this.ov, true);
  }

  // An event changed backend `name`'s state: its rows in open cards.
  backendChanged(name) {
    for (const n of this.onPage) {
      const c = cardOf(n);
      if (c && c.detail && holds(c, name)) renderPools(c, null, this.ov, this.admin, true);
    }
  }
}

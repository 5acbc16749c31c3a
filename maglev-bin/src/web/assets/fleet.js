// maglev dashboard, the fleet: the tab bar (this maglevd, each --peer,
// and the fleet tab; from /api/peers, a peer that cannot be read marked
// unreachable), which tab the page shows (the URL's hash: empty, #peer=NAME
// or #fleet; a change reloads the page), and the fleet tab's agreement
// matrix (/api/fleet: a row per frontend, a cell per node, coloured by
// its verdict), reloaded on the peers' events (app.js).

import {$, h} from './util.js';

const hash = new URLSearchParams(location.hash.slice(1));

// The tab shown: {peer: NAME or '', fleet: bool}.
export const tab = {peer: hash.get('peer') || '', fleet: location.hash === '#fleet'};

// The API path of `p` (e.g. '/summary') for the tab's maglevd.
export const api = (p) => (tab.peer ? `/api/peers/${encodeURIComponent(tab.peer)}${p}` : `/api${p}`);

window.addEventListener('hashchange', () => location.reload());

function link(label, href, current, reachable) {
  const a = h('a', {href, class: 'tab'}, label);
  if (current) a.setAttribute('aria-current', 'page');
  a.dataset.reachable = reachable;
  if (!reachable) a.title = 'unreachable';
  return a;
}

// Fills the tab bar from /api/peers (`nodes`); hidden without peers.
export function renderTabs(nodes) {
  const nav = $('#tabs');
  if (nodes.length < 2) {
    nav.hidden = true;
    return;
  }
  nav.hidden = false;
  const links = nodes.map((n) => {
    const current = n.self ? !tab.peer && !tab.fleet : tab.peer === n.name;
    const a = link(n.name, n.self ? '#' : `#peer=${encodeURIComponent(n.name)}`, current, n.reachable);
    a.dataset.node = n.name;
    if (!n.reachable) a.append(h('span', {class: 'unreachable'}, ' unreachable'));
    return a;
  });
  const fleet = link('Fleet', '#fleet', tab.fleet, true);
  fleet.dataset.node = '';
  fleet.id = 'tab-fleet';
  nav.replaceChildren(...links, fleet);
}

const short = (fp) => (fp ? fp.slice(-6) : '');

function cellView(c) {
  if (c.verdict === 'unreachable') return h('td', {class: 'cell', 'data-verdict': c.verdict}, 'unreachable');
  if (!c.present) return h('td', {class: 'cell', 'data-verdict': c.verdict}, 'missing');
  const td = h('td', {class: 'cell', 'data-verdict': c.verdict},
    h('span', {class: 'state', 'data-state': c.state}, c.state),
    ' ', c.active_pool || '—',
    c.announce ? h('span', {class: 'announce', 'data-announce': c.announce}, ` ${c.announce}`) : null,
    h('br'),
    h('code', {title: `table ${c.table_fingerprint}, config ${c.config_fingerprint}`},
      `${short(c.table_fingerprint)} / ${short(c.config_fingerprint)}`));
  return td;
}

// Renders /api/fleet's answer in the matrix.
export function renderFleet(f) {
  $('#fleet-head').replaceChildren(h('tr', {},
    h('th', {}, 'Frontend'), h('th', {}, 'Verdict'),
    ...f.nodes.map((n) => {
      const th = h('th', {'data-reachable': String(n.reachable), 'data-node': n.name}, n.name);
      if (!n.reachable) th.title = n.error || 'unreachable';
      return th;
    })));
  $('#fleet-rows').replaceChildren(...f.frontends.map((r) => {
    const tr = h('tr', {'data-frontend': r.name, 'data-verdict': r.verdict},
      h('th', {}, r.name),
      h('td', {class: 'verdict'}, r.nodes.length ? `${r.verdict} (${r.nodes.join(', ')})` : r.verdict), ...r.cells.map(cellView));
    return tr;
  }));
  $('#fleet-empty').hidden = f.frontends.length > 0;
}

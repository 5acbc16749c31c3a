// maglev dashboard, helpers: building DOM nodes, the "changed" flash, and
// formatting ages, clock times, durations and rates. No state here.

const SVG = 'http://www.w3.org/2000/svg';

// An element: h('td', {class: 'x', dataset: {col: 'age'}}, 'text', child).
// Attributes that are null, undefined or false are left out.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c);
  }
  return el;
}

// An SVG element with attributes.
export function s(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
}

// The element matching `css`, or null.
export const $ = (css, root = document) => root.querySelector(css);
export const $$ = (css, root = document) => [...root.querySelectorAll(css)];

// Restarts the short "changed" animation on `el`.
export function flash(el) {
  el.classList.remove('changed');
  void el.offsetWidth; // restart the animation
  el.classList.add('changed');
}

// Sets `el`'s text; flashes it when `animate` and the text changed.
export function setText(el, text, animate) {
  text = String(text);
  if (el.textContent === text) return false;
  el.textContent = text;
  if (animate) flash(el);
  return true;
}

// Sets an attribute; flashes `el` when `animate` and the value changed.
export function setData(el, key, value, animate) {
  value = String(value);
  if (el.dataset[key] === value) return false;
  const had = key in el.dataset;
  el.dataset[key] = value;
  if (animate && had) flash(el);
  return true;
}

const UNITS = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];

// An age in milliseconds as its two largest units: `now`, `42s`,
// `10m30s`, `1h12m`, `1d16h`.
export function age(ms) {
  let secs = Math.floor(ms / 1000);
  if (!(secs >= 1)) return 'now';
  for (let i = 0; i < UNITS.length; i++) {
    const [u, n] = UNITS[i];
    if (secs >= n) {
      const major = Math.floor(secs / n);
      if (i === UNITS.length - 1) return `${major}${u}`;
      const [u2, n2] = UNITS[i + 1];
      return `${major}${u}${Math.floor((secs - major * n) / n2)}${u2}`;
    }
  }
  return 'now';
}

// Unix nanoseconds (a JSON number) as milliseconds; 0 stays 0.
export const ms = (nanos) => (nanos ? Number(nanos) / 1e6 : 0);

const pad = (n, w = 2) => String(n).padStart(w, '0');

// A wall-clock time of day, `14:03:07.250`, from Unix milliseconds.
export function clock(t, millis = true) {
  const d = new Date(t);
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return millis ? `${hms}.${pad(d.getMilliseconds(), 3)}` : hms;
}

// A date and time, `2026-11-03 14:03:07`, from Unix milliseconds.
export function stamp(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(t, false)}`;
}

// A protobuf JSON Duration (`"0.001500s"`) as `1.5 ms`.
export function duration(text) {
  const secs = parseFloat(text);
  if (!Number.isFinite(secs)) return '—';
  if (secs < 1e-3) return `${(secs * 1e6).toFixed(0)} µs`;
  if (secs < 1) return `${(secs * 1e3).toFixed(1)} ms`;
  return `${secs.toFixed(2)} s`;
}

// A rate with an SI prefix: `0.2`, `12`, `3.4k`, `1.2M`.
export function si(n) {
  if (!Number.isFinite(n)) return '—';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  if (abs >= 10 || n === 0) return n.toFixed(0);
  return n.toFixed(1);
}

// The sequence number of an event id `<epoch>-<seq>` in `epoch`, or -1.
export function seqOf(id, epoch) {
  const [e, q] = String(id || '').split('-');
  return e === epoch && /^\d+$/.test(q) ? Number(q) : -1;
}

// The epoch part of an event id.
export const epochOf = (id) => String(id || '').split('-')[0];

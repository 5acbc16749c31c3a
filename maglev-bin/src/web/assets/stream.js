// maglev dashboard, the event stream: Server-Sent Events from
// /api/events, read with fetch rather than EventSource so that the
// server's `: ping` comments reach the page's watchdog. It resumes with
// Last-Event-ID after the last id seen and reconnects on its own (after
// the server's `retry` hint, longer after repeated failures).

export class Stream {
  // `onEvent(type, data, id)` for every event with data; `onLive(live,
  // closed)` when the stream opens, is lost, or (`closed`) is closed.
  constructor(onEvent, onLive) {
    this.onEvent = onEvent;
    this.onLive = onLive;
    this.live = false;
    this.seen = Date.now(); // when anything (a ping too) last arrived
    this.retry = 2000;
    this.failures = 0;
    this.ctl = null;
    this.timer = null;
    this.lastId = '';
  }

  // (Re)opens the stream after event id `since`.
  open(since) {
    this.close();
    this.lastId = since || '';
    this.failures = 0;
    this.connect();
  }

  close() {
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
    clearTimeout(this.timer);
    this.setLive(false, true);
  }

  setLive(live, closed = false) {
    if (live === this.live) return;
    this.live = live;
    this.onLive(live, closed);
  }

  async connect() {
    const ctl = new AbortController();
    this.ctl = ctl;
    const headers = {Accept: 'text/event-stream'};
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    try {
      const res = await fetch(`${location.origin}/api/events`, {headers, cache: 'no-store', signal: ctl.signal});
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      this.seen = Date.now();
      this.failures = 0;
      this.setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done || this.ctl !== ctl) break;
        this.seen = Date.now();
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          this.block(block);
          if (this.ctl !== ctl) return; // a handler closed or reopened it
        }
      }
    } catch {
      // Refused, reset or aborted: reconnect below unless closed.
    }
    if (this.ctl !== ctl) return;
    this.setLive(false);
    this.failures += 1;
    this.timer = setTimeout(() => this.connect(), Math.min(this.retry * this.failures, 15000));
  }

  block(text) {
    let type = 'message';
    let id = null;
    const data = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === ':') continue; // a comment: `: ping`
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    }
    if (id !== null) this.lastId = id;
    if (data.length) this.onEvent(type, data.join('\n'), id);
  }
}

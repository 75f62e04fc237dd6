// Seat state of one event and the feed that keeps it current: the
// WebSocket live feed (API.md: a snapshot, then deltas; close code 4000 =
// resync) and, while the socket is not open, polling of GET .../seats with
// If-None-Match.

export const AVAILABLE = 0;
export const RESERVED = 1;
export const BOOKED = 2;
export const BLOCKED = 3;
export const statusNames = ['available', 'reserved', 'booked', 'blocked'];
const statusCodes = new Map(statusNames.map((n, i) => [n, i]));

export function statusCode(name) {
  const c = statusCodes.get(name);
  return c === undefined ? BLOCKED : c; // an unknown status is never for sale
}

// SeatStore holds every seat of an event in flat arrays, by seat index (the
// order of GET .../seats, which is the plan's and never changes).
export class SeatStore {
  // seatMap is the body of GET /v1/events/{id}/seats; categoryIndex maps a
  // category name to its index in the event's categories (255: unknown).
  constructor(seatMap, categoryIndex) {
    const seats = seatMap.seats;
    const n = seats.length;
    this.n = n;
    this.ids = new Array(n);
    this.zone = new Array(n);
    this.row = new Array(n);
    this.number = new Array(n);
    this.x = new Float32Array(n);
    this.y = new Float32Array(n);
    this.cat = new Uint8Array(n);
    this.status = new Uint8Array(n);
    this.changedAt = new Float64Array(n);
    this.index = new Map();
    for (let i = 0; i < n; i++) {
      const s = seats[i];
      this.ids[i] = s.id;
      this.zone[i] = s.zone;
      this.row[i] = s.row;
      this.number[i] = s.number;
      this.x[i] = s.x;
      this.y[i] = s.y;
      const c = categoryIndex.get(s.category);
      this.cat[i] = c === undefined ? 255 : c;
      this.status[i] = statusCode(s.status);
      this.index.set(s.id, i);
    }
    this.version = seatMap.version;
    this.listeners = [];
  }

  // onChange registers fn(indices, source) called after statuses change.
  onChange(fn) { this.listeners.push(fn); }

  emit(changed, source) {
    if (changed.length === 0) return;
    for (const fn of this.listeners) fn(changed, source);
  }

  // applyChanges applies {seatId: status} and returns the changed indices.
  applyChanges(changes, version, source) {
    const now = Date.now();
    const changed = [];
    for (const id in changes) {
      const i = this.index.get(id);
      if (i === undefined) continue;
      const st = statusCode(changes[id]);
      if (this.status[i] !== st) {
        this.status[i] = st;
        this.changedAt[i] = now;
        changed.push(i);
      }
    }
    if (version > this.version) this.version = version;
    this.emit(changed, source);
    return changed;
  }

  // applySeatMap applies a whole GET .../seats body newer than the state.
  applySeatMap(seatMap, source) {
    if (seatMap.version <= this.version) return [];
    const now = Date.now();
    const changed = [];
    const seats = seatMap.seats;
    for (let k = 0; k < seats.length; k++) {
      const s = seats[k];
      const i = this.ids[k] === s.id ? k : this.index.get(s.id);
      if (i === undefined) continue;
      const st = statusCode(s.status);
      if (this.status[i] !== st) {
        this.status[i] = st;
        this.changedAt[i] = now;
        changed.push(i);
      }
    }
    this.version = seatMap.version;
    this.emit(changed, source);
    return changed;
  }

  // applyIndexed applies a newer version given as parallel arrays of seat
  // indices and status codes (from the polling worker).
  applyIndexed(version, index, status, source) {
    if (version <= this.version) return [];
    const now = Date.now();
    const changed = [];
    for (let k = 0; k < index.length; k++) {
      const i = index[k];
      if (i < this.n && this.status[i] !== status[k]) {
        this.status[i] = status[k];
        this.changedAt[i] = now;
        changed.push(i);
      }
    }
    this.version = version;
    this.emit(changed, source);
    return changed;
  }

  // setLocal records a status learnt from an answer of ours (for example
  // the seats a failed hold found taken) until the feed confirms it.
  setLocal(indices, st) {
    const now = Date.now();
    const changed = [];
    for (const i of indices) {
      if (this.status[i] !== st) {
        this.status[i] = st;
        this.changedAt[i] = now;
        changed.push(i);
      }
    }
    this.emit(changed, 'local');
  }
}

// Reconnect delays after a dropped socket: doubling from the first to the
// last, with up to a quarter of jitter so that a restarted server is not
// hit by every browser at once.
const reconnectFirstMs = 250;
const reconnectMaxMs = 10_000;
// While the socket is not open the seat map is polled this often, which
// keeps a durable change on screen within a second (API.md).
const pollIntervalMs = 500;
// A hidden tab polls only this often.
const pollHiddenMs = 5_000;

// LiveFeed keeps a SeatStore current. Its mode is 'connecting', 'live'
// (socket open), 'polling' (socket down, polling works) or 'offline'
// (neither works).
export class LiveFeed {
  // pollOnly (the page's ?feed=poll) never opens the socket: it shows, and
  // lets tests check, the fallback that a server or proxy without
  // WebSockets gets.
  constructor({ eventId, store, api, onMode, pollOnly }) {
    this.eventId = eventId;
    this.pollOnly = !!pollOnly;
    this.store = store;
    this.api = api;
    this.onMode = onMode || (() => {});
    this.mode = 'connecting';
    this.ws = null;
    this.attempts = 0;
    this.reconnectTimer = 0;
    this.pollTimer = 0;
    this.polling = false;
    this.pollAbort = null;
    this.stopped = false;
    this.frames = 0;
  }

  start() {
    if (!this.pollOnly) this.connect();
    // Until the socket proves itself, poll: a server without the live feed,
    // or a proxy that drops WebSockets, still gives a current map.
    this.startPolling();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopPolling();
    if (this.worker) this.worker.terminate();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000, 'page left');
    }
  }

  setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.store.version > 0 ? `?since=${this.store.version}` : '';
    return `${proto}//${location.host}/v1/events/${encodeURIComponent(this.eventId)}/live${since}`;
  }

  connect() {
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setMode('live');
      this.stopPolling();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.attempts = 0; // a working feed resets the backoff
      this.frames++;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // not ours to interpret; the next frame or a resync repairs
      }
      this.handle(msg, ws);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.startPolling();
      this.scheduleReconnect(ev.code === 4000);
    };
  }

  handle(msg, ws) {
    const store = this.store;
    if (msg.type === 'snapshot') {
      // An older snapshot than what polling already showed is skipped: the
      // deltas after it still apply (each carries its seats' final status).
      if (msg.version >= store.version && msg.seats) store.applyChanges(msg.seats, msg.version, 'live');
      return;
    }
    if (msg.type === 'delta') {
      if (msg.version <= store.version) return;
      if (msg.from > store.version) {
        // A gap: ask again from what we have.
        ws.close(4000, 'gap');
        return;
      }
      store.applyChanges(msg.changes || {}, msg.version, 'live');
    }
  }

  scheduleReconnect(resync) {
    clearTimeout(this.reconnectTimer);
    const base = resync && this.attempts === 0 ? 50 : Math.min(reconnectMaxMs, reconnectFirstMs * 2 ** this.attempts);
    const delay = base + Math.random() * base * 0.25;
    this.attempts = Math.min(this.attempts + 1, 10);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    if (this.mode === 'live') this.setMode('polling');
    this.pollTimer = setTimeout(() => this.poll(), 0);
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    if (this.pollAbort) this.pollAbort.abort();
    this.pollAbort = null;
  }

  seatsURL() {
    return `/v1/events/${encodeURIComponent(this.eventId)}/seats`;
  }

  // poller returns the polling worker, started on first use; null where
  // workers are not available (the page then polls on its main thread).
  poller() {
    if (this.worker !== undefined) return this.worker;
    this.worker = null;
    try {
      const w = new Worker('/ui/poller.js');
      w.postMessage({ type: 'init', ids: this.store.ids });
      w.onmessage = ({ data }) => {
        const wait = this.pending;
        if (wait && wait.seq === data.seq) {
          this.pending = null;
          wait.resolve(data);
        }
      };
      w.onerror = () => {
        // A worker that cannot run: fall back to the main thread.
        w.terminate();
        this.worker = null;
        if (this.pending) {
          this.pending.resolve({ ok: false });
          this.pending = null;
        }
      };
      this.worker = w;
    } catch {
      this.worker = null;
    }
    return this.worker;
  }

  // pollOnce asks for the seat map once and applies it; it reports
  // whether the server answered.
  async pollOnce(abort) {
    const worker = this.poller();
    if (worker) {
      this.seq = (this.seq || 0) + 1;
      const seq = this.seq;
      // An earlier poll still waiting (polling was stopped and restarted)
      // ends now; its answer, when it comes, is not for anyone.
      if (this.pending) this.pending.resolve({ ok: true });
      const answer = await new Promise((resolve) => {
        this.pending = { seq, resolve };
        worker.postMessage({
          type: 'poll', seq, url: this.seatsURL(), version: this.store.version,
          token: this.api.hasSession() ? this.api.session.token : '', statuses: this.store.status,
        });
      });
      if (abort.signal.aborted) return true;
      if (answer.ok && answer.index) this.store.applyIndexed(answer.version, answer.index, answer.status, 'poll');
      return !!answer.ok;
    }
    const res = await this.api.request('GET', this.seatsURL(), {
      headers: { 'If-None-Match': `"${this.store.version}"` }, signal: abort.signal, raw: true,
    });
    if (res.status === 200) {
      const body = await res.json();
      if (!abort.signal.aborted) this.store.applySeatMap(body, 'poll');
    }
    return true;
  }

  async poll() {
    if (!this.polling) return;
    const abort = new AbortController();
    this.pollAbort = abort;
    let ok = true;
    try {
      ok = await this.pollOnce(abort);
    } catch (err) {
      if (err.name === 'AbortError') return;
      ok = false;
    }
    if (!this.polling || abort.signal.aborted) return;
    if (this.mode !== 'live') this.setMode(ok ? 'polling' : 'offline');
    const delay = document.hidden ? pollHiddenMs : pollIntervalMs;
    this.pollTimer = setTimeout(() => this.poll(), delay);
  }
}

// boxoffice's browser UI: the event list (#/) and an event's seat map
// (#/events/{id}, with #/events/{id}/reservations/{rid} opening a booking's
// confirmation). Plain modules, no build step; see doc.go for the contract.

import { Api, ApiError, idempotencyKey } from './api.js';
import { SeatStore, LiveFeed, AVAILABLE, RESERVED, BOOKED, statusNames } from './live.js';
import { SeatMap, colors } from './seatmap.js';

const api = new Api();
const main = document.getElementById('main');
const connEl = document.getElementById('conn');
const announceEl = document.getElementById('announce');
let page = null;

// The test cards of the built-in simulated payment provider.
const testCards = [
  { token: 'tok_visa', label: 'Visa •••• 4242 (succeeds)' },
  { token: 'tok_mastercard', label: 'Mastercard •••• 4444 (succeeds)' },
  { token: 'tok_chargeDeclined', label: 'Card declined (test)' },
  { token: 'tok_delayed', label: 'Card confirmed later by the bank (test)' },
  { token: 'tok_delayed_fail', label: 'Card failed later by the bank (test)' },
];

// DOM helpers -----------------------------------------------------------------

// h builds an element: h('p', {class: 'x', onclick: fn}, 'text', child).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// fill replaces el's children, skipping empty ones as h does.
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

let messageTimer = 0;

// showMessage shows a banner; kind is error, warn, success or info.
function showMessage(text, kind = 'error', timeoutMs = kind === 'error' || kind === 'warn' ? 12000 : 6000) {
  const box = document.getElementById('message');
  document.getElementById('message-text').textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
  box.dataset.kind = kind;
  clearTimeout(messageTimer);
  if (timeoutMs > 0) messageTimer = setTimeout(hideMessage, timeoutMs);
}

function hideMessage() {
  document.getElementById('message').hidden = true;
}

document.getElementById('message-close').addEventListener('click', hideMessage);

function announce(text) {
  // Clearing first makes a repeated text be read again.
  announceEl.textContent = '';
  setTimeout(() => { announceEl.textContent = text; }, 30);
}

function setConn(mode) {
  const labels = { connecting: 'Connecting…', live: 'Live', polling: 'Updating every ½ s', offline: 'Offline — retrying' };
  connEl.hidden = !mode;
  connEl.className = `conn ${mode || ''}`;
  connEl.textContent = labels[mode] || '';
  connEl.dataset.mode = mode || '';
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const countFormat = new Intl.NumberFormat();

function fmtDate(s) {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? '' : dateFormat.format(d);
}

// moneyFormatter formats integer minor units of an ISO 4217 currency.
function moneyFormatter(currency) {
  let nf;
  try {
    nf = new Intl.NumberFormat(undefined, { style: 'currency', currency });
  } catch {
    nf = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  const digits = nf.resolvedOptions().maximumFractionDigits;
  return (minor) => nf.format(minor / 10 ** digits);
}

function fmtCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}

function plural(n, one, many) {
  return `${countFormat.format(n)} ${n === 1 ? one : many}`;
}

// fmtWhen is a moment in the buyer's local time, with the date unless it
// is today.
function fmtWhen(s) {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return '';
  return d.toDateString() === new Date().toDateString() ? timeFormat.format(d) : dateFormat.format(d);
}

// fmtWait is an estimated wait in words (the server's estimate reads a day
// when it has nothing to go by).
function fmtWait(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds >= 86400) return 'not known yet';
  if (seconds < 60) return 'less than a minute';
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `about ${plural(minutes, 'minute', 'minutes')}`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return `about ${plural(hours, 'hour', 'hours')}${rest ? ` ${plural(rest, 'minute', 'minutes')}` : ''}`;
}

// The buyer's place in an event's waiting room ("queue": the ticket) and
// its admission live in sessionStorage, keyed by event: a reload keeps the
// place; another tab asks the server, which gives the same ticket back.
function loadRoom(kind, eventId) {
  try {
    return JSON.parse(sessionStorage.getItem(`boxoffice.${kind}.${eventId}`) || 'null');
  } catch {
    return null; // damaged or no storage: the server has the place
  }
}

function saveRoom(kind, eventId, value) {
  try {
    const key = `boxoffice.${kind}.${eventId}`;
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode without storage: the place lasts as long as the page.
  }
}

// explain turns an API error into a sentence for the buyer.
function explain(err, ctx = {}) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message || err}`;
  switch (err.code) {
    case 'seat_unavailable':
      return 'Sorry — those seats were just taken by someone else.';
    case 'reservation_expired':
      return 'Your hold expired and the seats went back on sale. Please pick seats again.';
    case 'reservation_released':
      return 'This hold was released (it expired, was cancelled or its payment failed). Please pick seats again.';
    case 'limit_exceeded':
      return `You can have at most ${ctx.max || 'a few'} seats for this event, counting the seats you already hold or bought.`;
    case 'sales_not_open':
      return ctx.onSaleAt ? `Sales have not opened yet — they open ${fmtDate(ctx.onSaleAt)}.` : 'Sales have not opened yet.';
    case 'sales_closed':
      return 'Sales for this event have closed.';
    case 'event_cancelled':
      return 'This event has been cancelled.';
    case 'rate_limited':
      return `Too many requests — please wait ${err.retryAfterSeconds || 1} s and try again.`;
    case 'payment_declined':
      return 'Your card was declined. Your seats stay held until the countdown ends — try another card.';
    case 'payment_in_progress':
      return 'A payment for this hold is already in progress; wait for it to finish.';
    case 'already_booked':
      return 'These seats are already booked by you.';
    case 'admission_required':
      return 'This event has a waiting room: you need to be admitted before you can hold seats.';
    case 'admission_budget_exceeded':
      return `Your admission allows at most ${ctx.budget || ctx.max || 'a few'} seats, counting the seats you already hold or bought.`;
    case 'queue_full':
      return 'The waiting room is full right now. Please try again later.';
    case 'ticket_not_found':
      return 'Your place in the waiting room was not found.';
    case 'anonymous_sessions_disabled':
      return 'This box office does not offer guest checkout.';
    case 'event_not_found':
      return 'This event does not exist (any more).';
    case 'reservation_not_found':
      return 'That reservation was not found for this browser.';
    case 'network':
      return err.message;
    default:
      if (err.status === 503) return 'The box office is busy right now — please try again in a moment.';
      return err.message || `Request failed (${err.status}).`;
  }
}

// Routing ----------------------------------------------------------------------

function route() {
  const m = /^#\/events\/([^/]+)(?:\/reservations\/([^/]+))?\/?$/.exec(location.hash);
  if (m) {
    const eventId = decodeURIComponent(m[1]);
    const resId = m[2] ? decodeURIComponent(m[2]) : null;
    if (page && page instanceof EventPage && page.eventId === eventId) {
      page.showConfirmation(resId);
      return;
    }
    switchTo(new EventPage(eventId, resId));
    return;
  }
  switchTo(new EventListPage());
}

function switchTo(next) {
  if (page) page.destroy();
  page = next;
  hideMessage();
  setConn(null);
  document.body.classList.toggle('map-mode', next instanceof EventPage);
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  next.mount().catch((err) => {
    if (page !== next) return;
    main.replaceChildren(h('div', { class: 'events' },
      h('h1', {}, 'Cannot show this page'),
      h('p', {}, explain(err)),
      h('p', {}, h('a', { href: '#/' }, 'Back to all events'))));
  });
}

window.addEventListener('hashchange', route);

// Event list ---------------------------------------------------------------------

function saleChip(ev, now) {
  if (ev.salesEndAt && Date.parse(ev.salesEndAt) <= now) return h('span', { class: 'chip closed' }, 'Sales closed');
  if (Date.parse(ev.onSaleAt) > now) return h('span', { class: 'chip soon' }, `On sale ${fmtDate(ev.onSaleAt)}`);
  return h('span', { class: 'chip onsale' }, 'On sale');
}

class EventListPage {
  async mount() {
    document.title = 'boxoffice — events';
    const { events } = await api.request('GET', '/v1/events');
    if (page !== this) return;
    const now = api.now();
    const cards = events.map((ev) => {
      const pct = ev.capacity ? (100 * ev.available) / ev.capacity : 0;
      return h('li', {},
        h('a', { class: 'event-card', href: `#/events/${encodeURIComponent(ev.id)}`, dataset: { eventId: ev.id } },
          h('h2', {}, ev.name),
          h('p', { class: 'meta' }, `${ev.venue} · ${fmtDate(ev.startsAt)}`),
          h('div', {}, saleChip(ev, now)),
          h('div', { class: 'avail' },
            h('span', {}, `${countFormat.format(ev.available)} of ${countFormat.format(ev.capacity)} seats available`),
            h('div', { class: 'bar', role: 'presentation' }, h('span', { style: { width: `${pct.toFixed(1)}%` } })))));
    });
    const mine = h('section', { class: 'events-mine' });
    main.replaceChildren(h('div', { class: 'events' },
      h('h1', {}, 'Events'),
      events.length ? h('ul', { class: 'event-cards' }, cards) : h('p', {}, 'No events are on sale right now.'),
      mine));
    if (api.hasSession()) this.renderMine(mine, events);
  }

  async renderMine(box, events) {
    let list;
    try {
      ({ reservations: list } = await api.request('GET', '/v1/reservations', { auth: true }));
    } catch {
      return; // the list of events stands on its own
    }
    if (page !== this || !list.length) return;
    const names = new Map(events.map((e) => [e.id, e.name]));
    box.append(h('h2', {}, 'Your reservations'),
      h('ul', {}, list.slice(0, 20).map((r) => h('li', {},
        h('a', { href: `#/events/${encodeURIComponent(r.eventId)}${r.status === 'booked' ? `/reservations/${encodeURIComponent(r.id)}` : ''}` },
          names.get(r.eventId) || r.eventId),
        ` — ${plural(r.seats.length, 'seat', 'seats')}, ${r.status}${r.bookingId ? ` (booking ${r.bookingId})` : ''}`))));
  }

  destroy() {}
}

// Event page -----------------------------------------------------------------------

class EventPage {
  constructor(eventId, resId) {
    this.eventId = eventId;
    this.initialResId = resId;
    this.selected = [];
    this.reservations = [];
    this.mine = new Set();
    this.cardChoice = new Map(); // reservation id → test card token
    this.timers = [];
    this.destroyed = false;
    this.reservationsLoaded = false;
    this.lastHeldAt = 0;
    this.lastBookedAt = 0;
  }

  async mount() {
    const id = encodeURIComponent(this.eventId);
    const [event, plan] = await Promise.all([
      api.request('GET', `/v1/events/${id}`),
      // The plan only adds the stage; a map without it is still usable.
      api.request('GET', `/v1/events/${id}/plan`).catch(() => ({ areas: [] })),
    ]);
    if (this.destroyed) return;
    this.event = event;
    this.plan = plan;
    this.money = moneyFormatter(event.currency);
    this.max = event.maxSeatsPerCustomer;
    document.title = `${event.name} — boxoffice`;
    if (this.roomOn()) {
      // A waiting room: the buyer queues first and sees the map (6 MB of
      // seats for the stadium) only once admitted.
      this.room = new WaitingRoom(this);
      await this.room.start();
      return;
    }
    await this.showMap();
  }

  // roomOn reports whether the buyer queues before seeing the map: the
  // event has a waiting room that is on, and there is something to sell.
  roomOn() {
    const wr = this.event.waitingRoom;
    return !!(wr && wr.enabled) && this.event.status !== 'cancelled' && this.saleState() !== 'closed';
  }

  // showMap loads the seats and shows the seat map with the panel.
  async showMap() {
    if (this.mapShown) return;
    this.mapShown = true;
    const id = encodeURIComponent(this.eventId);
    let seatMap;
    try {
      seatMap = await api.request('GET', `/v1/events/${id}/seats`);
    } catch (err) {
      this.mapShown = false;
      throw err;
    }
    if (this.destroyed || !this.mapShown) return;
    const event = this.event;
    document.body.classList.add('map-mode');
    const categoryIndex = new Map(event.categories.map((c, i) => [c.name, i]));
    this.store = new SeatStore(seatMap, categoryIndex);
    this.selected = [];
    this.mine = new Set();
    this.reservationsKey = null;
    this.render();
    this.map = new SeatMap(this.canvas, this.store, {
      categories: event.categories,
      areas: this.plan.areas || [],
      onTap: (i) => this.tap(i),
      onHover: (i, x, y) => this.hover(i, x, y),
      onFocusSeat: (i, say) => this.focusSeat(i, say),
      onViewChange: () => this.hideTooltip(),
      isMine: (i) => this.mine.has(i),
    });
    this.store.onChange((changed, source) => this.seatsChanged(changed, source));
    this.feed = new LiveFeed({
      eventId: this.eventId, store: this.store, api, onMode: (m) => setConn(m),
      pollOnly: new URLSearchParams(location.search).get('feed') === 'poll',
    });
    setConn('connecting');
    this.feed.start();
    this.renderSummary();
    this.renderSelection();
    this.renderReservations();
    this.renderAdmission();
    this.every(500, () => this.tick());
    // Reservations change on their own (expiry, a delayed payment): re-read
    // them now and then, and whenever the page comes back into view.
    this.every(20000, () => this.loadReservations());
    this.onVisible = () => { if (!document.hidden) this.loadReservations(); };
    document.addEventListener('visibilitychange', this.onVisible);
    installTestHooks(this);
    this.ready = true;
    await this.loadReservations();
    if (this.initialResId) {
      const resId = this.initialResId;
      this.initialResId = null;
      this.showConfirmation(resId);
    }
  }

  // teardownMap stops the map, its feed and timers (the buyer goes back to
  // the waiting room).
  teardownMap() {
    this.mapShown = false;
    this.ready = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.feed) this.feed.stop();
    if (this.map) this.map.destroy();
    if (this.onVisible) document.removeEventListener('visibilitychange', this.onVisible);
    this.onVisible = null;
    this.selected = [];
    this.admissionEl = null;
    setConn(null);
    document.body.classList.remove('map-mode');
  }

  destroy() {
    this.destroyed = true;
    if (this.room) this.room.stop();
    this.teardownMap();
  }

  every(ms, fn) {
    this.timers.push(setInterval(fn, ms));
  }

  // Rendering -----------------------------------------------------------------

  render() {
    const ev = this.event;
    this.canvas = h('canvas', {
      id: 'seatmap', tabindex: '0', role: 'application',
      'aria-label': `Seat map of ${ev.venue}. Arrow keys move between seats, Enter selects, plus and minus zoom.`,
      'aria-describedby': 'map-help',
    });
    this.tooltip = h('div', { class: 'tooltip', id: 'tooltip', hidden: true });
    const zoomBtn = (dir, label, text) => h('button', { type: 'button', 'aria-label': label, title: label, dataset: { zoom: dir }, onclick: () => this.map.zoomButton(dir) }, text);
    this.mapWrap = h('div', { class: 'map-wrap' },
      this.canvas,
      h('div', { class: 'map-controls' }, zoomBtn('in', 'Zoom in', '+'), zoomBtn('out', 'Zoom out', '−'), zoomBtn('fit', 'Show the whole venue', '⤢')),
      this.tooltip,
      h('p', { class: 'map-hint', id: 'map-help' }, 'Drag to move · scroll or pinch to zoom · click a seat to select'));

    const cats = ev.categories.map((c) => h('li', {},
      h('span', { class: 'swatch', style: { background: c.color } }),
      h('span', {}, c.name),
      h('span', { class: 'price' }, this.money(c.priceCents))));
    const key = (style, label, crossed) => h('li', {}, h('span', { class: `swatch${crossed ? ' crossed' : ''}`, style }), label);
    const legend = h('section', { class: 'legend', 'aria-labelledby': 'legend-h' },
      h('h2', { id: 'legend-h' }, 'Prices'),
      h('ul', {}, cats),
      h('ul', { class: 'status-key' },
        key({ background: colors.selectedFill, borderColor: colors.selectedRing, borderWidth: '2px' }, 'Selected'),
        key({ background: colors.mineFill, borderColor: colors.mineRing, borderWidth: '2px' }, 'Yours'),
        key({ background: colors.reserved }, 'Reserved'),
        key({ background: colors.booked }, 'Sold'),
        key({ background: colors.blocked }, 'Blocked', true)));

    this.selectionBox = h('section', { class: 'selection', 'aria-labelledby': 'sel-h' });
    this.reservationsBox = h('section', { class: 'reservations', 'aria-labelledby': 'res-h' });
    this.summary = h('p', { class: 'meta' });
    this.dialog = h('dialog', { class: 'confirmation', id: 'confirmation', 'aria-labelledby': 'conf-h' });
    this.dialog.addEventListener('close', () => {
      if (/\/reservations\//.test(location.hash)) history.replaceState(null, '', `#/events/${encodeURIComponent(this.eventId)}`);
    });

    // With a waiting room: the admission's countdown, above the map.
    this.admissionEl = this.room ? h('div', { class: 'admission', id: 'admission' }) : null;
    this.admissionState = null;

    main.replaceChildren(h('section', { class: 'event-page' },
      h('div', { class: 'event-head' },
        h('a', { class: 'back', href: '#/' }, '← All events'),
        h('h1', {}, ev.name),
        this.summary),
      this.admissionEl,
      h('div', { class: 'event-body' },
        this.mapWrap,
        h('aside', { class: 'panel', 'aria-label': 'Prices and your seats' }, this.selectionBox, this.reservationsBox, legend)),
      this.dialog));
  }

  renderSummary() {
    const st = this.store.status;
    let available = 0;
    for (let i = 0; i < st.length; i++) if (st[i] === AVAILABLE) available++;
    const ev = this.event;
    this.summary.textContent = `${ev.venue} · ${fmtDate(ev.startsAt)} · ${countFormat.format(available)} of ${countFormat.format(this.store.n)} seats available`;
  }

  saleState() {
    const now = api.now();
    const ev = this.event;
    if (Date.parse(ev.onSaleAt) > now) return 'soon';
    if (ev.salesEndAt && Date.parse(ev.salesEndAt) <= now) return 'closed';
    return 'open';
  }

  seatLabel(i) {
    const s = this.store;
    return `Row ${s.row[i]} · Seat ${s.number[i]}`;
  }

  category(i) {
    return this.event.categories[this.store.cat[i]];
  }

  priceOf(i) {
    const c = this.category(i);
    return c ? c.priceCents : 0;
  }

  // statusText is a seat's status as the buyer should read it.
  statusText(i) {
    if (this.mine.has(i)) return this.store.status[i] === BOOKED ? 'booked by you' : 'held by you';
    if (this.selected.includes(i)) return 'selected';
    return statusNames[this.store.status[i]];
  }

  describe(i) {
    const s = this.store;
    const c = this.category(i);
    return `Row ${s.row[i]} seat ${s.number[i]}, ${c ? c.name : 'no category'}, ${c ? this.money(c.priceCents) : ''}, ${this.statusText(i)}, ${s.zone[i]}`;
  }

  // heldCount is how many seats the buyer already has for this event.
  heldCount() {
    let n = 0;
    for (const r of this.reservations) if (r.status === 'held' || r.status === 'paying' || r.status === 'booked') n += r.seats.length;
    return n;
  }

  renderSelection() {
    const box = this.selectionBox;
    const items = this.selected.map((i) => h('li', {},
      h('span', { class: 'swatch', style: { background: (this.category(i) || {}).color || colors.unknownCategory } }),
      h('span', {}, `${this.store.zone[i]} · ${this.seatLabel(i)}`),
      h('span', { class: 'price' }, this.money(this.priceOf(i))),
      h('button', { type: 'button', 'aria-label': `Remove ${this.seatLabel(i)}`, title: 'Remove', onclick: () => this.toggle(i) }, '×')));
    const total = this.selected.reduce((sum, i) => sum + this.priceOf(i), 0);
    const state = this.saleState();
    const notice = state === 'soon'
      ? h('p', { class: 'notice' }, `Sales open ${fmtDate(this.event.onSaleAt)}.`)
      : state === 'closed' ? h('p', { class: 'notice' }, 'Sales for this event have closed.') : null;
    const left = Math.max(0, this.max - this.heldCount());
    fill(box,
      h('h2', { id: 'sel-h' }, 'Your selection'),
      notice,
      items.length ? h('ul', { id: 'selection-list' }, items) : h('p', { class: 'empty' }, 'Pick seats on the map.'),
      items.length ? h('div', { class: 'total-row' }, h('span', {}, plural(items.length, 'seat', 'seats')), h('span', {}, this.money(total))) : null,
      h('button', {
        type: 'button', class: 'btn block', id: 'hold-btn', disabled: !items.length || this.busy,
        onclick: () => this.hold(),
      }, this.busy === 'hold' ? 'Holding…' : items.length ? `Hold ${plural(items.length, 'seat', 'seats')}` : 'Hold seats'),
      h('p', { class: 'hint' }, `Up to ${this.max} seats per buyer${left < this.max ? ` (${left} left for you)` : ''}. Held seats are kept for ${Math.round(this.event.holdTtlSeconds / 60)} minutes while you pay.`));
  }

  renderReservations() {
    const box = this.reservationsBox;
    const shown = [];
    let released = 0;
    for (const r of this.reservations) {
      if (r.status === 'released') {
        if (released++ >= 2) continue;
      }
      shown.push(r);
    }
    fill(box,
      h('h2', { id: 'res-h' }, 'Your reservations'),
      shown.length ? shown.map((r) => this.reservationCard(r)) : h('p', { class: 'empty' }, 'Nothing held or booked yet.'));
    this.tick();
  }

  reservationCard(r) {
    const labels = r.seats.map((id) => {
      const i = this.store.index.get(id);
      return h('li', {}, i === undefined ? id : `${this.store.zone[i]} · ${this.seatLabel(i)} (${(this.category(i) || {}).name || ''})`);
    });
    const badge = { held: 'Held', paying: 'Paying', booked: 'Booked', released: 'Released' }[r.status] || r.status;
    const body = [];
    if (r.status === 'held') {
      // The chosen card survives the list being drawn again.
      const chosen = this.cardChoice.get(r.id) || testCards[0].token;
      const select = h('select', {
        class: 'card-select', 'aria-label': 'Test card',
        onchange: (e) => this.cardChoice.set(r.id, e.target.value),
      }, testCards.map((c) => h('option', { value: c.token, selected: c.token === chosen }, c.label)));
      body.push(h('div', { class: 'actions' },
        h('label', {}, 'Test card', select),
        h('button', {
          type: 'button', class: 'btn pay-btn', disabled: !!this.busy,
          onclick: () => this.pay(r, select.value),
        }, this.busy === `pay:${r.id}` ? 'Paying…' : `Pay ${this.money(r.totalCents)}`),
        h('button', {
          type: 'button', class: 'btn danger release-btn', disabled: !!this.busy,
          onclick: () => this.release(r),
        }, 'Release')));
    } else if (r.status === 'paying') {
      body.push(h('p', { class: 'reason' }, 'Your payment is being confirmed…'));
    } else if (r.status === 'booked') {
      body.push(h('p', {}, 'Booking ', h('span', { class: 'booking-id' }, r.bookingId || '')),
        h('a', { class: 'btn secondary block', href: `#/events/${encodeURIComponent(this.eventId)}/reservations/${encodeURIComponent(r.id)}` }, 'Show confirmation'));
    } else if (r.status === 'released') {
      const why = { expired: 'the hold expired', cancelled: 'you released it', payment_failed: 'the payment failed' }[r.releaseReason] || r.releaseReason || '';
      body.push(h('p', { class: 'reason' }, `Released${why ? ` — ${why}` : ''}.`));
    }
    return h('article', { class: `res ${r.status}`, dataset: { reservationId: r.id, status: r.status } },
      h('header', {},
        h('span', { class: 'badge' }, badge),
        r.status === 'held' || r.status === 'paying'
          ? h('span', { class: 'countdown', dataset: { expiresAt: r.expiresAt }, 'aria-label': 'Time left to pay' }, '')
          : null),
      h('ul', {}, labels),
      h('div', { class: 'total-row' }, h('span', {}, plural(r.seats.length, 'seat', 'seats')), h('span', {}, this.money(r.totalCents))),
      body);
  }

  // tick updates the countdowns; a hold that runs out is re-read.
  tick() {
    this.tickAdmission();
    const now = api.now();
    let expired = false;
    for (const el of this.reservationsBox.querySelectorAll('.countdown')) {
      const left = Date.parse(el.dataset.expiresAt) - now;
      el.textContent = left > 0 ? fmtCountdown(left) : 'expired';
      el.classList.toggle('urgent', left < 60_000);
      if (left <= 0 && !el.dataset.done) {
        el.dataset.done = '1';
        expired = true;
      }
    }
    if (expired) {
      showMessage('Your hold expired and the seats went back on sale.', 'warn');
      setTimeout(() => this.loadReservations(), 1200);
    }
  }

  // Admission (events with a waiting room) -------------------------------------

  // admitted is the waiting room's news that the buyer's turn has come:
  // show the map (the hold button then sends the admission token).
  admitted() {
    this.admissionEnded = null;
    if (this.mapShown) {
      this.renderAdmission();
      return;
    }
    const a = this.room.admission();
    announce(a && !a.claimed
      ? `It's your turn. Choose your seats within ${fmtWait((Date.parse(a.claimBy) - api.now()) / 1000).replace(/^about /, '')}.`
      : "It's your turn. The seat map is shown.");
    this.showMap().catch((err) => {
      if (this.destroyed) return;
      this.room.render('error', { message: explain(err), retry: () => this.admitted() });
    });
  }

  // admissionClaimed: a hold succeeded with the admission, which now lives
  // until its expiry instead of its claim deadline.
  admissionClaimed() {
    this.room.markClaimed();
    this.renderAdmission();
  }

  // admissionDone: a booking ends the admission (the next buyer in line
  // gets the place in the shop).
  admissionDone() {
    if (!this.room) return;
    this.room.dropAdmission();
    this.admissionEnded = 'done';
    this.renderAdmission();
  }

  // backToQueue leaves the map for the waiting page and asks for a place
  // (the same one while the ticket is live, else one at the back).
  backToQueue(message) {
    if (!this.room || this.destroyed) return;
    this.room.dropAdmission();
    if (message) showMessage(message, 'warn');
    this.teardownMap();
    this.room.start(true);
  }

  // renderAdmission shows the admission's state above the map: the claim
  // countdown, then its expiry, then that it ended. Its content is built
  // again only when the state changes, so a focused button stays.
  renderAdmission() {
    const el = this.admissionEl;
    if (!el || !this.room) return;
    const a = this.room.admission();
    const now = api.now();
    let state;
    if (a) state = a.claimed ? 'claimed' : Date.parse(a.claimBy) > now ? 'choose' : 'checking';
    else state = this.admissionEnded === 'done' ? 'done' : 'ended';
    if (state !== this.admissionState) {
      const hadFocus = el.contains(document.activeElement);
      this.admissionState = state;
      el.dataset.state = state;
      const rejoin = () => h('button', {
        type: 'button', class: 'btn small', id: 'rejoin-btn', onclick: () => this.backToQueue(),
      }, 'Join the queue again');
      switch (state) {
        case 'choose':
          fill(el, h('p', {},
            h('strong', {}, "It's your turn."), ' Choose your seats within ',
            h('span', { class: 'countdown', id: 'admission-countdown' }, fmtCountdown(Date.parse(a.claimBy) - now)),
            ` — hold at least one seat by then (up to ${a.seatBudget || this.max}), or your turn passes to the next person in line.`));
          break;
        case 'checking':
          fill(el, h('p', {}, 'Checking your admission…'));
          break;
        case 'claimed':
          fill(el, h('p', {}, h('strong', {}, "You're in."),
            ` Your admission expires at ${fmtWhen(a.expiresAt)}: hold any more seats before then.`));
          break;
        case 'done':
          fill(el, h('p', {}, h('strong', {}, 'Purchase complete.'),
            ' Your turn in the waiting room ended with your booking. To buy more seats, join the queue again.'), rejoin());
          break;
        default:
          fill(el, h('p', {}, h('strong', {}, 'Your admission has ended.'),
            ' Seats you hold stay yours until their countdown ends; to hold more, join the queue again.'), rejoin());
      }
      if (hadFocus) (el.querySelector('button') || main).focus();
    }
    if (state === 'choose') {
      const cd = el.querySelector('.countdown');
      const left = Date.parse(a.claimBy) - now;
      cd.textContent = fmtCountdown(left);
      cd.classList.toggle('urgent', left < 30_000);
    } else if (state === 'checking') {
      this.room.check();
    }
  }

  tickAdmission() {
    if (this.admissionEl) this.renderAdmission();
  }

  // State ------------------------------------------------------------------------

  async loadReservations() {
    if (!api.hasSession() || this.destroyed || !this.mapShown) return;
    try {
      const { reservations } = await api.request('GET', `/v1/reservations?eventId=${encodeURIComponent(this.eventId)}`, { auth: true });
      if (this.destroyed || !this.mapShown) return;
      this.setReservations(reservations);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) api.dropSession();
    }
  }

  setReservations(list) {
    // An unchanged list is not drawn again: that would reset a focused
    // button under a keyboard user every time the list is re-read.
    const key = JSON.stringify(list);
    if (key === this.reservationsKey) return;
    this.reservationsKey = key;
    this.reservations = list;
    this.reservationsLoaded = true;
    const mine = new Set();
    for (const r of list) {
      if (r.status !== 'held' && r.status !== 'paying' && r.status !== 'booked') continue;
      for (const id of r.seats) {
        const i = this.store.index.get(id);
        if (i !== undefined) mine.add(i);
      }
    }
    this.mine = mine;
    this.selected = this.selected.filter((i) => !mine.has(i));
    this.updateOverlay();
    this.renderReservations();
    this.renderSelection();
  }

  upsertReservation(r) {
    const list = this.reservations.filter((x) => x.id !== r.id);
    list.unshift(r);
    list.sort((a, b) => Date.parse(b.createdAt || 0) - Date.parse(a.createdAt || 0));
    this.setReservations(list);
  }

  updateOverlay() {
    this.map.setOverlay([...this.selected, ...this.mine]);
  }

  seatsChanged(changed, source) {
    this.renderSummary();
    if (source === 'local') return;
    let mineFreed = false;
    for (const i of changed) {
      if (this.mine.has(i) && this.store.status[i] === AVAILABLE) mineFreed = true;
    }
    this.dropTaken(changed);
    if (mineFreed) this.loadReservations();
    if (this.tooltipSeat >= 0 && changed.includes(this.tooltipSeat)) this.showTooltip(this.tooltipSeat);
  }

  // dropTaken removes from the selection the seats among candidates that
  // someone else has taken, marks them on the map and says so.
  dropTaken(candidates) {
    const taken = candidates.filter((i) => this.store.status[i] !== AVAILABLE && this.selected.includes(i)
      // The feed may announce our own hold before its answer arrives (the
      // server publishes, then replies): those seats are not taken.
      && !(this.holding && this.holding.has(i)));
    if (!taken.length) return;
    this.selected = this.selected.filter((i) => !taken.includes(i));
    this.map.markTaken(taken);
    this.updateOverlay();
    this.renderSelection();
    const names = taken.map((i) => this.seatLabel(i)).join(', ');
    showMessage(`${names} ${taken.length === 1 ? 'was' : 'were'} just taken by someone else and removed from your selection.`, 'warn');
    announce(`${names} just taken`);
  }

  // Interaction --------------------------------------------------------------------

  tap(i) {
    if (this.mine.has(i)) {
      showMessage(`${this.seatLabel(i)} is already in your reservations.`, 'info', 4000);
      announce(this.describe(i));
      return;
    }
    if (this.store.status[i] !== AVAILABLE) {
      showMessage(`${this.seatLabel(i)} is ${statusNames[this.store.status[i]]} — please pick another seat.`, 'info', 4000);
      announce(this.describe(i));
      return;
    }
    this.toggle(i);
  }

  toggle(i) {
    const at = this.selected.indexOf(i);
    if (at >= 0) {
      this.selected.splice(at, 1);
    } else {
      const held = this.heldCount();
      if (this.selected.length + held >= this.max) {
        showMessage(held
          ? `You can have at most ${this.max} seats for this event, and ${held} are already in your reservations.`
          : `You can select at most ${this.max} seats for this event.`, 'warn');
        return;
      }
      this.selected.push(i);
    }
    this.updateOverlay();
    this.renderSelection();
    const n = this.selected.length;
    announce(`${this.describe(i)}. ${plural(n, 'seat', 'seats')} selected.`);
    // Touch has no hover: show what was tapped next to it.
    const p = this.map.clientPoint(i);
    if (p) this.showTooltip(i, p.x, p.y + p.r);
  }

  hover(i, clientX, clientY) {
    if (i < 0) {
      this.hideTooltip();
      return;
    }
    this.showTooltip(i, clientX, clientY);
  }

  focusSeat(i, say) {
    const p = this.map.clientPoint(i);
    if (p) this.showTooltip(i, p.x, p.y + p.r);
    if (say) announce(this.describe(i));
  }

  showTooltip(i, clientX, clientY) {
    const tip = this.tooltip;
    const c = this.category(i);
    fill(tip,
      h('strong', {}, this.seatLabel(i)),
      h('span', {}, `${this.store.zone[i]} · ${c ? c.name : ''} · ${c ? this.money(c.priceCents) : ''}`),
      h('br'),
      h('span', { class: 'st' }, this.statusText(i)));
    tip.hidden = false;
    this.tooltipSeat = i;
    if (clientX === undefined) return;
    const wrap = this.mapWrap.getBoundingClientRect();
    const tw = tip.offsetWidth;
    const th = tip.offsetHeight;
    let x = clientX - wrap.left + 14;
    let y = clientY - wrap.top + 14;
    if (x + tw > wrap.width - 4) x = clientX - wrap.left - tw - 14;
    if (y + th > wrap.height - 4) y = clientY - wrap.top - th - 14;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  }

  hideTooltip() {
    if (!this.tooltip) return;
    this.tooltip.hidden = true;
    this.tooltipSeat = -1;
  }

  setBusy(busy) {
    this.busy = busy;
    this.renderSelection();
    this.renderReservations();
  }

  async hold() {
    if (this.busy || !this.selected.length) return;
    const indices = [...this.selected];
    const seatIds = indices.map((i) => this.store.ids[i]);
    this.holding = new Set(indices);
    this.setBusy('hold');
    try {
      const headers = { 'Idempotency-Key': idempotencyKey() };
      // While the event's waiting room is on, a hold needs the admission.
      const admission = this.room ? this.room.admission() : null;
      if (admission) headers['Admission-Token'] = admission.token;
      const r = await api.request('POST', '/v1/reservations', {
        auth: true, body: { eventId: this.eventId, seatIds }, headers,
      });
      this.lastHeldAt = Date.now();
      if (admission) this.admissionClaimed();
      this.selected = this.selected.filter((i) => !indices.includes(i));
      this.store.setLocal(indices, RESERVED);
      this.busy = false;
      this.upsertReservation(r);
      const until = timeFormat.format(new Date(Date.parse(r.expiresAt) - api.skewMs));
      showMessage(`${plural(r.seats.length, 'seat is', 'seats are')} held for you until ${until}. Pay before the countdown ends.`, 'success');
      announce(`Held ${plural(r.seats.length, 'seat', 'seats')}. Pay before ${until}.`);
    } catch (err) {
      this.busy = false;
      this.holding = null;
      this.holdFailed(err, indices);
      // Seats the feed showed taken while the failed hold was on its way.
      this.dropTaken([...this.selected]);
    } finally {
      this.holding = null;
      this.busy = false;
      this.renderSelection();
      this.renderReservations();
    }
  }

  holdFailed(err, indices) {
    const ctx = { max: this.max, onSaleAt: this.event.onSaleAt };
    if (err instanceof ApiError && err.code === 'admission_required' && this.room) {
      // No admission in force (it expired, lapsed or ended with a booking):
      // back to the waiting room for a place.
      this.backToQueue(err.problem.reason === 'expired'
        ? 'Your time to choose seats ran out, so you are back in the queue. Nothing was held.'
        : 'You need to be admitted from the waiting room before you can hold seats. Nothing was held; you are back in the queue.');
      return;
    }
    if (err instanceof ApiError && err.code === 'admission_budget_exceeded') {
      const a = this.room ? this.room.admission() : null;
      ctx.budget = a ? a.seatBudget : this.max;
    }
    if (err instanceof ApiError && err.code === 'seat_unavailable') {
      const ids = new Set(err.problem.unavailableSeats || []);
      const taken = indices.filter((i) => ids.has(this.store.ids[i]));
      this.store.setLocal(taken.filter((i) => this.store.status[i] === AVAILABLE), RESERVED);
      this.map.markTaken(taken);
      this.selected = this.selected.filter((i) => !ids.has(this.store.ids[i]));
      this.updateOverlay();
      const names = taken.map((i) => this.seatLabel(i)).join(', ');
      showMessage(`Sorry — ${names || 'those seats'} ${taken.length === 1 ? 'was' : 'were'} just taken by someone else. Nothing was held; ${this.selected.length ? 'the rest of your selection is kept.' : 'please pick other seats.'}`);
      announce(`${names} just taken`);
      return;
    }
    if (err instanceof ApiError && err.code === 'seat_not_found') {
      const ids = new Set(err.problem.unknownSeats || []);
      this.selected = this.selected.filter((i) => !ids.has(this.store.ids[i]));
      this.updateOverlay();
    }
    if (err instanceof ApiError && err.code === 'limit_exceeded') this.loadReservations();
    showMessage(explain(err, ctx));
  }

  async pay(r, paymentToken) {
    if (this.busy) return;
    this.setBusy(`pay:${r.id}`);
    try {
      const res = await api.request('POST', `/v1/reservations/${encodeURIComponent(r.id)}/pay`, {
        auth: true, raw: true, body: { paymentToken }, headers: { 'Idempotency-Key': idempotencyKey() },
      });
      const paid = await res.json();
      this.busy = false;
      this.upsertReservation(paid);
      if (paid.status === 'booked') {
        this.lastBookedAt = Date.now();
        this.admissionDone();
        hideMessage();
        location.hash = `#/events/${encodeURIComponent(this.eventId)}/reservations/${encodeURIComponent(paid.id)}`;
      } else {
        showMessage('Your payment is being confirmed — this takes a moment.', 'info');
        this.awaitPayment(paid.id);
      }
    } catch (err) {
      this.busy = false;
      showMessage(explain(err, { max: this.max }));
      if (err instanceof ApiError && ['reservation_expired', 'reservation_released', 'payment_in_progress', 'already_booked'].includes(err.code)) {
        await this.loadReservations();
      }
    } finally {
      this.busy = false;
      this.renderSelection();
      this.renderReservations();
    }
  }

  // awaitPayment re-reads a paying reservation until it settles.
  async awaitPayment(id) {
    for (let k = 0; k < 120 && !this.destroyed && this.mapShown; k++) {
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
      let r;
      try {
        r = await api.request('GET', `/v1/reservations/${encodeURIComponent(id)}`, { auth: true });
      } catch {
        continue;
      }
      if (this.destroyed || !this.mapShown || r.status === 'paying') continue;
      this.upsertReservation(r);
      if (r.status === 'booked') {
        this.lastBookedAt = Date.now();
        this.admissionDone();
        location.hash = `#/events/${encodeURIComponent(this.eventId)}/reservations/${encodeURIComponent(r.id)}`;
      } else if (r.status === 'held') {
        showMessage('The payment did not go through. Your seats stay held until the countdown ends.');
      } else {
        showMessage('The payment did not go through and the hold has ended.');
      }
      return;
    }
  }

  async release(r) {
    if (this.busy) return;
    this.setBusy(`release:${r.id}`);
    try {
      await api.request('DELETE', `/v1/reservations/${encodeURIComponent(r.id)}`, { auth: true });
      showMessage(`Released ${plural(r.seats.length, 'seat', 'seats')}.`, 'info');
    } catch (err) {
      showMessage(explain(err));
    } finally {
      this.busy = false;
      await this.loadReservations();
    }
  }

  // showConfirmation opens the confirmation of a booked reservation (null
  // closes it).
  async showConfirmation(resId) {
    if (!resId) {
      if (this.dialog.open) this.dialog.close();
      return;
    }
    let r = this.reservations.find((x) => x.id === resId);
    if (!r || r.status !== 'booked') {
      try {
        r = await api.request('GET', `/v1/reservations/${encodeURIComponent(resId)}`, { auth: true });
      } catch (err) {
        showMessage(explain(err));
        return;
      }
    }
    if (this.destroyed) return;
    if (r.status !== 'booked') {
      showMessage('This reservation is not booked (yet).', 'info');
      return;
    }
    const ev = this.event;
    const rows = r.seats.map((id) => {
      const i = this.store.index.get(id);
      if (i === undefined) return h('tr', {}, h('td', { colspan: '4' }, id));
      const c = this.category(i);
      return h('tr', {},
        h('td', {}, this.store.zone[i]),
        h('td', {}, `Row ${this.store.row[i]}, seat ${this.store.number[i]}`),
        h('td', {}, c ? c.name : ''),
        h('td', { class: 'num' }, this.money(this.priceOf(i))));
    });
    const close = h('button', { type: 'button', class: 'btn block', onclick: () => this.dialog.close() }, 'Back to the seat map');
    fill(this.dialog,
      h('div', { class: 'head' }, h('h2', { id: 'conf-h' }, '✓ Booking confirmed')),
      h('div', { class: 'content' },
        h('dl', {},
          h('dt', {}, 'Booking'), h('dd', { class: 'booking-id', id: 'booking-id' }, r.bookingId || ''),
          h('dt', {}, 'Event'), h('dd', {}, ev.name),
          h('dt', {}, 'When'), h('dd', {}, fmtDate(ev.startsAt)),
          h('dt', {}, 'Paid'), h('dd', {}, this.money(r.totalCents))),
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Area'), h('th', {}, 'Seat'), h('th', {}, 'Category'), h('th', { class: 'num' }, 'Price'))),
          h('tbody', {}, rows)),
        close));
    if (!this.dialog.open) this.dialog.showModal();
    close.focus();
    announce(`Booking confirmed. Booking ${r.bookingId}.`);
  }
}

// Waiting room ----------------------------------------------------------------------

// WaitingRoom is the buyer's place in an event's waiting room (API.md,
// Waiting room). It joins (or resumes the ticket kept in sessionStorage),
// shows the waiting page and re-reads the ticket no sooner than the server
// asks (pollAfterSeconds; longer after errors), until the buyer is admitted
// (then its page shows the seat map and holds carry the admission token) or
// the place ends.
class WaitingRoom {
  constructor(page) {
    this.page = page;
    this.eventId = page.eventId;
    this.path = `/v1/events/${encodeURIComponent(page.eventId)}/queue`;
    const kept = loadRoom('queue', this.eventId);
    this.ticket = kept && typeof kept.ticket === 'string' ? kept.ticket : null;
    this.first = (kept && kept.firstPosition) || 0; // the position when the buyer first got one
    this.customerId = kept ? kept.customerId : null;
    this.adm = loadRoom('admission', this.eventId);
    this.tv = null;
    this.timer = 0;
    this.failures = 0;
    this.gen = 0; // bumped by stop: answers to an older generation are dropped
    this.abort = null;
    this.nextCheckAt = 0;
    this.card = null;
  }

  sameCustomer(customerId) {
    return !!api.session && customerId === api.session.customerId;
  }

  // admission is the buyer's admission for this event while it is in force
  // (as far as this page knows), else null.
  admission() {
    const a = this.adm;
    if (!a || typeof a.token !== 'string' || !this.sameCustomer(a.customerId)) return null;
    if (!(Date.parse(a.expiresAt) > api.now())) return null;
    return a;
  }

  saveAdmission(tv) {
    const old = this.adm && this.adm.token === tv.admissionToken ? this.adm : null;
    this.adm = {
      token: tv.admissionToken, ticket: tv.ticket, customerId: api.session ? api.session.customerId : null,
      expiresAt: tv.admissionExpiresAt, claimBy: tv.claimBy, seatBudget: tv.seatBudget || 0,
      // Still admitted after the claim deadline: a hold claimed it.
      claimed: !!(old && old.claimed) || Date.parse(tv.claimBy) + 1500 <= api.now(),
    };
    saveRoom('admission', this.eventId, this.adm);
  }

  markClaimed() {
    if (!this.adm) return;
    this.adm.claimed = true;
    saveRoom('admission', this.eventId, this.adm);
  }

  dropAdmission() {
    this.adm = null;
    saveRoom('admission', this.eventId, null);
  }

  // start shows the waiting page and resumes the kept ticket, or joins
  // (always when rejoin: the server returns the same ticket while it is
  // live, else a new place at the back).
  start(rejoin = false) {
    this.renderPage();
    this.begin(rejoin);
  }

  begin(rejoin) {
    this.stop();
    const gen = this.gen;
    if (!rejoin && this.ticket && this.sameCustomer(this.customerId)) {
      this.render(this.tv && this.tv.ticket === this.ticket ? this.tv.status : 'joining');
      this.poll(gen);
    } else {
      this.render('joining');
      this.join(gen);
    }
  }

  // stop ends polling: the page was left, or the buyer was admitted.
  stop() {
    this.gen++;
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  async call(method, path) {
    const ctl = new AbortController();
    this.abort = ctl;
    try {
      return await api.request(method, path, { auth: true, signal: ctl.signal });
    } finally {
      if (this.abort === ctl) this.abort = null;
    }
  }

  async join(gen) {
    let tv;
    try {
      tv = await this.call('POST', this.path);
    } catch (err) {
      if (gen === this.gen) this.failed(gen, err, () => this.join(gen));
      return;
    }
    if (gen === this.gen) this.apply(gen, tv);
  }

  async poll(gen) {
    let tv;
    try {
      tv = await this.call('GET', `${this.path}/${encodeURIComponent(this.ticket)}`);
    } catch (err) {
      if (gen !== this.gen) return;
      if (err instanceof ApiError && err.code === 'ticket_not_found') {
        // The server does not know the ticket (any more): take a place.
        this.ticket = null;
        saveRoom('queue', this.eventId, null);
        this.join(gen);
        return;
      }
      this.failed(gen, err, () => this.poll(gen));
      return;
    }
    if (gen === this.gen) this.apply(gen, tv);
  }

  schedule(gen, seconds, fn) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = 0;
      if (gen === this.gen) fn();
    }, seconds * 1000);
  }

  // failed handles a failed join or poll: errors that a retry cannot fix
  // are shown; others are retried with a growing delay.
  failed(gen, err, retry) {
    if (err.name === 'AbortError') return;
    if (err instanceof ApiError && err.code === 'ticket_not_found') {
      // Joining says the event has no waiting room (any more): no queue.
      this.stop();
      this.page.room = null;
      this.page.showMap().catch((e) => this.render('error', { message: explain(e), retry: () => location.reload() }));
      return;
    }
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
      this.stop();
      this.render('error', { message: explain(err), retry: () => this.begin(false) });
      return;
    }
    this.failures++;
    const base = Math.max(2, (this.tv && this.tv.pollAfterSeconds) || 2);
    let delay = Math.min(30, base * 2 ** (this.failures - 1));
    if (err instanceof ApiError && err.retryAfterSeconds) delay = Math.max(delay, Math.min(60, err.retryAfterSeconds));
    delay = Math.round(delay * (0.8 + Math.random() * 0.4)); // spread a crowd's retries
    this.trouble(`${explain(err)} Trying again in ${delay} s.${this.ticket ? ' Your place in line is kept.' : ''}`);
    this.schedule(gen, delay, retry);
  }

  apply(gen, tv) {
    this.failures = 0;
    this.trouble('');
    if (tv.ticket !== this.ticket) {
      this.ticket = tv.ticket;
      this.first = 0;
    }
    if (tv.status === 'waiting' && tv.position > this.first) this.first = tv.position;
    this.tv = tv;
    this.customerId = api.session ? api.session.customerId : null;
    saveRoom('queue', this.eventId, { ticket: tv.ticket, customerId: this.customerId, firstPosition: this.first });
    if (tv.status === 'admitted' && tv.admissionToken) {
      this.saveAdmission(tv);
      this.stop();
      this.render('admitted');
      this.page.admitted();
      return;
    }
    this.dropAdmission();
    this.render(tv.status);
    if (['pre_queue', 'waiting', 'sold_out', 'admitted'].includes(tv.status)) {
      // Sold out keeps the place should seats come back: keep checking in.
      this.schedule(gen, Math.max(1, tv.pollAfterSeconds || 2), () => this.poll(gen));
    } else {
      this.stop(); // expired or left: nothing to wait for
    }
  }

  // check re-reads the ticket once the admission's claim deadline passed
  // on the map page: still admitted means a hold claimed it; else the
  // waiting page says how the place ended.
  async check() {
    const a = this.adm;
    if (this.checking || !a || Date.now() < this.nextCheckAt) return;
    this.checking = true;
    try {
      const tv = await api.request('GET', `${this.path}/${encodeURIComponent(a.ticket)}`, { auth: true });
      if (this.page.destroyed || !this.page.mapShown) return;
      if (tv.status === 'admitted' && tv.admissionToken) {
        this.saveAdmission(tv);
        if (!this.adm.claimed) this.nextCheckAt = Date.now() + 2000;
        this.page.renderAdmission();
        return;
      }
      this.dropAdmission();
      this.page.teardownMap();
      this.renderPage();
      this.stop();
      this.apply(this.gen, tv);
    } catch (err) {
      this.nextCheckAt = Date.now() + 5000;
      if (err instanceof ApiError && err.code === 'ticket_not_found') {
        this.dropAdmission();
        this.page.renderAdmission();
      }
    } finally {
      this.checking = false;
    }
  }

  async leave() {
    const ticket = this.ticket;
    if (!ticket || this.leaving) return;
    this.leaving = true;
    // aria-disabled rather than disabled: a disabled button would drop the
    // keyboard focus.
    this.leaveBtn.setAttribute('aria-disabled', 'true');
    this.leaveBtn.textContent = 'Leaving…';
    try {
      await api.request('DELETE', `${this.path}/${encodeURIComponent(ticket)}`, { auth: true });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'ticket_not_found')) {
        showMessage(explain(err));
        return;
      }
    } finally {
      this.leaving = false;
      this.leaveBtn.removeAttribute('aria-disabled');
      this.leaveBtn.textContent = 'Leave the queue';
    }
    if (this.page.destroyed) return;
    this.stop();
    this.dropAdmission();
    this.tv = { ...(this.tv || {}), ticket, status: 'left', position: null };
    this.render('left');
    announce('You left the queue.');
  }

  trouble(text) {
    if (!this.troubleEl) return;
    this.troubleEl.textContent = text;
    this.troubleEl.hidden = !text;
  }

  // renderPage draws the waiting page; render fills it for a state.
  renderPage() {
    const ev = this.page.event;
    document.body.classList.remove('map-mode');
    setConn(null);
    this.headEl = h('h2', { id: 'wait-h', tabindex: '-1' });
    this.statusEl = h('p', { class: 'wait-status', id: 'queue-status', role: 'status' });
    this.barEl = h('span');
    this.progressEl = h('div', {
      class: 'progress', id: 'queue-progress', role: 'progressbar', 'aria-label': 'Your progress in the line',
      'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0',
    }, this.barEl);
    this.etaEl = h('p', { class: 'wait-eta', id: 'queue-eta' });
    this.noteEl = h('p', { class: 'wait-note' },
      'Keep this page open to keep your place: it checks in with the box office by itself, and takes you to the seat map when it is your turn. ',
      'Closing it for more than a few minutes gives your place up.');
    this.troubleEl = h('p', { class: 'notice', id: 'queue-trouble', role: 'alert', hidden: true });
    this.leaveBtn = h('button', { type: 'button', class: 'btn danger', id: 'leave-queue', onclick: () => this.leave() }, 'Leave the queue');
    this.joinBtn = h('button', { type: 'button', class: 'btn', id: 'join-queue', hidden: true, onclick: () => this.joinAgain() }, 'Join again');
    this.card = h('section', { class: 'waiting', id: 'waiting', 'aria-labelledby': 'wait-h' },
      this.headEl, this.statusEl, this.progressEl, this.etaEl, this.troubleEl, this.noteEl,
      h('div', { class: 'actions' }, this.joinBtn, this.leaveBtn));
    main.replaceChildren(h('section', { class: 'event-page waiting-page' },
      h('div', { class: 'event-head' },
        h('a', { class: 'back', href: '#/' }, '← All events'),
        h('h1', {}, ev.name),
        h('p', { class: 'meta' }, `${ev.venue} · ${fmtDate(ev.startsAt)}`)),
      h('div', { class: 'waiting-wrap' }, this.card)));
    installWaitingHooks(this);
  }

  joinAgain() {
    if (this.retry) {
      const retry = this.retry;
      this.retry = null;
      retry();
      return;
    }
    this.begin(true);
  }

  render(state, opts = {}) {
    if (!this.card || !this.card.isConnected) return;
    const tv = this.tv || {};
    const ev = this.page.event;
    const hadFocus = this.card.contains(document.activeElement) && document.activeElement.tagName === 'BUTTON';
    this.card.dataset.status = state;
    this.retry = opts.retry || null;
    let head = '';
    let status = '';
    let pct = null; // progress, null: no bar
    let valueText = '';
    let eta = false;
    let waiting = false; // the place is live: the note and Leave
    let again = '';
    switch (state) {
      case 'joining':
        head = 'Joining the queue…';
        status = 'Getting your place in line…';
        break;
      case 'pre_queue':
        head = 'The sale opens soon';
        status = Date.parse(ev.onSaleAt) > api.now()
          ? `You are in the pre-queue; places are drawn at ${fmtWhen(ev.onSaleAt)} local time.`
          : 'You are in the pre-queue; places in line are being drawn now.';
        pct = 0;
        valueText = 'Waiting for the draw';
        eta = waiting = true;
        break;
      case 'waiting': {
        const n = tv.position || 1;
        const first = Math.max(this.first, n);
        head = 'You are in the queue';
        status = `You are number ${countFormat.format(n)} in line${n === 1 ? ' — you are next.' : '.'}`;
        // Filled by the share of the way from where the buyer started
        // (their first position) to their turn.
        pct = Math.round((100 * (first - n + 1)) / (first + 1));
        valueText = n === 1 ? 'You are next' : `${plural(n - 1, 'person', 'people')} ahead of you`;
        eta = waiting = true;
        break;
      }
      case 'sold_out':
        head = 'Sold out';
        status = 'Every seat for this event is taken right now. We keep your place in line in case seats come back.';
        waiting = true;
        break;
      case 'admitted':
        head = "It's your turn!";
        status = 'Loading the seat map…';
        pct = 100;
        valueText = 'Your turn';
        break;
      case 'expired':
        if (tv.reason === 'done') {
          head = 'Your purchase is complete';
          status = 'Your turn in the waiting room ended with your booking. To buy more seats, join the queue again.';
          again = 'Join the queue again';
          break;
        }
        head = 'Your place expired';
        status = {
          abandoned: 'This page stopped checking in for a while, so your place in line was given up.',
          lapsed: 'It was your turn, but no seats were held in time, so your turn passed to the next person in line.',
          expired: 'Your time to choose seats ran out.',
        }[tv.reason] || 'Your place in line has ended.';
        status += ' You can join again at the back of the line.';
        again = 'Join again';
        break;
      case 'left':
        head = 'You left the queue';
        status = 'Your place in line has been given up. You can join again at the back of the line.';
        again = 'Join again';
        break;
      default: // error
        head = 'Cannot join the queue';
        status = opts.message || 'Something went wrong.';
        again = 'Try again';
    }
    this.headEl.textContent = head;
    if (this.statusEl.textContent !== status) this.statusEl.textContent = status;
    this.progressEl.hidden = pct === null;
    if (pct !== null) {
      this.progressEl.setAttribute('aria-valuenow', String(pct));
      this.progressEl.setAttribute('aria-valuetext', `${pct}% — ${valueText}`);
      this.barEl.style.width = `${pct}%`;
    }
    this.etaEl.hidden = !eta;
    if (eta) this.etaEl.textContent = `Estimated wait: ${fmtWait(tv.etaSeconds)}.`;
    this.noteEl.hidden = !waiting;
    this.leaveBtn.hidden = !waiting;
    this.joinBtn.hidden = !again;
    this.joinBtn.textContent = again || 'Join again';
    if (hadFocus && !this.card.contains(document.activeElement)) {
      (again ? this.joinBtn : waiting ? this.leaveBtn : this.headEl).focus();
    }
  }
}

// Test hooks ---------------------------------------------------------------------

// installWaitingHooks exposes the waiting page's state to tests.
function installWaitingHooks(room) {
  window.boxoffice = {
    ready: () => false,
    eventId: () => room.eventId,
    queue: () => ({ ...(room.tv || {}), first: room.first, state: room.card ? room.card.dataset.status : null }),
    admission: () => room.admission(),
  };
}

// installTestHooks exposes the event page's state to tests (window.boxoffice).
function installTestHooks(p) {
  window.boxoffice = {
    ready: () => page === p && !!p.ready && p.map.stats.frames > 0,
    eventId: () => p.eventId,
    version: () => p.store.version,
    liveMode: () => p.feed.mode,
    liveFrames: () => p.feed.frames,
    pollsInWorker: () => !!p.feed.worker,
    seatStatus: (id) => {
      const i = p.store.index.get(id);
      return i === undefined ? null : statusNames[p.store.status[i]];
    },
    seatChangedAt: (id) => {
      const i = p.store.index.get(id);
      return i === undefined ? 0 : p.store.changedAt[i];
    },
    isSelected: (id) => p.selected.includes(p.store.index.get(id)),
    isMine: (id) => p.mine.has(p.store.index.get(id)),
    focusedSeat: () => (p.map.focus >= 0 ? p.store.ids[p.map.focus] : null),
    seatClientPoint: (id) => {
      const i = p.store.index.get(id);
      return i === undefined ? null : p.map.clientPoint(i);
    },
    reveal: (id, pitchPx) => {
      const i = p.store.index.get(id);
      if (i !== undefined) p.map.reveal(i, pitchPx);
    },
    categoryColor: (id) => {
      const i = p.store.index.get(id);
      const c = i === undefined ? null : p.category(i);
      return c ? c.color : null;
    },
    colors: { ...colors },
    lastHeldAt: () => p.lastHeldAt,
    admission: () => (p.room ? p.room.admission() : null),
    admissionState: () => p.admissionState || null,
    lastBookedAt: () => p.lastBookedAt,
    stats: () => ({ ...p.map.stats, seats: p.store.n, pitchPx: p.map.pitch * p.map.view.scale }),
    view: () => ({ ...p.map.view }),
    zoomAt: (factor, x, y) => p.map.zoomAt(factor, x, y),
    // animate pans by (dx, dy) CSS px and zooms by factor about the centre
    // on each of n animation frames, and resolves with the intervals
    // between frames in milliseconds: a smoothness measure that includes
    // the browser's rasterisation, not only our drawing calls.
    animate: (n, dx, dy, factor) => new Promise((resolve) => {
      const m = p.map;
      const times = [];
      let last = 0;
      const step = (now) => {
        if (last) times.push(now - last);
        last = now;
        if (times.length >= n) {
          resolve(times);
          return;
        }
        if (dx || dy) m.panBy(dx, dy);
        if (factor && factor !== 1) m.zoomAt(factor, m.cssW / 2, m.cssH / 2);
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    }),
  };
}

route();

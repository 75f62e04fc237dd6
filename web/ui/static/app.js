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
    const [event, plan, seatMap] = await Promise.all([
      api.request('GET', `/v1/events/${id}`),
      // The plan only adds the stage; a map without it is still usable.
      api.request('GET', `/v1/events/${id}/plan`).catch(() => ({ areas: [] })),
      api.request('GET', `/v1/events/${id}/seats`),
    ]);
    if (this.destroyed) return;
    this.event = event;
    this.money = moneyFormatter(event.currency);
    this.max = event.maxSeatsPerCustomer;
    document.title = `${event.name} — boxoffice`;
    const categoryIndex = new Map(event.categories.map((c, i) => [c.name, i]));
    this.store = new SeatStore(seatMap, categoryIndex);
    this.render();
    this.map = new SeatMap(this.canvas, this.store, {
      categories: event.categories,
      areas: plan.areas || [],
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
    this.every(500, () => this.tick());
    // Reservations change on their own (expiry, a delayed payment): re-read
    // them now and then, and whenever the page comes back into view.
    this.every(20000, () => this.loadReservations());
    this.onVisible = () => { if (!document.hidden) this.loadReservations(); };
    document.addEventListener('visibilitychange', this.onVisible);
    installTestHooks(this);
    this.ready = true;
    await this.loadReservations();
    if (this.initialResId) this.showConfirmation(this.initialResId);
  }

  destroy() {
    this.destroyed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.feed) this.feed.stop();
    if (this.map) this.map.destroy();
    if (this.onVisible) document.removeEventListener('visibilitychange', this.onVisible);
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

    main.replaceChildren(h('section', { class: 'event-page' },
      h('div', { class: 'event-head' },
        h('a', { class: 'back', href: '#/' }, '← All events'),
        h('h1', {}, ev.name),
        this.summary),
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

  // State ------------------------------------------------------------------------

  async loadReservations() {
    if (!api.hasSession() || this.destroyed) return;
    try {
      const { reservations } = await api.request('GET', `/v1/reservations?eventId=${encodeURIComponent(this.eventId)}`, { auth: true });
      if (this.destroyed) return;
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
      const r = await api.request('POST', '/v1/reservations', {
        auth: true, body: { eventId: this.eventId, seatIds }, headers: { 'Idempotency-Key': idempotencyKey() },
      });
      this.lastHeldAt = Date.now();
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
    for (let k = 0; k < 120 && !this.destroyed; k++) {
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
      let r;
      try {
        r = await api.request('GET', `/v1/reservations/${encodeURIComponent(id)}`, { auth: true });
      } catch {
        continue;
      }
      if (this.destroyed || r.status === 'paying') continue;
      this.upsertReservation(r);
      if (r.status === 'booked') {
        this.lastBookedAt = Date.now();
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

// Test hooks ---------------------------------------------------------------------

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

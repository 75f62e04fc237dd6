// The seat map: a canvas that draws every seat of a SeatStore, the plan's
// areas (the stage), the buyer's selection and holds, with pan (drag), zoom
// (wheel, pinch, buttons, keys), hover and keyboard focus.
//
// Smooth on a 48,568-seat stadium: seats are drawn into an offscreen layer
// (the visible region plus a margin, at the current zoom) only when the
// view leaves that region, the zoom settles at a new level, or many seats
// change; a handful of changed seats are patched into it in place. Each
// animation frame is then one drawImage of that layer plus the few seats
// with overlays, in one requestAnimationFrame pass. A uniform grid finds
// the seat under a pointer and the neighbour of a focused seat.

import { AVAILABLE, RESERVED, BOOKED, BLOCKED } from './live.js';

export const colors = {
  background: '#eceef2',
  reserved: '#c3c8cf',
  booked: '#868d97',
  blocked: '#dfe2e6',
  blockedCross: '#6b727c',
  unknownCategory: '#9aa1ab',
  selectedFill: '#ffd400',
  selectedRing: '#111827',
  mineFill: '#111827',
  mineRing: '#ffd400',
  focus: '#2563eb',
  taken: '#e11d48',
};

// Layer bounds: at most this many device pixels a side, and so many in all.
const layerSideMax = 4096;
const layerPixelsMax = 12_000_000;
// The zoom may drift this far from the layer's before it is redrawn, and
// the layer is redrawn this long after the last zoom step.
const layerScaleDrift = 1.3;
// The layer's canvas grows in steps of this many pixels.
const layerGrowPx = 512;
const layerSettleMs = 140;
// More changed seats than this in one batch redraw the whole layer.
const patchSeatsMax = 1500;
// A tap selects a seat only when seats are at least this far apart on
// screen (CSS px); on a denser map it zooms in instead.
const tapSelectPitchPx = 7;
// Pointer travel that turns a press into a drag (CSS px).
const dragThresholdPx = { mouse: 4, pen: 6, touch: 9 };
// Seats as large as this on screen (CSS px radius) show their numbers.
const labelRadiusPx = 8;
// Seats up to this radius (device px) are stamped as pixels, larger
// ones drawn as canvas arcs.
const stampRadiusMaxPx = 10;
// Screen margin around the whole venue when it is fitted (CSS px).
const fitMarginPx = 18;
// How long a seat someone else just took keeps its red ring.
const takenFlashMs = 4000;

export class SeatMap {
  // opts: categories [{color}], areas [{text, color, x, y, width, height,
  // rotation}], onTap(i), onHover(i | -1, clientX, clientY), onFocusSeat(i),
  // isSelected(i), isMine(i).
  constructor(canvas, store, opts) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.store = store;
    this.opts = opts;
    this.areas = opts.areas || [];
    this.catColors = (opts.categories || []).map((c) => c.color || colors.unknownCategory);

    this.cssW = 1;
    this.cssH = 1;
    this.dpr = 1;
    this.view = { scale: 1, tx: 0, ty: 0 };
    this.layer = null; // {canvas, ctx, x, y, w, h, s}
    this.layerDirty = true;
    this.settleTimer = 0;
    this.frame = 0;
    this.hover = -1;
    this.focus = -1;
    this.showFocus = false;
    this.taken = new Map(); // seat index → time its flash ends
    this.overlay = new Set(); // seats drawn above the layer (selected, mine)
    this.pointers = new Map();
    this.gesture = null;
    this.stats = { frames: 0, drawMsTotal: 0, drawMsMax: 0, lastDrawMs: 0, layerRenders: 0, lastLayerMs: 0, patches: 0 };

    this.measure();
    this.buildGrid();
    this.resize();
    this.bind();
    store.onChange((changed) => this.seatsChanged(changed));
  }

  // Geometry ---------------------------------------------------------------

  measure() {
    const s = this.store;
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < s.n; i++) {
      if (s.x[i] < minX) minX = s.x[i];
      if (s.x[i] > maxX) maxX = s.x[i];
      if (s.y[i] < minY) minY = s.y[i];
      if (s.y[i] > maxY) maxY = s.y[i];
    }
    for (const a of this.areas) {
      minX = Math.min(minX, a.x);
      minY = Math.min(minY, a.y);
      maxX = Math.max(maxX, a.x + a.width);
      maxY = Math.max(maxY, a.y + a.height);
    }
    if (!Number.isFinite(minX)) {
      minX = 0; minY = 0; maxX = 100; maxY = 100;
    }
    // Seat pitch: the median distance between neighbours in a row.
    const gaps = [];
    const step = Math.max(1, Math.floor(s.n / 4000));
    for (let i = 1; i < s.n; i += step) {
      if (s.row[i] !== s.row[i - 1] || s.zone[i] !== s.zone[i - 1]) continue;
      const d = Math.hypot(s.x[i] - s.x[i - 1], s.y[i] - s.y[i - 1]);
      if (d > 0) gaps.push(d);
    }
    gaps.sort((a, b) => a - b);
    this.pitch = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 20;
    this.r = this.pitch * 0.4;
    const pad = this.pitch * 1.5;
    this.bounds = { x: minX - pad, y: minY - pad, w: maxX - minX + 2 * pad, h: maxY - minY + 2 * pad };
  }

  buildGrid() {
    const s = this.store;
    const cell = this.pitch * 2;
    const b = this.bounds;
    const cols = Math.max(1, Math.ceil(b.w / cell));
    const rows = Math.max(1, Math.ceil(b.h / cell));
    const start = new Uint32Array(cols * rows + 1);
    const cellOf = new Uint32Array(s.n);
    for (let i = 0; i < s.n; i++) {
      const cx = Math.min(cols - 1, Math.max(0, Math.floor((s.x[i] - b.x) / cell)));
      const cy = Math.min(rows - 1, Math.max(0, Math.floor((s.y[i] - b.y) / cell)));
      const c = cy * cols + cx;
      cellOf[i] = c;
      start[c + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) start[c + 1] += start[c];
    const fill = start.slice(0, cols * rows);
    const items = new Uint32Array(s.n);
    for (let i = 0; i < s.n; i++) items[fill[cellOf[i]]++] = i;
    this.grid = { cell, cols, rows, start, items };
  }

  // eachSeatIn calls fn(i) for the seats in the world rectangle.
  eachSeatIn(x0, y0, x1, y1, fn) {
    const g = this.grid;
    const b = this.bounds;
    const cx0 = Math.max(0, Math.floor((x0 - b.x) / g.cell));
    const cy0 = Math.max(0, Math.floor((y0 - b.y) / g.cell));
    const cx1 = Math.min(g.cols - 1, Math.floor((x1 - b.x) / g.cell));
    const cy1 = Math.min(g.rows - 1, Math.floor((y1 - b.y) / g.cell));
    const s = this.store;
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const c = cy * g.cols + cx;
        for (let k = g.start[c]; k < g.start[c + 1]; k++) {
          const i = g.items[k];
          if (s.x[i] >= x0 && s.x[i] <= x1 && s.y[i] >= y0 && s.y[i] <= y1) fn(i);
        }
      }
    }
  }

  // seatAt returns the seat within reach of the world point, or -1.
  seatAt(wx, wy, reach) {
    let best = -1;
    let bestD = reach * reach;
    const s = this.store;
    this.eachSeatIn(wx - reach, wy - reach, wx + reach, wy + reach, (i) => {
      const d = (s.x[i] - wx) ** 2 + (s.y[i] - wy) ** 2;
      if (d <= bestD) {
        bestD = d;
        best = i;
      }
    });
    return best;
  }

  // neighbour returns the seat nearest to `from` in the direction (dx, dy)
  // (a unit axis), preferring seats straight ahead; -1 when there is none.
  neighbour(from, dx, dy) {
    const s = this.store;
    const fx = s.x[from];
    const fy = s.y[from];
    let best = -1;
    let bestCost = Infinity;
    // Widen the search until something is found (the plan's gaps, aisles).
    for (let reach = this.pitch * 3; reach <= Math.max(this.bounds.w, this.bounds.h) * 2; reach *= 2) {
      this.eachSeatIn(fx - reach, fy - reach, fx + reach, fy + reach, (i) => {
        if (i === from) return;
        const ax = (s.x[i] - fx) * dx + (s.y[i] - fy) * dy; // along
        if (ax <= this.pitch * 0.25) return;
        const px = Math.abs((s.x[i] - fx) * dy - (s.y[i] - fy) * dx); // across
        const cost = ax + px * 2.5;
        if (cost < bestCost) {
          bestCost = cost;
          best = i;
        }
      });
      if (best >= 0) return best;
    }
    return -1;
  }

  toWorld(sx, sy) {
    const v = this.view;
    return [(sx - v.tx) / v.scale, (sy - v.ty) / v.scale];
  }

  toScreen(wx, wy) {
    const v = this.view;
    return [wx * v.scale + v.tx, wy * v.scale + v.ty];
  }

  // View -------------------------------------------------------------------

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const w = Math.max(1, rect.width);
    const h = Math.max(1, rect.height);
    const dpr = Math.min(3, window.devicePixelRatio || 1);
    if (w === this.cssW && h === this.cssH && dpr === this.dpr) return;
    // Keep the world point at the centre where it was.
    const [cx, cy] = this.toWorld(this.cssW / 2, this.cssH / 2);
    const hadSize = this.cssW > 1;
    this.cssW = w;
    this.cssH = h;
    this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    if (hadSize && !this.fitted) {
      this.view.tx = w / 2 - cx * this.view.scale;
      this.view.ty = h / 2 - cy * this.view.scale;
    } else {
      this.fit();
    }
    this.layerDirty = true;
    this.invalidate();
  }

  fitScale() {
    const b = this.bounds;
    // Leave room for the zoom buttons and the hint.
    return Math.max(1e-6, Math.min((this.cssW - 2 * fitMarginPx) / b.w, (this.cssH - 2 * fitMarginPx) / b.h));
  }

  scaleLimits() {
    const fit = this.fitScale();
    return [fit * 0.6, Math.max(fit * 2, 64 / this.pitch)];
  }

  fit() {
    const b = this.bounds;
    const s = this.fitScale();
    this.view.scale = s;
    this.view.tx = (this.cssW - b.w * s) / 2 - b.x * s;
    this.view.ty = (this.cssH - b.h * s) / 2 - b.y * s;
    this.fitted = true;
    this.viewChanged(true);
  }

  // zoomAt multiplies the zoom by factor, keeping the screen point fixed.
  zoomAt(factor, sx, sy) {
    const v = this.view;
    const [lo, hi] = this.scaleLimits();
    const next = Math.min(hi, Math.max(lo, v.scale * factor));
    if (next === v.scale) return;
    v.tx = sx - (sx - v.tx) * (next / v.scale);
    v.ty = sy - (sy - v.ty) * (next / v.scale);
    v.scale = next;
    this.fitted = false;
    this.viewChanged(true);
  }

  panBy(dx, dy) {
    this.view.tx += dx;
    this.view.ty += dy;
    this.fitted = false;
    this.viewChanged(false);
  }

  // clampView keeps the centre of the screen over the venue.
  clampView() {
    const v = this.view;
    const b = this.bounds;
    const [cx, cy] = this.toWorld(this.cssW / 2, this.cssH / 2);
    const nx = Math.min(b.x + b.w, Math.max(b.x, cx));
    const ny = Math.min(b.y + b.h, Math.max(b.y, cy));
    v.tx += (cx - nx) * v.scale;
    v.ty += (cy - ny) * v.scale;
  }

  viewChanged(zoomed) {
    this.clampView();
    // A tooltip stays with its seat only while the map stands still.
    if (this.opts.onViewChange) this.opts.onViewChange();
    if (zoomed) {
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => {
        const l = this.layer;
        if (l && Math.abs(l.s - this.view.scale * this.dpr) > 1e-6) {
          this.layerDirty = true;
          this.invalidate();
        }
      }, layerSettleMs);
    }
    this.invalidate();
  }

  // reveal pans (and zooms in, if seats are small) so seat i is in view.
  reveal(i, minPitchPx = 14) {
    const s = this.store;
    const v = this.view;
    if (this.pitch * v.scale < minPitchPx) {
      const [, hi] = this.scaleLimits();
      v.scale = Math.min(hi, minPitchPx / this.pitch);
      v.tx = this.cssW / 2 - s.x[i] * v.scale;
      v.ty = this.cssH / 2 - s.y[i] * v.scale;
      this.fitted = false;
      this.viewChanged(true);
      return;
    }
    const [sx, sy] = this.toScreen(s.x[i], s.y[i]);
    const m = Math.min(60, this.cssW / 4, this.cssH / 4);
    let dx = 0;
    let dy = 0;
    if (sx < m) dx = m - sx; else if (sx > this.cssW - m) dx = this.cssW - m - sx;
    if (sy < m) dy = m - sy; else if (sy > this.cssH - m) dy = this.cssH - m - sy;
    if (dx || dy) this.panBy(dx, dy);
  }

  // Drawing ------------------------------------------------------------------

  invalidate() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  seatsChanged(changed) {
    if (!this.layer || this.layerDirty) {
      this.invalidate();
      return;
    }
    if (changed.length > patchSeatsMax) {
      this.layerDirty = true;
    } else {
      this.patchLayer(changed);
    }
    this.invalidate();
  }

  markTaken(indices) {
    const until = performance.now() + takenFlashMs;
    for (const i of indices) this.taken.set(i, until);
    this.invalidate();
  }

  setOverlay(indices) {
    this.overlay = new Set(indices);
    this.invalidate();
  }

  fillFor(i) {
    switch (this.store.status[i]) {
      case AVAILABLE: return this.catColors[this.store.cat[i]] || colors.unknownCategory;
      case RESERVED: return colors.reserved;
      case BOOKED: return colors.booked;
      default: return colors.blocked;
    }
  }

  // needsLayer reports whether the layer must be redrawn before this frame.
  needsLayer() {
    const l = this.layer;
    if (!l || this.layerDirty) return true;
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.cssW, this.cssH);
    const b = this.bounds;
    // Only the part of the view that has seats needs to be in the layer.
    const vx0 = Math.max(x0, b.x);
    const vy0 = Math.max(y0, b.y);
    const vx1 = Math.min(x1, b.x + b.w);
    const vy1 = Math.min(y1, b.y + b.h);
    if (vx0 < l.x || vy0 < l.y || vx1 > l.x + l.w || vy1 > l.y + l.h) return true;
    const drift = (this.view.scale * this.dpr) / l.s;
    return drift > layerScaleDrift || drift < 1 / layerScaleDrift;
  }

  renderLayer() {
    const t0 = performance.now();
    const v = this.view;
    const s = v.scale * this.dpr; // device pixels per plan unit
    const b = this.bounds;
    const [vx0, vy0] = this.toWorld(0, 0);
    const vw = this.cssW / v.scale;
    const vh = this.cssH / v.scale;
    // The view plus a margin of half a view each way, clipped to the venue,
    // and shrunk to the pixel budget.
    let margin = 0.5;
    let x0;
    let y0;
    let x1;
    let y1;
    for (;;) {
      x0 = Math.max(b.x, vx0 - vw * margin);
      y0 = Math.max(b.y, vy0 - vh * margin);
      x1 = Math.min(b.x + b.w, vx0 + vw * (1 + margin));
      y1 = Math.min(b.y + b.h, vy0 + vh * (1 + margin));
      const pw = (x1 - x0) * s;
      const ph = (y1 - y0) * s;
      if ((pw <= layerSideMax && ph <= layerSideMax && pw * ph <= layerPixelsMax) || margin === 0) break;
      margin = margin > 0.05 ? margin / 2 : 0;
    }
    const pw = Math.max(1, Math.ceil((x1 - x0) * s));
    const ph = Math.max(1, Math.ceil((y1 - y0) * s));
    let l = this.layer;
    if (!l) {
      const c = document.createElement('canvas');
      l = { canvas: c, ctx: c.getContext('2d') };
      this.layer = l;
    }
    // The layer's canvas only grows (in steps), so that zooming does not
    // allocate a new bitmap for every level; the region uses its top-left.
    if (l.canvas.width < pw || l.canvas.height < ph) {
      l.canvas.width = Math.max(l.canvas.width, Math.ceil(pw / layerGrowPx) * layerGrowPx);
      l.canvas.height = Math.max(l.canvas.height, Math.ceil(ph / layerGrowPx) * layerGrowPx);
    } else {
      l.ctx.setTransform(1, 0, 0, 1, 0, 0);
      l.ctx.clearRect(0, 0, l.canvas.width, l.canvas.height);
    }
    l.pw = pw;
    l.ph = ph;
    l.x = x0;
    l.y = y0;
    l.w = pw / s;
    l.h = ph / s;
    l.s = s;
    const ctx = l.ctx;
    ctx.setTransform(s, 0, 0, s, -x0 * s, -y0 * s);

    const st = this.store;
    const r = this.r;
    const rPx = r * s;
    const pad = r;
    const blocked = [];
    if (rPx <= stampRadiusMaxPx) {
      // Small seats: stamp anti-aliased discs straight into pixels. A
      // canvas path of tens of thousands of arcs takes a software
      // rasteriser a few hundred milliseconds; this takes a few.
      this.stampSeats(l, x0, y0, s, pw, ph, blocked);
    } else {
      // Large seats are few on screen: one path per fill colour.
      const buckets = new Map();
      this.eachSeatIn(x0 - pad, y0 - pad, x0 + l.w + pad, y0 + l.h + pad, (i) => {
        const fill = this.fillFor(i);
        let list = buckets.get(fill);
        if (!list) {
          list = [];
          buckets.set(fill, list);
        }
        list.push(i);
        if (st.status[i] === BLOCKED) blocked.push(i);
      });
      for (const [fill, list] of buckets) {
        ctx.fillStyle = fill;
        ctx.beginPath();
        for (const i of list) {
          ctx.moveTo(st.x[i] + r, st.y[i]);
          ctx.arc(st.x[i], st.y[i], r, 0, Math.PI * 2);
        }
        ctx.fill();
      }
    }
    if (blocked.length && rPx >= 3) {
      ctx.strokeStyle = colors.blockedCross;
      ctx.lineWidth = Math.max(1 / s, r * 0.18);
      ctx.beginPath();
      for (const i of blocked) this.crossPath(ctx, i);
      ctx.stroke();
    }
    this.layerDirty = false;
    this.stats.layerRenders++;
    this.stats.lastLayerMs = performance.now() - t0;
  }

  // stampSeats draws every seat of the layer's region as a disc of pixels
  // (premultiplied by coverage at the rim) and collects the blocked ones.
  stampSeats(l, x0, y0, s, pw, ph, blocked) {
    let img = this.layerImage;
    if (!img || img.width !== l.canvas.width || img.height !== l.canvas.height) {
      img = l.ctx.createImageData(l.canvas.width, l.canvas.height);
      this.layerImage = img;
    } else {
      img.data.fill(0);
    }
    const stride = img.width;
    const px = new Uint32Array(img.data.buffer);
    const stamp = discStamp(Math.max(0.7, this.r * s));
    const n = stamp.dx.length;
    const st = this.store;
    const pad = this.r;
    this.eachSeatIn(x0 - pad, y0 - pad, x0 + l.w + pad, y0 + l.h + pad, (i) => {
      if (st.status[i] === BLOCKED) blocked.push(i);
      const rgb = packedRGB(this.fillFor(i));
      const cx = Math.floor((st.x[i] - x0) * s);
      const cy = Math.floor((st.y[i] - y0) * s);
      for (let k = 0; k < n; k++) {
        const x = cx + stamp.dx[k];
        const y = cy + stamp.dy[k];
        if (x < 0 || y < 0 || x >= pw || y >= ph) continue;
        const a = stamp.alpha[k];
        const at = y * stride + x;
        // Neighbours may share a rim pixel on a dense view: the more
        // covered one keeps it.
        if (a > px[at] >>> 24) px[at] = (rgb | (a << 24)) >>> 0;
      }
    });
    l.ctx.putImageData(img, 0, 0, 0, 0, pw, ph);
  }

  crossPath(ctx, i) {
    const st = this.store;
    const k = this.r * 0.6;
    ctx.moveTo(st.x[i] - k, st.y[i] - k);
    ctx.lineTo(st.x[i] + k, st.y[i] + k);
    ctx.moveTo(st.x[i] + k, st.y[i] - k);
    ctx.lineTo(st.x[i] - k, st.y[i] + k);
  }

  // patchLayer redraws a few changed seats in the layer in place: clear a
  // square around each, then redraw every seat touching that square.
  patchLayer(changed) {
    const l = this.layer;
    const ctx = l.ctx;
    const st = this.store;
    const r = this.r;
    const h = r + 1.5 / l.s;
    const rPx = r * l.s;
    const circles = rPx >= 1.6;
    for (const i of changed) {
      const x = st.x[i];
      const y = st.y[i];
      if (x + h < l.x || y + h < l.y || x - h > l.x + l.w || y - h > l.y + l.h) continue;
      ctx.save();
      ctx.beginPath();
      ctx.rect(x - h, y - h, 2 * h, 2 * h);
      ctx.clip();
      ctx.clearRect(x - h, y - h, 2 * h, 2 * h);
      this.eachSeatIn(x - h - r, y - h - r, x + h + r, y + h + r, (j) => {
        ctx.fillStyle = this.fillFor(j);
        ctx.beginPath();
        if (circles) ctx.arc(st.x[j], st.y[j], r, 0, Math.PI * 2);
        else ctx.rect(st.x[j] - r, st.y[j] - r, 2 * r, 2 * r);
        ctx.fill();
        if (st.status[j] === BLOCKED && rPx >= 3) {
          ctx.strokeStyle = colors.blockedCross;
          ctx.lineWidth = Math.max(1 / l.s, r * 0.18);
          ctx.beginPath();
          this.crossPath(ctx, j);
          ctx.stroke();
        }
      });
      ctx.restore();
    }
    this.stats.patches++;
  }

  draw() {
    const t0 = performance.now();
    if (this.needsLayer()) this.renderLayer();
    const ctx = this.ctx;
    const v = this.view;
    const dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = colors.background;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    // World transform in device pixels.
    ctx.setTransform(v.scale * dpr, 0, 0, v.scale * dpr, v.tx * dpr, v.ty * dpr);
    this.drawAreas(ctx);
    const l = this.layer;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(l.canvas, 0, 0, l.pw, l.ph, l.x, l.y, l.w, l.h);
    this.drawOverlays(ctx);
    const ms = performance.now() - t0;
    const s = this.stats;
    s.frames++;
    s.lastDrawMs = ms;
    s.drawMsTotal += ms;
    s.drawMsMax = Math.max(s.drawMsMax, ms);
    if (this.taken.size) this.invalidate(); // keep the flash animating
  }

  drawAreas(ctx) {
    const px = 1 / (this.view.scale * this.dpr); // one device pixel in plan units
    for (const a of this.areas) {
      ctx.save();
      ctx.translate(a.x + a.width / 2, a.y + a.height / 2);
      if (a.rotation) ctx.rotate((a.rotation * Math.PI) / 180);
      ctx.fillStyle = a.color || '#333333';
      const rr = Math.min(a.width, a.height) * 0.12;
      ctx.beginPath();
      if (ctx.roundRect) ctx.roundRect(-a.width / 2, -a.height / 2, a.width, a.height, rr);
      else ctx.rect(-a.width / 2, -a.height / 2, a.width, a.height);
      ctx.fill();
      if (a.text) {
        // Text at a legible size on screen, fitted to the area.
        const size = Math.min(a.height * 0.5, (a.width * 0.8) / Math.max(1, a.text.length * 0.62));
        if (size / px >= 7) {
          ctx.fillStyle = textColorOn(a.color || '#333333');
          ctx.font = `700 ${size}px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif`;
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText(a.text, 0, size * 0.05);
        }
      }
      ctx.restore();
    }
  }

  drawOverlays(ctx) {
    const st = this.store;
    const v = this.view;
    const r = this.r;
    const px = 1 / (v.scale * this.dpr);
    const rPx = r * v.scale; // CSS px
    // Overlay seats are drawn at least this large, so a selection shows
    // even on the whole-stadium view.
    const ro = Math.max(r, 3 / v.scale);
    const ring = Math.max(r * 0.28, 1.5 * px);
    const opts = this.opts;
    for (const i of this.overlay) {
      const mine = opts.isMine(i);
      ctx.beginPath();
      ctx.arc(st.x[i], st.y[i], ro, 0, Math.PI * 2);
      ctx.fillStyle = mine ? colors.mineFill : colors.selectedFill;
      ctx.fill();
      ctx.lineWidth = ring;
      ctx.strokeStyle = mine ? colors.mineRing : colors.selectedRing;
      ctx.stroke();
    }
    // Seats someone else just took: a fading red ring.
    const now = performance.now();
    for (const [i, until] of this.taken) {
      if (until <= now) {
        this.taken.delete(i);
        continue;
      }
      const f = (until - now) / takenFlashMs;
      ctx.beginPath();
      ctx.arc(st.x[i], st.y[i], ro + ring * 2 + (1 - f) * ro, 0, Math.PI * 2);
      ctx.lineWidth = ring * 1.3;
      ctx.strokeStyle = colors.taken;
      ctx.globalAlpha = Math.max(0.15, f);
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    if (this.hover >= 0) {
      ctx.beginPath();
      ctx.arc(st.x[this.hover], st.y[this.hover], ro + ring, 0, Math.PI * 2);
      ctx.lineWidth = ring;
      ctx.strokeStyle = colors.selectedRing;
      ctx.stroke();
    }
    if (this.focus >= 0 && this.showFocus) {
      ctx.beginPath();
      ctx.arc(st.x[this.focus], st.y[this.focus], ro + ring * 2.5, 0, Math.PI * 2);
      ctx.lineWidth = Math.max(ring, 2.5 * px);
      ctx.strokeStyle = colors.focus;
      ctx.stroke();
    }
    // Seat numbers once seats are large enough to carry them.
    if (rPx >= labelRadiusPx) {
      const [x0, y0] = this.toWorld(0, 0);
      const [x1, y1] = this.toWorld(this.cssW, this.cssH);
      const size = r * 0.85;
      ctx.font = `600 ${size}px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      this.eachSeatIn(x0 - r, y0 - r, x1 + r, y1 + r, (i) => {
        const label = st.number[i];
        if (!label || label.length > 4) return;
        let fill;
        if (this.overlay.has(i)) fill = opts.isMine(i) ? '#ffffff' : '#111827';
        else if (st.status[i] === AVAILABLE) fill = textColorOn(this.fillFor(i));
        else fill = '#4b5260';
        ctx.fillStyle = fill;
        ctx.fillText(label, st.x[i], st.y[i] + size * 0.05);
      });
    }
  }

  // Input ------------------------------------------------------------------

  bind() {
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => this.pointerDown(e));
    c.addEventListener('pointermove', (e) => this.pointerMove(e));
    c.addEventListener('pointerup', (e) => this.pointerUp(e));
    c.addEventListener('pointercancel', (e) => this.pointerUp(e, true));
    c.addEventListener('pointerleave', (e) => {
      if (e.pointerType === 'mouse' && !this.pointers.size) this.setHover(-1, 0, 0);
    });
    c.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    c.addEventListener('keydown', (e) => this.keyDown(e));
    c.addEventListener('focus', () => {
      if (!this.keyboardFocus) return;
      this.showFocus = true;
      if (this.focus < 0) this.focusSeat(this.seatNearCentre(), false);
      else this.focusSeat(this.focus, false);
    });
    c.addEventListener('blur', () => {
      this.showFocus = false;
      this.invalidate();
    });
    // Focus that arrives by Tab shows the focus ring; by a click it does not.
    this.onDocKey = () => { this.keyboardFocus = true; };
    this.onDocPointer = () => { this.keyboardFocus = false; };
    document.addEventListener('keydown', this.onDocKey, true);
    document.addEventListener('pointerdown', this.onDocPointer, true);
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(c);
  }

  destroy() {
    document.removeEventListener('keydown', this.onDocKey, true);
    document.removeEventListener('pointerdown', this.onDocPointer, true);
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.settleTimer);
  }

  local(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [e.clientX - rect.left, e.clientY - rect.top];
  }

  pointerDown(e) {
    if (e.button !== undefined && e.button > 0) return;
    this.canvas.setPointerCapture(e.pointerId);
    const [x, y] = this.local(e);
    this.pointers.set(e.pointerId, { x, y, type: e.pointerType });
    if (this.pointers.size === 1) {
      this.gesture = { kind: 'press', x0: x, y0: y, lastX: x, lastY: y, type: e.pointerType };
    } else if (this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      this.gesture = { kind: 'pinch', dist: Math.hypot(a.x - b.x, a.y - b.y), mx: (a.x + b.x) / 2, my: (a.y + b.y) / 2 };
    }
    this.setHover(-1, 0, 0);
  }

  pointerMove(e) {
    const [x, y] = this.local(e);
    const p = this.pointers.get(e.pointerId);
    if (!p) {
      if (e.pointerType === 'mouse') this.hoverAt(x, y, e.clientX, e.clientY);
      return;
    }
    p.x = x;
    p.y = y;
    const g = this.gesture;
    if (!g) return;
    if (g.kind === 'press') {
      const limit = dragThresholdPx[g.type] || 6;
      if (Math.hypot(x - g.x0, y - g.y0) > limit) {
        g.kind = 'drag';
        this.canvas.classList.add('dragging');
      }
    }
    if (g.kind === 'drag') {
      this.panBy(x - g.lastX, y - g.lastY);
      g.lastX = x;
      g.lastY = y;
    } else if (g.kind === 'pinch' && this.pointers.size >= 2) {
      const [a, b] = [...this.pointers.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y);
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2;
      if (g.dist > 0) this.zoomAt(dist / g.dist, mx, my);
      this.panBy(mx - g.mx, my - g.my);
      g.dist = dist;
      g.mx = mx;
      g.my = my;
    } else if (g.kind === 'press') {
      g.lastX = x;
      g.lastY = y;
    }
  }

  pointerUp(e, cancelled) {
    if (!this.pointers.has(e.pointerId)) return;
    this.pointers.delete(e.pointerId);
    const g = this.gesture;
    this.canvas.classList.remove('dragging');
    if (this.pointers.size === 0) {
      this.gesture = null;
      if (g && g.kind === 'press' && !cancelled) {
        const [x, y] = this.local(e);
        this.tap(x, y);
      }
    } else if (this.pointers.size === 1) {
      // One finger left from a pinch: it pans from here on.
      const [p] = [...this.pointers.values()];
      this.gesture = { kind: 'drag', x0: p.x, y0: p.y, lastX: p.x, lastY: p.y, type: p.type };
    }
  }

  tap(x, y) {
    const pitchPx = this.pitch * this.view.scale;
    const [wx, wy] = this.toWorld(x, y);
    if (pitchPx < tapSelectPitchPx) {
      // Seats too small to hit reliably: bring them closer first.
      this.zoomAt(Math.min(4, (tapSelectPitchPx * 2.2) / pitchPx), x, y);
      return;
    }
    const i = this.seatAt(wx, wy, this.pitch * 0.55);
    if (i >= 0) {
      this.focus = i;
      this.opts.onTap(i);
    }
  }

  hoverAt(x, y, clientX, clientY) {
    const pitchPx = this.pitch * this.view.scale;
    let i = -1;
    if (pitchPx >= 3) {
      const [wx, wy] = this.toWorld(x, y);
      i = this.seatAt(wx, wy, this.pitch * 0.55);
    }
    this.setHover(i, clientX, clientY);
  }

  setHover(i, clientX, clientY) {
    this.canvas.classList.toggle('pointing', i >= 0);
    if (i === this.hover) {
      // Also for -1: a tooltip shown by a tap or the keyboard goes too.
      this.opts.onHover(i, clientX, clientY);
      return;
    }
    this.hover = i;
    this.opts.onHover(i, clientX, clientY);
    this.invalidate();
  }

  wheel(e) {
    e.preventDefault();
    const [x, y] = this.local(e);
    let dy = e.deltaY;
    if (e.deltaMode === 1) dy *= 16;
    else if (e.deltaMode === 2) dy *= this.cssH;
    // Trackpad pinches arrive as ctrl+wheel with small deltas.
    const k = e.ctrlKey ? 0.01 : 0.0015;
    this.zoomAt(Math.exp(-dy * k), x, y);
  }

  zoomButton(dir) {
    if (dir === 'fit') this.fit();
    else this.zoomAt(dir === 'in' ? 1.5 : 1 / 1.5, this.cssW / 2, this.cssH / 2);
  }

  seatNearCentre() {
    const [wx, wy] = this.toWorld(this.cssW / 2, this.cssH / 2);
    let i = this.seatAt(wx, wy, this.pitch * 4);
    if (i < 0) i = this.seatAt(wx, wy, Math.max(this.bounds.w, this.bounds.h));
    return i;
  }

  focusSeat(i, announce = true) {
    if (i < 0) return;
    this.focus = i;
    this.showFocus = true;
    this.reveal(i);
    this.invalidate();
    this.opts.onFocusSeat(i, announce);
  }

  keyDown(e) {
    const dirs = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (dirs[e.key]) {
      e.preventDefault();
      this.keyboardFocus = true;
      if (this.focus < 0) {
        this.focusSeat(this.seatNearCentre());
        return;
      }
      const [dx, dy] = dirs[e.key];
      const n = this.neighbour(this.focus, dx, dy);
      if (n >= 0) this.focusSeat(n);
      return;
    }
    switch (e.key) {
      case 'Enter':
      case ' ':
        e.preventDefault();
        if (this.focus >= 0) {
          this.showFocus = true;
          this.opts.onTap(this.focus);
        }
        break;
      case '+':
      case '=':
        e.preventDefault();
        this.zoomButton('in');
        break;
      case '-':
      case '_':
        e.preventDefault();
        this.zoomButton('out');
        break;
      case '0':
        e.preventDefault();
        this.zoomButton('fit');
        break;
      default:
    }
  }

  // clientPoint returns the seat's position in client (viewport) CSS
  // pixels and its radius there, or null when it is outside the canvas.
  clientPoint(i) {
    const rect = this.canvas.getBoundingClientRect();
    const [sx, sy] = this.toScreen(this.store.x[i], this.store.y[i]);
    if (sx < 0 || sy < 0 || sx > this.cssW || sy > this.cssH) return null;
    return { x: rect.left + sx, y: rect.top + sy, r: this.r * this.view.scale };
  }
}

// discStamp returns the pixels of an anti-aliased disc of radius r
// (device px) around the centre of pixel (0, 0): offsets and coverage.
const stamps = new Map();
function discStamp(r) {
  const key = Math.round(r * 8) / 8;
  let st = stamps.get(key);
  if (st) return st;
  const R = Math.ceil(key + 0.5);
  const dx = [];
  const dy = [];
  const alpha = [];
  for (let y = -R; y <= R; y++) {
    for (let x = -R; x <= R; x++) {
      const cov = Math.min(1, Math.max(0, key + 0.5 - Math.hypot(x, y)));
      if (cov <= 0) continue;
      dx.push(x);
      dy.push(y);
      alpha.push(Math.round(cov * 255));
    }
  }
  st = { dx: Int16Array.from(dx), dy: Int16Array.from(dy), alpha: Uint8Array.from(alpha) };
  stamps.set(key, st);
  return st;
}

// packedRGB returns a CSS colour as the low 24 bits of a little-endian
// RGBA pixel (red in the lowest byte).
const packed = new Map();
let colourProbe = null;
function packedRGB(css) {
  let v = packed.get(css);
  if (v !== undefined) return v;
  let hex = /^#([0-9a-f]{6})$/i.exec(css);
  if (!hex) {
    // Any other CSS colour: let a canvas normalise it to #rrggbb.
    colourProbe = colourProbe || document.createElement('canvas').getContext('2d');
    colourProbe.fillStyle = '#000000';
    colourProbe.fillStyle = css;
    hex = /^#([0-9a-f]{6})$/i.exec(colourProbe.fillStyle) || [null, '9aa1ab'];
  }
  const n = Number.parseInt(hex[1], 16);
  v = ((n >> 16) & 255) | (((n >> 8) & 255) << 8) | ((n & 255) << 16);
  packed.set(css, v);
  return v;
}

// textColorOn picks black or white text for a background colour.
export function textColorOn(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
  if (!m) return '#ffffff';
  const n = Number.parseInt(m[1], 16);
  const lum = (0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
  return lum > 0.6 ? '#111827' : '#ffffff';
}

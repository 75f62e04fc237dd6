package web

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// seatsBodyMaxAge is how old an encoded seat map may be and still be served
// while newer changes exist. Under a flash sale the version moves with every
// group commit; re-encoding a 48,568-seat map for each of them would cost more
// than the sale itself, so at most one encoding per event runs at a time and
// a body younger than this is reused. Together with the encoding time this
// stays well inside API.md's "a durable change shows within 1 s".
const seatsBodyMaxAge = 200 * time.Millisecond

// Hub is the read side of every event's seat map. The actor system feeds it
// (it implements actors.SeatFeed) after each durable batch; HTTP readers use
// it without ever sending a message to an actor, so reads never queue behind
// writes (DESIGN.md, "Reading the seat map").
//
// Per event it keeps the immutable plan, one status byte per seat, the counts,
// the version (the sequence number of the last applied record) and a bounded
// ring of recent deltas for the live feed (live.go). Feed calls take a short
// write lock per event; readers take a read lock only to copy what they need.
// No call of the feed ever waits for a reader or a live subscriber: Apply
// updates the state and signals the event's live pump without blocking.
type Hub struct {
	log *slog.Logger
	cfg liveConfig // fixed before the hub is shared (tests shrink it)

	mu     sync.RWMutex
	events map[string]*seatMap
	live   liveState // guarded by mu, except where live.go says otherwise

	renders      atomic.Uint64 // seat-map bodies encoded
	staleApplies atomic.Uint64 // Apply calls at or below the current version, ignored
	badSeats     atomic.Uint64 // changes naming a seat index outside the plan, ignored
}

// seatMap is one event's entry. A Reset replaces the whole entry, so a
// reader holding the old one keeps a consistent (if dated) view.
type seatMap struct {
	id   string
	plan *engine.Plan // nil only for an event known solely as unavailable
	info engine.EventInfo
	enc  *planEncoding

	mu          sync.RWMutex
	version     uint64
	statuses    []engine.SeatStatus // index = seat index in plan.Seats
	counts      engine.Counts
	unavailable error
	ring        deltaRing // the deltas since the oldest version still retained

	renderMu  sync.Mutex // one encoding at a time; also guards scratch
	scratch   []engine.SeatStatus
	body      atomic.Pointer[seatsBody]
	sizeBytes atomic.Int64 // size of the last body, to size the next buffer

	snapMu sync.Mutex // one live snapshot encoding at a time
	snap   atomic.Pointer[liveSnapshot]
}

// seatsBody is an encoded GET .../seats response for one version, kept only
// gzip-compressed: the stadium's map is 6.3 MB of JSON but 0.7 MB
// compressed, and an event's whole footprint is budgeted at 200 bytes per
// seat (docs/BENCHMARKS.md). Clients that do not accept gzip get it
// decompressed as it is written.
type seatsBody struct {
	version    uint64
	snapshotAt time.Time
	gzip       []byte
	size       int // bytes of the uncompressed JSON
}

// jsonBufPool recycles the buffers seat maps are encoded into before
// compression; the garbage collector empties it, so it holds no memory
// between sales.
var jsonBufPool = sync.Pool{New: func() any { return new([]byte) }}

// NewHub returns an empty hub; log receives feed inconsistencies (nil
// discards). Encoded seat maps are aged on the process's monotonic clock:
// their age is a cost bound, not a fact of the sale, so it does not follow
// an injected clock.
func NewHub(log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{log: log, cfg: defaultLiveConfig(), events: make(map[string]*seatMap)}
	h.live.init()
	return h
}

// Reset replaces an event's whole seat map (after creation or recovery).
// plan is immutable and shared; statuses is copied. The new map starts an
// empty ring of deltas: live subscribers of the old one get a snapshot.
func (h *Hub) Reset(eventID string, version uint64, plan *engine.Plan, info engine.EventInfo, statuses []engine.SeatStatus) {
	if plan == nil || len(statuses) != plan.Capacity() {
		h.log.Error("seat feed: reset with a status array that does not match the plan",
			"event", eventID, "statuses", len(statuses))
		return
	}
	m := &seatMap{
		id:       eventID,
		plan:     plan,
		info:     info,
		enc:      newPlanEncoding(plan),
		version:  version,
		statuses: slices.Clone(statuses),
	}
	for _, st := range m.statuses {
		addCount(&m.counts, st, 1)
	}
	h.mu.Lock()
	h.events[eventID] = m
	h.mu.Unlock()
	h.wakeLive(eventID)
}

// Apply applies one durable batch of changes. Versions only grow: a batch at
// or below the current version is ignored. The batch is also kept in the
// event's ring of deltas (changes naming a seat outside the plan left out),
// and the event's live pump, if it has subscribers, is signalled.
func (h *Hub) Apply(eventID string, version uint64, changes []engine.SeatChange) {
	m := h.lookup(eventID)
	if m == nil || m.plan == nil {
		h.log.Error("seat feed: changes for an event without a seat map", "event", eventID, "version", version)
		return
	}
	if !m.apply(h, version, changes) {
		return
	}
	h.wakeLive(eventID)
}

// apply updates the map and its ring; false: a stale batch, ignored.
func (m *seatMap) apply(h *Hub, version uint64, changes []engine.SeatChange) bool {
	// The ring keeps its own copy, made before the lock is taken: the
	// caller's slice belongs to the actor's batch.
	kept := make([]engine.SeatChange, 0, len(changes))
	for _, c := range changes {
		if c.Seat >= 0 && int(c.Seat) < len(m.statuses) { // the plan's size is fixed
			kept = append(kept, c)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if version <= m.version {
		h.staleApplies.Add(1)
		return false
	}
	h.badSeats.Add(uint64(len(changes) - len(kept)))
	for _, c := range kept {
		addCount(&m.counts, m.statuses[c.Seat], -1)
		addCount(&m.counts, c.Status, 1)
		m.statuses[c.Seat] = c.Status
	}
	m.ring.push(ringEntry{from: m.version, version: version, changes: kept}, h.cfg.ringBatchesMax, h.cfg.ringChangesMax)
	m.version = version
	return true
}

// Unavailable marks an event whose journal failed verification; it is then
// answered with 503 event_unavailable and left out of the event list.
func (h *Hub) Unavailable(eventID string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.events[eventID]
	if m == nil {
		m = &seatMap{id: eventID}
		h.events[eventID] = m
	}
	m.mu.Lock()
	m.unavailable = err
	m.mu.Unlock()
	h.wakeLiveLocked(eventID)
}

func (h *Hub) lookup(eventID string) *seatMap {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.events[eventID]
}

// event returns the read model of one event with its current counts and
// version. ok is false when the hub does not know the event; err is set
// (event_unavailable) when it knows it only as unavailable.
func (h *Hub) event(eventID string) (info engine.EventInfo, ok bool, err error) {
	m := h.lookup(eventID)
	if m == nil {
		return engine.EventInfo{}, false, nil
	}
	info, err = m.read()
	return info, true, err
}

// read returns the event's read model as of its current version.
func (m *seatMap) read() (engine.EventInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.unavailable != nil || m.plan == nil {
		return engine.EventInfo{}, unavailableError(m.id)
	}
	info := m.info
	info.Counts = m.counts
	info.Version = m.version
	return info, nil
}

// all returns every event's entry; the hub's lock is not held afterwards.
func (h *Hub) all() []*seatMap {
	h.mu.RLock()
	defer h.mu.RUnlock()
	maps := make([]*seatMap, 0, len(h.events))
	for _, m := range h.events {
		maps = append(maps, m)
	}
	return maps
}

// eventList returns every servable event, soonest first.
func (h *Hub) eventList() []engine.EventInfo {
	maps := h.all()
	list := make([]engine.EventInfo, 0, len(maps))
	for _, m := range maps {
		if info, err := m.read(); err == nil {
			list = append(list, info)
		}
	}
	slices.SortFunc(list, func(a, b engine.EventInfo) int {
		if c := a.StartsAt.Compare(b.StartsAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// seats returns the encoded seat map of an event, at most seatsBodyMaxAge
// behind its current version, and that current version.
func (h *Hub) seats(eventID string) (body *seatsBody, current uint64, ok bool, err error) {
	m := h.lookup(eventID)
	if m == nil {
		return nil, 0, false, nil
	}
	current, unavailable := m.state()
	if unavailable {
		return nil, 0, true, unavailableError(eventID)
	}
	asked := time.Now()
	if b := m.body.Load(); b != nil && (b.version == current || asked.Sub(b.snapshotAt) < seatsBodyMaxAge) {
		return b, current, true, nil
	}
	m.renderMu.Lock()
	defer m.renderMu.Unlock()
	// Another reader may have encoded while this one waited: anything
	// snapshotted after this request arrived is fresh enough.
	if b := m.body.Load(); b != nil && (b.version >= current || !b.snapshotAt.Before(asked)) {
		return b, current, true, nil
	}
	m.mu.RLock()
	version := m.version
	m.scratch = append(m.scratch[:0], m.statuses...)
	m.mu.RUnlock()
	b := &seatsBody{version: version, snapshotAt: time.Now()}
	bufp := jsonBufPool.Get().(*[]byte)
	js := m.enc.appendSeatMap((*bufp)[:0], m.id, version, m.scratch)
	b.gzip, b.size = compress(js, m.sizeBytes.Load()), len(js)
	*bufp = js
	jsonBufPool.Put(bufp)
	m.sizeBytes.Store(int64(len(b.gzip)))
	m.body.Store(b)
	h.renders.Add(1)
	return b, max(current, version), true, nil
}

// compress gzips js (fastest level: seat maps are repetitive and encoded
// often during a sale); sizeHint is the previous compressed size.
func compress(js []byte, sizeHint int64) []byte {
	var buf bytes.Buffer
	buf.Grow(int(max(sizeHint, int64(len(js)/8))) + 512)
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	_, _ = zw.Write(js)                                // a bytes.Buffer does not fail
	_ = zw.Close()
	return bytes.Clone(buf.Bytes())
}

// writeJSON writes the uncompressed body to w.
func (b *seatsBody) writeJSON(w io.Writer) error {
	zr, err := gzip.NewReader(bytes.NewReader(b.gzip))
	if err != nil {
		return err
	}
	_, err = io.Copy(w, zr)
	return err
}

func unavailableError(eventID string) error {
	return errorf(actors.CodeEventUnavailable, "event %q is not served: its journal failed verification", eventID)
}

// addCount adds n seats of status st to c.
func addCount(c *engine.Counts, st engine.SeatStatus, n int) {
	switch st {
	case engine.SeatAvailable:
		c.Available += n
	case engine.SeatReserved:
		c.Reserved += n
	case engine.SeatBooked:
		c.Booked += n
	default:
		c.Blocked += n // unknown statuses are never for sale
	}
}

// planEncoding holds the JSON fragments of a plan that seats share (zone and
// row labels, categories), so a seat map is encoded by appending bytes and
// each seat costs nothing beyond its status byte between encodings.
type planEncoding struct {
	plan       *engine.Plan
	rows       [][]byte // per row: `,"zone":"…","row":"…"`
	categories [][]byte // per category: `,"category":"…"`
}

var statusFragments = [...]string{
	engine.SeatAvailable: `,"status":"available"}`,
	engine.SeatReserved:  `,"status":"reserved"}`,
	engine.SeatBooked:    `,"status":"booked"}`,
	engine.SeatBlocked:   `,"status":"blocked"}`,
}

func newPlanEncoding(p *engine.Plan) *planEncoding {
	e := &planEncoding{plan: p, rows: make([][]byte, len(p.Rows)), categories: make([][]byte, len(p.Categories))}
	for i, r := range p.Rows {
		zone := ""
		if int(r.Zone) < len(p.Zones) {
			zone = p.Zones[r.Zone]
		}
		b := append([]byte(`,"zone":`), appendJSONString(nil, zone)...)
		b = append(b, `,"row":`...)
		e.rows[i] = appendJSONString(b, r.Name)
	}
	for i, c := range p.Categories {
		e.categories[i] = appendJSONString([]byte(`,"category":`), c.Name)
	}
	return e
}

// appendSeatMap appends the JSON of GET /v1/events/{id}/seats.
func (e *planEncoding) appendSeatMap(b []byte, eventID string, version uint64, statuses []engine.SeatStatus) []byte {
	b = append(b, `{"eventId":`...)
	b = appendJSONString(b, eventID)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, version, 10)
	b = append(b, `,"seats":[`...)
	for i := range e.plan.Seats {
		s := &e.plan.Seats[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, s.ID)
		if int(s.Row) < len(e.rows) {
			b = append(b, e.rows[s.Row]...)
		}
		b = append(b, `,"number":`...)
		b = appendJSONString(b, s.Number)
		b = append(b, `,"x":`...)
		b = strconv.AppendInt(b, int64(s.X), 10)
		b = append(b, `,"y":`...)
		b = strconv.AppendInt(b, int64(s.Y), 10)
		if int(s.Category) < len(e.categories) {
			b = append(b, e.categories[s.Category]...)
		}
		st := statuses[i]
		if int(st) >= len(statusFragments) {
			st = engine.SeatBlocked // an unknown status is never offered for sale
		}
		b = append(b, statusFragments[st]...)
	}
	return append(b, "]}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json does
// (control characters, quote, backslash, <, >, &, U+2028, U+2029; invalid
// UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// unavailableCount is the number of events marked unavailable.
func (h *Hub) unavailableCount() int {
	n := 0
	for _, m := range h.all() {
		m.mu.RLock()
		if m.unavailable != nil {
			n++
		}
		m.mu.RUnlock()
	}
	return n
}

// state is the map's version and whether it cannot be served (the event
// is unavailable, or its plan is not known yet), read together.
func (m *seatMap) state() (version uint64, unavailable bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version, m.unavailable != nil || m.plan == nil
}

package web

import (
	"compress/flate"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// The live seat map, GET /v1/events/{eventId}/live (API.md): a WebSocket on
// which the server sends JSON text frames, a snapshot
//
//	{"type":"snapshot","version":N,"seats":{"<seatId>":"<status>",...}}
//
// then deltas without gaps (each delta's from is the version the previous
// frame reached)
//
//	{"type":"delta","from":N,"version":M,"changes":{"<seatId>":"<status>",...}}
//
// How it is built, from the actor outwards:
//
//  1. The event actor calls Hub.Apply with each durable batch. Apply updates
//     the seat map, appends the batch to the event's ring of deltas and
//     signals the event's pump on a channel of one slot without waiting.
//     Nothing a subscriber does can make Apply wait: subscribers never take
//     the seat map's lock for more than a copy.
//  2. One pump goroutine per event with subscribers publishes frames to the
//     event's groups of subscribers in turn, each group at most once per
//     frameInterval (100 ms), at an interval that grows with the measured
//     fan-out (see pump): a frame is the pair (the group's version before,
//     version now) with the delta between them encoded once as a
//     websocket.PreparedMessage. A new frame closes the group's previous
//     one's done channel, which wakes the group's subscribers at once.
//  3. Each subscriber has one writer goroutine that pulls: woken by a frame,
//     it sends the delta from the version it has sent last to the frame's
//     version. A subscriber in step with the frames gets the frame's shared
//     message; one that fell behind (its last write took longer than a
//     frame) gets the merged changes since its own version in one frame,
//     encoded once per (from, version) for all subscribers at the same
//     place. Its queue is thus the ring itself, bounded: when its version is
//     no longer in the ring it is closed with 4000 "resync". A write that
//     does not finish within writeTimeout closes the connection without a
//     close frame (none can follow half a frame); the client resyncs the
//     same way.
//  4. A second goroutine per subscriber reads and discards what the client
//     sends, answers pings, and notices a close or a dead peer (no pong
//     within pongWait); the writer pings every pingInterval.
//
// Every goroutine here is owned by the Hub (live.wg): pumps end when their
// last subscriber leaves, subscribers when their connection ends, and all of
// them on Server.Close.

// liveConfig bounds the live feed; defaultLiveConfig is the contract of
// doc.go. Tests shrink it before the hub is shared.
type liveConfig struct {
	ringBatchesMax  int           // batches an event's ring of deltas keeps
	ringChangesMax  int           // seat changes it keeps, over all its batches
	frameInterval   time.Duration // at least this long between two frames to one subscriber
	frameMax        time.Duration // the adaptive frame interval grows up to this under load
	frameGroups     int           // an event's subscribers take turns in this many groups
	fanoutShare     float64       // the share of a frame interval the fan-out of all groups may take
	writeTimeout    time.Duration // one frame, ping or close frame must be written within this
	pingInterval    time.Duration // the writer pings this often
	pongWait        time.Duration // read deadline, extended by each pong or client message
	closeWait       time.Duration // how long a close handshake may take
	snapshotMaxAge  time.Duration // a snapshot this young is reused (the subscriber then catches up by a delta)
	subscribersMax  int           // live connections per server; past it, 503 overloaded
	sendBufferBytes int           // SO_SNDBUF of a subscriber's socket; 0: the kernel's (tests make it small)
}

func defaultLiveConfig() liveConfig {
	return liveConfig{
		ringBatchesMax: 4096,
		// 512 KiB of changes per event at most (8 bytes each): about 11
		// bytes per seat of the stadium, and at a flash sale's 10,000 seat
		// changes per second still a window of 6.5 s.
		ringChangesMax: 65_536,
		frameInterval:  100 * time.Millisecond,
		frameMax:       175 * time.Millisecond,
		frameGroups:    16,
		fanoutShare:    0.9,
		writeTimeout:   10 * time.Second,
		pingInterval:   30 * time.Second,
		pongWait:       60 * time.Second,
		closeWait:      time.Second,
		snapshotMaxAge: time.Second,
		subscribersMax: 100_000,
	}
}

const (
	// liveReadLimitBytes bounds a client message; clients have nothing to
	// say, so anything longer ends the connection (1009).
	liveReadLimitBytes = 512
	// liveReadBufferBytes is the read buffer of a connection: it only ever
	// sees control frames and the odd short message.
	liveReadBufferBytes = 256
	// liveDeltaCacheMax bounds the encoded deltas an event keeps for
	// subscribers that are behind; past it a delta is encoded uncached.
	liveDeltaCacheMax = 64
	// closeResync is the close code of a subscriber that must start over
	// with a snapshot (API.md).
	closeResync = 4000
)

// liveState is the Hub's bookkeeping of live subscribers. Its fields are
// guarded by Hub.mu, except closing (closed once, read freely), the
// counters and the pool.
type liveState struct {
	feeds       map[string]*eventFeed // events with at least one subscriber
	subscribers int
	closed      bool
	closing     chan struct{}  // closed by Server.Close
	wg          sync.WaitGroup // pumps, writers and readers

	writeBufs sync.Pool // gorilla's write buffers, held only while a message is written

	resyncs       atomic.Uint64 // subscribers closed with 4000 because they fell out of the ring
	writeTimeouts atomic.Uint64 // subscribers dropped because a write missed its deadline
}

func (l *liveState) init() {
	l.feeds = make(map[string]*eventFeed)
	l.closing = make(chan struct{})
}

// eventFeed is the live feed of one event while it has subscribers.
type eventFeed struct {
	id          string
	wake        chan struct{}            // one slot: Apply, Reset and Unavailable signal the pump
	stop        chan struct{}            // closed when the last subscriber leaves
	subscribers int                      // guarded by Hub.mu, like subs
	subs        map[*subscriber]struct{} // those past the upgrade
	groups      []*feedGroup             // subscribers take turns by group
	interval    atomic.Int64             // the pump's current frame interval (ns)

	cacheMu sync.Mutex
	cache   map[deltaKey]*deltaEntry
}

// feedGroup is one of an event's groups of subscribers: the pump publishes
// to the groups in turn, so that their writes are spread over the frame
// interval instead of all falling in one burst.
type feedGroup struct {
	members int // guarded by Hub.mu
	size    atomic.Int32
	latest  atomic.Pointer[liveFrame]
}

// liveFrame is one step of a group's feed. Frames are immutable but for
// the fan-out measurement; done is closed when the group's next one is
// published.
type liveFrame struct {
	m           *seatMap // a Reset brings a new map: its subscribers start over
	from        uint64   // the group's previous frame's version (of the same map)
	version     uint64
	msg         *websocket.PreparedMessage // the delta (from, version); nil: none
	unavailable bool
	done        chan struct{}

	// The fan-out measurement: target of the group's writers done with this
	// frame (all but the slowest few, so that one stalled client does not
	// count as load), written so far, and when target was reached (ns after
	// at; 0: not yet).
	at      time.Time
	target  int32
	written atomic.Int32
	took    atomic.Int64
}

// finished records that one subscriber has written (or did not need) fr.
func (fr *liveFrame) finished() {
	if fr.target > 0 && fr.written.Add(1) == fr.target {
		fr.took.Store(max(int64(time.Since(fr.at)), 1))
	}
}

type deltaKey struct {
	m        *seatMap
	from, to uint64
}

type deltaEntry struct {
	once sync.Once
	msg  *websocket.PreparedMessage // nil: from is no longer in the ring
}

// liveSnapshot is an encoded snapshot frame of one version.
type liveSnapshot struct {
	version uint64
	at      time.Time
	msg     *websocket.PreparedMessage
}

// ringEntry is one applied batch: the changes that take the map from
// version from to version version.
type ringEntry struct {
	from, version uint64
	changes       []engine.SeatChange // immutable once pushed: read outside the lock
}

// deltaRing is an event's recent history, oldest batch first: a circular
// buffer that grows up to the batch bound, and drops its oldest batches to
// stay within both bounds (the newest batch is always kept). Consecutive
// entries chain: each entry's from is the previous one's version. Guarded by
// the seat map's lock.
type deltaRing struct {
	buf     []ringEntry
	head, n int
	changes int // over all n entries
}

func (r *deltaRing) at(i int) *ringEntry { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *deltaRing) push(e ringEntry, batchesMax, changesMax int) {
	for r.n > 0 && (r.n >= batchesMax || r.changes+len(e.changes) > changesMax) {
		old := r.at(0)
		r.changes -= len(old.changes)
		*old = ringEntry{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	if r.n == len(r.buf) {
		grown := make([]ringEntry, max(1, min(max(2*len(r.buf), 16), batchesMax)))
		for i := range r.n {
			grown[i] = *r.at(i)
		}
		r.buf, r.head = grown, 0
	}
	*r.at(r.n) = e
	r.n++
	r.changes += len(e.changes)
}

// search returns the index of the first entry whose version is at least v.
func (r *deltaRing) search(v uint64) int {
	return sort.Search(r.n, func(i int) bool { return r.at(i).version >= v })
}

// retains reports whether the map can be brought from version v to current
// by deltas: v is current, or a version the feed published (a batch's
// version, or the version the oldest retained batch starts from).
func (r *deltaRing) retains(v, current uint64) bool {
	switch {
	case v == current:
		return true
	case r.n == 0 || v > current || v < r.at(0).from:
		return false
	case v == r.at(0).from:
		return true
	}
	i := r.search(v)
	return i < r.n && r.at(i).version == v
}

// between returns the changes of the batches after version from up to and
// including version to, oldest first; false when from or to is not retained.
func (r *deltaRing) between(from, to uint64) ([][]engine.SeatChange, bool) {
	if r.n == 0 || from >= to || from < r.at(0).from {
		return nil, false
	}
	i := r.search(from + 1)
	if i == r.n || r.at(i).from != from {
		return nil, false
	}
	var parts [][]engine.SeatChange
	for ; i < r.n && r.at(i).version <= to; i++ {
		parts = append(parts, r.at(i).changes)
	}
	if r.at(i-1).version != to {
		return nil, false
	}
	return parts, true
}

// changeMerger flattens consecutive batches into one change per seat (the
// last), ordered by seat, without allocating once warm: a stamp per seat
// marks the seats the current merge has seen. Encoding a frame's delta
// merges a few thousand changes 80 times a second at an on-sale; a map
// per merge was a twentieth of the server's allocations (docs/BENCHMARKS.md,
// 2026-12-01). Not safe for concurrent use: take one from mergers.
type changeMerger struct {
	stamp  []uint32            // per seat: the merge that last saw it
	status []engine.SeatStatus // per seat: its last status in that merge
	epoch  uint32
	seats  []int32
	out    []engine.SeatChange
}

var mergers = sync.Pool{New: func() any { return new(changeMerger) }}

// merge returns the merged changes of parts, whose seats are below seats;
// the result is valid until the next merge.
func (mg *changeMerger) merge(parts [][]engine.SeatChange, seats int) []engine.SeatChange {
	if len(mg.stamp) < seats {
		mg.stamp, mg.status, mg.epoch = make([]uint32, seats), make([]engine.SeatStatus, seats), 0
	}
	mg.epoch++
	if mg.epoch == 0 { // wrapped: forget every stamp
		clear(mg.stamp)
		mg.epoch = 1
	}
	mg.seats = mg.seats[:0]
	for _, p := range parts {
		for _, c := range p {
			if mg.stamp[c.Seat] != mg.epoch {
				mg.stamp[c.Seat] = mg.epoch
				mg.seats = append(mg.seats, c.Seat)
			}
			mg.status[c.Seat] = c.Status
		}
	}
	slices.Sort(mg.seats)
	mg.out = mg.out[:0]
	for _, seat := range mg.seats {
		mg.out = append(mg.out, engine.SeatChange{Seat: seat, Status: mg.status[seat]})
	}
	return mg.out
}

// retains reports whether v can still be brought up to date by deltas.
func (m *seatMap) retains(v uint64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ring.retains(v, m.version)
}

// encodeDelta encodes the delta frame from version from to version to; nil
// when from is no longer in the ring. The lock is held only to collect the
// batches (their changes are immutable).
func (m *seatMap) encodeDelta(from, to uint64) *websocket.PreparedMessage {
	m.mu.RLock()
	parts, ok := m.ring.between(from, to)
	m.mu.RUnlock()
	if !ok {
		return nil
	}
	mg := mergers.Get().(*changeMerger)
	defer mergers.Put(mg)
	changes := mg.merge(parts, len(m.enc.plan.Seats))
	bufp := jsonBufPool.Get().(*[]byte)
	defer jsonBufPool.Put(bufp)
	*bufp = m.enc.appendLiveDelta((*bufp)[:0], from, to, changes)
	return prepare(*bufp) // prepare copies the frame
}

// prepare wraps an encoded frame. Preparing a text message writes it to
// memory and cannot fail.
func prepare(b []byte) *websocket.PreparedMessage {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		panic("web: prepare a live frame: " + err.Error())
	}
	return pm
}

// liveStatusJSON is each status as a JSON string; unknown statuses are never
// offered for sale.
var liveStatusJSON = [...]string{
	engine.SeatAvailable: `"available"`,
	engine.SeatReserved:  `"reserved"`,
	engine.SeatBooked:    `"booked"`,
	engine.SeatBlocked:   `"blocked"`,
}

func appendLiveStatus(b []byte, st engine.SeatStatus) []byte {
	if int(st) >= len(liveStatusJSON) {
		st = engine.SeatBlocked
	}
	return append(b, liveStatusJSON[st]...)
}

// appendLiveSnapshot appends a snapshot frame.
func (e *planEncoding) appendLiveSnapshot(b []byte, version uint64, statuses []engine.SeatStatus) []byte {
	b = append(b, `{"type":"snapshot","version":`...)
	b = strconv.AppendUint(b, version, 10)
	b = append(b, `,"seats":{`...)
	for i := range e.plan.Seats {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.plan.Seats[i].ID)
		b = append(b, ':')
		b = appendLiveStatus(b, statuses[i])
	}
	return append(b, "}}"...)
}

// appendLiveDelta appends a delta frame; changes name seats of the plan.
func (e *planEncoding) appendLiveDelta(b []byte, from, version uint64, changes []engine.SeatChange) []byte {
	b = append(b, `{"type":"delta","from":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, version, 10)
	b = append(b, `,"changes":{`...)
	for i, c := range changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.plan.Seats[c.Seat].ID)
		b = append(b, ':')
		b = appendLiveStatus(b, c.Status)
	}
	return append(b, "}}"...)
}

// liveSnapshot returns a snapshot frame of m: the cached one while it is
// younger than snapshotMaxAge (or current) and its version still in the
// ring, else a new one. At most one is encoded at a time per event, so a
// crowd arriving at once shares one encoding.
func (h *Hub) liveSnapshot(m *seatMap) *liveSnapshot {
	asked := time.Now()
	usable := func(s *liveSnapshot) bool {
		if s == nil {
			return false
		}
		m.mu.RLock()
		defer m.mu.RUnlock()
		fresh := s.version == m.version || asked.Sub(s.at) < h.cfg.snapshotMaxAge || !s.at.Before(asked)
		return fresh && m.ring.retains(s.version, m.version)
	}
	if s := m.snap.Load(); usable(s) {
		return s
	}
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if s := m.snap.Load(); usable(s) { // encoded while this one waited
		return s
	}
	statuses := make([]engine.SeatStatus, len(m.statuses))
	m.mu.RLock()
	version := m.version
	copy(statuses, m.statuses)
	m.mu.RUnlock()
	bufp := jsonBufPool.Get().(*[]byte)
	js := m.enc.appendLiveSnapshot((*bufp)[:0], version, statuses)
	s := &liveSnapshot{version: version, at: time.Now(), msg: prepare(js)} // prepare copies js
	*bufp = js
	jsonBufPool.Put(bufp)
	m.snap.Store(s)
	return s
}

// liveDelta returns the delta frame (from, to) of m, encoded once for every
// subscriber that needs it; nil when from is no longer in the ring.
func (h *Hub) liveDelta(f *eventFeed, m *seatMap, from, to uint64) *websocket.PreparedMessage {
	key := deltaKey{m: m, from: from, to: to}
	f.cacheMu.Lock()
	e := f.cache[key]
	if e == nil {
		e = &deltaEntry{}
		if len(f.cache) < liveDeltaCacheMax {
			f.cache[key] = e
		}
	}
	f.cacheMu.Unlock()
	e.once.Do(func() { e.msg = m.encodeDelta(from, to) })
	return e.msg
}

// wakeLive signals the event's pump, if it has one, without waiting.
func (h *Hub) wakeLive(eventID string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.wakeLiveLocked(eventID)
}

// wakeLiveLocked is wakeLive with h.mu held.
func (h *Hub) wakeLiveLocked(eventID string) {
	if f := h.live.feeds[eventID]; f != nil {
		select {
		case f.wake <- struct{}{}:
		default: // already signalled: the next frame will see this change too
		}
	}
}

// join registers a subscriber of eventID, starting the event's pump for the
// first one, and reserves the subscriber's two goroutines in the wait group.
func (h *Hub) join(eventID string) (*eventFeed, int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live.closed {
		return nil, 0, errorf(codeNotReady, "the server is shutting down")
	}
	if h.live.subscribers >= h.cfg.subscribersMax {
		return nil, 0, errorf(actors.CodeOverloaded, "the server has %d live subscribers, its limit; retry later", h.live.subscribers)
	}
	m := h.events[eventID]
	if m == nil {
		return nil, 0, errorf(engine.CodeEventNotFound, "event %q not found", eventID)
	}
	f := h.live.feeds[eventID]
	if f == nil {
		f = &eventFeed{
			id:     eventID,
			wake:   make(chan struct{}, 1),
			stop:   make(chan struct{}),
			subs:   make(map[*subscriber]struct{}),
			groups: make([]*feedGroup, max(h.cfg.frameGroups, 1)),
			cache:  make(map[deltaKey]*deltaEntry),
		}
		for i := range f.groups {
			f.groups[i] = &feedGroup{}
			f.groups[i].latest.Store(restingFrame(m))
		}
		f.interval.Store(int64(h.cfg.frameInterval))
		h.live.feeds[eventID] = f
		h.live.wg.Add(1)
		go h.pump(f)
	}
	g := 0 // the smallest group
	for i, grp := range f.groups {
		if grp.members < f.groups[g].members {
			g = i
		}
	}
	if f.groups[g].members == 0 {
		// The pump publishes only to groups with members: an empty group's
		// frame may be from before a Reset (an older map), an outage, or
		// many versions back. The newcomer starts from the current state.
		grp := f.groups[g]
		if prev := grp.latest.Load(); grp.latest.CompareAndSwap(prev, restingFrame(m)) {
			close(prev.done)
		}
	}
	f.groups[g].members++
	f.groups[g].size.Store(int32(f.groups[g].members))
	f.subscribers++
	h.live.subscribers++
	h.live.wg.Add(2)
	return f, g, nil
}

// track records a subscriber past its upgrade, so that closeLive can cut
// its writes short.
func (h *Hub) track(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub.feed.subs[sub] = struct{}{}
}

// leave unregisters a subscriber of group g (sub nil: one whose upgrade
// failed); the last one stops the event's pump.
func (h *Hub) leave(f *eventFeed, g int, sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.groups[g].members--
	f.groups[g].size.Store(int32(f.groups[g].members))
	delete(f.subs, sub)
	f.subscribers--
	h.live.subscribers--
	if f.subscribers == 0 {
		delete(h.live.feeds, f.id)
		close(f.stop)
	}
}

// liveSubscribers is the number of live connections.
func (h *Hub) liveSubscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.live.subscribers
}

// closeLive ends every subscriber and pump and waits for them; later joins
// fail. A write in progress gets closeWait to finish (a stalled client
// would otherwise hold the shutdown for writeTimeout). A writer that passed
// its closing check just before sets its own deadline again as it writes
// (gorilla sets it on every write), so whatever is still running after
// closeLimit has its connection closed under it.
func (h *Hub) closeLive() {
	h.mu.Lock()
	if !h.live.closed {
		h.live.closed = true
		close(h.live.closing)
		deadline := time.Now().Add(h.cfg.closeWait)
		for _, f := range h.live.feeds {
			for sub := range f.subs {
				_ = sub.conn.NetConn().SetWriteDeadline(deadline) // safe while the writer writes
			}
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.live.wg.Wait()
		close(done)
	}()
	limit := time.NewTimer(h.closeLimit())
	defer limit.Stop()
	select {
	case <-done:
		return
	case <-limit.C:
	}
	h.mu.Lock()
	for _, f := range h.live.feeds {
		for sub := range f.subs {
			_ = sub.conn.NetConn().Close()
		}
	}
	h.mu.Unlock()
	<-done
}

// closeLimit is how long closeLive lets subscribers end on their own: a
// close frame written within closeWait, then closeWait for the client's
// answer, and a closeWait to spare.
func (h *Hub) closeLimit() time.Duration { return 3 * h.cfg.closeWait }

// pump publishes the event's frames, to one group of subscribers at a time:
// while the map is ahead of some group's last frame, the groups take turns,
// one every interval/groups, and each group at most once per frameInterval
// (so a change after a quiet spell goes out at once to the group whose turn
// it is, and to every group within one interval). Each frame carries
// everything applied by then, so a subscriber in step gets one frame per
// interval.
//
// The interval adapts to the fan-out: the pump measures how long each
// group's frame takes to be written to (nearly) all its subscribers, and
// keeps the groups' fan-outs within fanoutShare of the interval, between
// frameInterval and frameMax. A busy machine thus sends fewer, larger frames
// instead of falling behind, and because the groups' writes are spread over
// the interval a change waits about one interval plus one group's fan-out,
// not the fan-out of every subscriber.
func (h *Hub) pump(f *eventFeed) {
	defer h.live.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	k := len(f.groups)
	interval := h.cfg.frameInterval
	var fanout float64 // a group's fan-out time (ns), moving average
	lastSent := make([]time.Time, k)
	var lastSlot time.Time
	next := 0 // the group whose turn it is
	for {
		if !h.behind(f) {
			select {
			case <-f.wake:
				continue
			case <-f.stop:
				return
			case <-h.live.closing:
				return
			}
		}
		g := next
		next = (next + 1) % k
		if !h.groupBehind(f, g) {
			continue
		}
		at := lastSlot.Add(interval / time.Duration(k))
		if t := lastSent[g].Add(h.cfg.frameInterval); t.After(at) {
			at = t
		}
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-f.stop:
				return
			case <-h.live.closing:
				return
			}
		}
		now := time.Now()
		prev := h.publish(f, g, now)
		if prev == nil {
			continue // nothing for this group: the next one's turn
		}
		lastSent[g], lastSlot = now, now
		if prev.target > 0 { // a measured frame: how long its fan-out took
			took := float64(prev.took.Load())
			if took == 0 { // not done yet: at least this long
				took = float64(now.Sub(prev.at))
			}
			// One slow frame (a burst of joins, a pause) may at most
			// double the estimate.
			took = min(took, 2*float64(interval)/float64(k))
			if fanout == 0 {
				fanout = took
			} else {
				fanout += (took - fanout) / float64(2*k) // about two intervals' memory
			}
			want := time.Duration(fanout * float64(k) / h.cfg.fanoutShare)
			interval = min(max(want, h.cfg.frameInterval), max(h.cfg.frameMax, h.cfg.frameInterval))
			f.interval.Store(int64(interval))
		}
	}
}

// restingFrame is a group's frame of m's current state with nothing to
// send: what a group starts from, and an empty group's when a subscriber
// joins it.
func restingFrame(m *seatMap) *liveFrame {
	version, unavailable := m.state()
	return &liveFrame{m: m, from: version, version: version, unavailable: unavailable, done: make(chan struct{})}
}

// behind reports whether some group with subscribers has not had a frame
// of the event's current state.
func (h *Hub) behind(f *eventFeed) bool {
	for g := range f.groups {
		if h.groupBehind(f, g) {
			return true
		}
	}
	return false
}

// groupBehind reports whether group g has subscribers and has not had a
// frame of the event's current state.
func (h *Hub) groupBehind(f *eventFeed, g int) bool {
	grp := f.groups[g]
	if grp.size.Load() == 0 {
		return false
	}
	m := h.lookup(f.id)
	if m == nil {
		return false
	}
	version, unavailable := m.state()
	fr := grp.latest.Load()
	return fr.m != m || fr.version != version || fr.unavailable != unavailable
}

// publish makes the event's current state group g's latest frame, if the
// group has subscribers and the state moved since its last frame, and
// returns the frame it replaced (nil: nothing published).
func (h *Hub) publish(f *eventFeed, g int, now time.Time) *liveFrame {
	grp := f.groups[g]
	size := grp.size.Load()
	if size == 0 {
		return nil
	}
	prev := grp.latest.Load()
	m := h.lookup(f.id)
	if m == nil {
		return nil // events are never removed; join found this one
	}
	version, unavailable := m.state()
	if m == prev.m && version == prev.version && unavailable == prev.unavailable {
		return nil
	}
	next := &liveFrame{m: m, from: version, version: version, unavailable: unavailable, done: make(chan struct{}),
		at: now, target: size - max(1, size/32)}
	if m == prev.m && !unavailable && version > prev.version {
		next.from = prev.version
		next.msg = h.liveDelta(f, m, prev.version, version) // nil if the ring overran within one frame
	}
	// Deltas ending before every group's previous frame serve nobody any
	// more: every subscriber now asks for one ending at a group's frame.
	// An empty group's frame serves nobody (join refreshes it): it must
	// not pin the cache.
	oldest := prev.version
	for _, other := range f.groups {
		if fr := other.latest.Load(); fr.m == m && other.size.Load() > 0 {
			oldest = min(oldest, fr.version)
		}
	}
	f.cacheMu.Lock()
	for k := range f.cache {
		if k.m != m || k.to < oldest {
			delete(f.cache, k)
		}
	}
	f.cacheMu.Unlock()
	if !grp.latest.CompareAndSwap(prev, next) {
		return nil // join refreshed the emptied group meanwhile
	}
	close(prev.done)
	return prev
}

// Close ends the live feed: every WebSocket subscriber is sent close code
// 1001 (going away) and its connection closed, and Close waits until the
// feed's goroutines have ended (3 s at most: a write in progress gets a
// second, the client a second to answer the close frame, and what still
// runs then has its connection closed); later live requests answer 503
// not_ready.
// http.Server.Shutdown does not see hijacked connections, so call Close
// after it. Safe to call more than once; the rest of the server keeps
// working.
func (s *Server) Close() { s.hub.closeLive() }

// GET /v1/events/{eventId}/live — the live seat map (see the top of this
// file). Checked before the upgrade, as problem+json: since (400), the
// event (404, 503), the subscriber limit (503), then the handshake (400,
// 403 for a cross-origin page).
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	since, hasSince, err := parseLiveSince(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	eventID := chi.URLParam(r, "eventId")
	m := s.hub.lookup(eventID)
	if m == nil {
		// Unknown to the hub: no such event, or one whose seat map is on
		// its way (as for GET .../seats).
		if _, err := s.eventInfo(r, eventID); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeError(w, r, errorf(codeNotReady, "the seat map of event %q is being built; retry shortly", eventID))
		return
	}
	if _, err := m.read(); err != nil {
		s.writeError(w, r, err)
		return
	}
	f, g, err := s.hub.join(eventID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	deflate := deflateAcceptable(r.Header)
	up := websocket.Upgrader{
		ReadBufferSize:    liveReadBufferBytes,
		WriteBufferPool:   &s.hub.live.writeBufs,
		EnableCompression: deflate,
		CheckOrigin:       sameOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			s.writeError(w, r, upgradeError(status, reason))
		},
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.hub.live.wg.Add(-2) // the subscriber's goroutines never start
		s.hub.leave(f, g, nil)
		return
	}
	// A client that offers permessage-deflate (every browser) gets each
	// frame compressed, once per frame for all of them, at flate.BestSpeed
	// (gorilla's default level): the stadium's deltas shrink about 5×, its
	// snapshot about 7×. Others get the plain frame: gorilla prepares it at
	// compression level 0 and looks a connection's frame up by its level
	// even when nothing is compressed, so at the default level each frame
	// was built twice (45 KiB of garbage per frame at an on-sale).
	if !deflate {
		_ = conn.SetCompressionLevel(flate.NoCompression)
	}
	if n := s.hub.cfg.sendBufferBytes; n > 0 {
		if tc, ok := conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(n)
		}
	}
	sub := &subscriber{h: s.hub, feed: f, group: g, conn: conn, gone: make(chan struct{})}
	s.hub.track(sub)
	go sub.read()
	go sub.write(since, hasSince)
}

// parseLiveSince reads the optional since query parameter: a version in
// canonical decimal (digits, no sign, no leading zero), given once.
func parseLiveSince(rawQuery string) (version uint64, ok bool, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, false, errorf(engine.CodeInvalidRequest, "malformed query string")
	}
	vals, ok := q["since"]
	if !ok {
		return 0, false, nil
	}
	if len(vals) != 1 {
		return 0, false, errorf(engine.CodeInvalidRequest, "since is given more than once")
	}
	v := vals[0]
	canonical := v != "" && len(v) <= 20 && (v == "0" || v[0] != '0') &&
		strings.IndexFunc(v, func(c rune) bool { return c < '0' || c > '9' }) < 0
	if canonical {
		if version, err = strconv.ParseUint(v, 10, 64); err == nil {
			return version, true, nil
		}
	}
	return 0, false, errorf(engine.CodeInvalidRequest, "since must be a version (a decimal number), got %q", v)
}

// deflateAcceptable reports whether the handshake makes a permessage-deflate
// offer (RFC 7692) that gorilla's compression can honour; only then is the
// extension negotiated. gorilla always answers with no context takeover and
// compresses with flate's 32 KiB window, and ignores an offer's parameters,
// so an offer is acceptable only when it names no parameter but the context
// takeover ones, client_max_window_bits (a client's own window) and
// server_max_window_bits=15: a client that asks for a smaller server window
// (RFC 7692 7.1.2.1) or an unknown parameter gets the feed plain. The
// extension token is matched exactly, as gorilla does.
func deflateAcceptable(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
	offers:
		for offer := range strings.SplitSeq(v, ",") {
			params := strings.Split(offer, ";")
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				continue
			}
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(p, "=")
				value = strings.Trim(strings.TrimSpace(value), `"`)
				switch strings.TrimSpace(name) {
				case "server_no_context_takeover", "client_no_context_takeover", "client_max_window_bits":
				case "server_max_window_bits":
					if value != "15" {
						continue offers
					}
				default:
					continue offers
				}
			}
			return true
		}
	}
	return false
}

// sameOrigin accepts clients that send no Origin (not browsers) and pages of
// this server's own origin; a browser page from elsewhere may not subscribe.
func sameOrigin(r *http.Request) bool {
	origin := r.Header["Origin"]
	if len(origin) == 0 {
		return true
	}
	u, err := url.Parse(origin[0])
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// upgradeError turns a failed WebSocket handshake into a problem.
func upgradeError(status int, reason error) error {
	switch status {
	case http.StatusBadRequest:
		return errorf(engine.CodeInvalidRequest, "%v", reason)
	case http.StatusForbidden:
		return errorf(codeForbidden, "this page's origin may not subscribe to the live seat map")
	case http.StatusMethodNotAllowed:
		return errorf(codeMethodNotAllowed, "%v", reason)
	default:
		return reason
	}
}

// subscriber is one WebSocket connection of the live feed.
type subscriber struct {
	h     *Hub
	feed  *eventFeed
	group int // the index of its group in feed.groups
	conn  *websocket.Conn
	gone  chan struct{} // closed by the reader when the client's side has ended

	// The writer's own state.
	m       *seatMap // the map whose versions the client has
	version uint64   // the version the client has (the last frame sent)
}

// read discards what the client sends, keeps the read deadline moving with
// pongs and messages, and reports the end of the connection.
func (s *subscriber) read() {
	defer s.h.live.wg.Done()
	defer close(s.gone)
	c, pongWait := s.conn, s.h.cfg.pongWait
	extend := func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) }
	c.SetReadLimit(liveReadLimitBytes)
	_ = extend("")
	c.SetPongHandler(extend)
	for {
		if _, _, err := c.NextReader(); err != nil {
			return // closed by the client, by the writer, or no pong in time
		}
		_ = extend("")
	}
}

// ending is why a subscription ends: the close code to send, 0 when the
// connection can take no close frame (a write failed, or the client left).
type ending struct {
	code   int
	reason string
}

// write is the connection's one writer: it sends the first frame, then
// follows the event's frames until the connection or the server ends.
func (s *subscriber) write(since uint64, hasSince bool) {
	defer s.h.live.wg.Done()
	growStack()
	defer s.h.leave(s.feed, s.group, s)
	if end := s.serve(since, hasSince); end.code != 0 {
		s.closeWith(end)
	}
	_ = s.conn.Close()
	<-s.gone
}

// closeWith sends a close frame and gives the client closeWait to answer it.
func (s *subscriber) closeWith(end ending) {
	wait := s.h.cfg.closeWait
	msg := websocket.FormatCloseMessage(end.code, end.reason)
	if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)); err != nil {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.gone:
	case <-t.C:
	}
}

// serve runs the subscription until it ends.
func (s *subscriber) serve(since uint64, hasSince bool) ending {
	ping := time.NewTicker(s.h.cfg.pingInterval)
	defer ping.Stop()
	grp := s.feed.groups[s.group]
	fr := grp.latest.Load()
	s.m = fr.m
	if fr.unavailable {
		return ending{websocket.CloseInternalServerErr, string(actors.CodeEventUnavailable)}
	}
	if hasSince && s.m.retains(since) {
		s.version = since
	} else if end := s.sendSnapshot(); end != nil {
		return *end
	}
	for {
		if end := s.catchUp(fr); end != nil {
			return *end
		}
		fr.finished()
		select {
		case <-fr.done:
			fr = grp.latest.Load()
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.h.cfg.writeTimeout)); err != nil {
				return ending{}
			}
		case <-s.gone:
			return ending{}
		case <-s.h.live.closing:
			return goingAway
		}
	}
}

var goingAway = ending{websocket.CloseGoingAway, "server shutting down"}

// catchUp brings the client to frame fr: a snapshot when fr has a new map,
// then the delta from the client's version. Non-nil: the subscription ends.
func (s *subscriber) catchUp(fr *liveFrame) *ending {
	if fr.unavailable {
		return &ending{websocket.CloseInternalServerErr, string(actors.CodeEventUnavailable)}
	}
	if fr.m != s.m {
		s.m = fr.m
		if end := s.sendSnapshot(); end != nil {
			return end
		}
	}
	if fr.version <= s.version {
		return nil
	}
	msg := fr.msg
	if msg == nil || fr.from != s.version {
		msg = s.h.liveDelta(s.feed, s.m, s.version, fr.version)
	}
	if msg == nil {
		s.h.live.resyncs.Add(1)
		return &ending{closeResync, "resync"}
	}
	if end := s.send(msg); end != nil {
		return end
	}
	s.version = fr.version
	return nil
}

func (s *subscriber) sendSnapshot() *ending {
	snap := s.h.liveSnapshot(s.m)
	if end := s.send(snap.msg); end != nil {
		return end
	}
	s.version = snap.version
	return nil
}

// send writes one frame within writeTimeout; non-nil: the subscription
// ends. After the upgrade the HTTP server's deadlines no longer apply: each
// write sets its own.
func (s *subscriber) send(msg *websocket.PreparedMessage) *ending {
	select {
	case <-s.h.live.closing:
		return &goingAway // closeLive may have cut the write deadline short
	default:
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.h.cfg.writeTimeout)); err != nil {
		return &ending{}
	}
	if err := s.conn.WritePreparedMessage(msg); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() { // gorilla hides os.ErrDeadlineExceeded
			s.h.live.writeTimeouts.Add(1)
		}
		return &ending{} // half a frame may be out: no close frame can follow
	}
	return nil
}

// growStack grows the calling goroutine's stack to 8 KiB at once (as
// CockroachDB's util/growstack does for its hot goroutines), which faults in
// the stack memory when the subscriber connects. A subscriber's writer
// otherwise grows its stack on its first frame, in steps, each a fresh
// stack copied over: at an on-sale 5,000 writers that waited idle since they
// connected do so in the same second, and first touches of new memory cost
// this machine's VM ~20 µs a page (docs/BENCHMARKS.md, 2026-12-01: the
// server's page faults at the start of the load fell from 8,000–9,000/s to
// ~200/s). The garbage collector may shrink the stack again while the
// subscriber idles; the memory stays with the process and the next growth
// reuses it. 8 KiB, not 16: an idle subscriber's stacks stay at ~12 KiB
// before the first collection (16 KiB made it 20 KiB).
//
//go:noinline
func growStack() byte {
	var b [5 << 10]byte
	for i := range b {
		b[i] = byte(i)
	}
	return b[len(b)/2]
}

package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// newLiveEnv is newEnv with the live feed's bounds changed by tune before
// anything runs, and Server.Close among the cleanups (before the actors
// stop), as cmd/boxoffice does.
func newLiveEnv(t testing.TB, tune func(*liveConfig)) *env {
	t.Helper()
	e := newEnvWith(t, func(c *actors.Config) {
		if tune != nil {
			tune(&c.Feed.(*Hub).cfg)
		}
	})
	t.Cleanup(e.srv.Close)
	return e
}

// liveMsg is a server frame of the live feed, decoded strictly.
type liveMsg struct {
	Type    string            `json:"type"`
	From    *uint64           `json:"from"`
	Version uint64            `json:"version"`
	Seats   map[string]string `json:"seats"`
	Changes map[string]string `json:"changes"`
}

// liveClient is a subscriber that keeps the seat map it has been sent and
// checks the protocol on every frame: a snapshot or a delta whose from is
// the version it has, versions that only grow, known statuses. Once it
// starts reading (start, or the first next), a goroutine reads every frame
// as it arrives, so the server never waits on the test.
type liveClient struct {
	t       testing.TB
	conn    *websocket.Conn
	seats   map[string]string // nil until a snapshot (or given with since)
	version uint64
	frames  int // frames applied

	once sync.Once
	in   chan liveRead
	done chan struct{} // closed at cleanup: the reader stops
}

type liveRead struct {
	msg liveMsg
	err error
}

// liveURL is the ws:// address of an event's live feed; query may be "".
func (e *env) liveURL(eventID, query string) string {
	u := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/v1/events/" + eventID + "/live"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dialLive subscribes; the connection is closed at cleanup.
func (e *env) dialLive(d *websocket.Dialer, eventID, query string, header http.Header) (*liveClient, *http.Response, error) {
	e.t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	conn, res, err := d.Dial(e.liveURL(eventID, query), header)
	if err != nil {
		return nil, res, err
	}
	c := &liveClient{t: e.t, conn: conn, done: make(chan struct{})}
	e.t.Cleanup(func() {
		close(c.done)
		_ = conn.Close()
	})
	return c, res, nil
}

func (e *env) mustDialLive(eventID, query string) *liveClient {
	e.t.Helper()
	c, res, err := e.dialLive(nil, eventID, query, nil)
	if err != nil {
		e.t.Fatalf("dial %s?%s: %v (%v)", eventID, query, err, res)
	}
	c.start()
	return c
}

// start starts reading frames in the background.
func (c *liveClient) start() {
	c.once.Do(func() {
		c.in = make(chan liveRead, 4096)
		go func() {
			for {
				m, err := c.readFrame()
				select {
				case c.in <- liveRead{m, err}:
				case <-c.done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	})
}

func (c *liveClient) readFrame() (liveMsg, error) {
	var m liveMsg
	typ, data, err := c.conn.ReadMessage()
	if err != nil {
		return m, err
	}
	if typ != websocket.TextMessage {
		return m, fmt.Errorf("frame of type %d", typ)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("decode %.200s: %w", data, err)
	}
	return m, nil
}

// next returns the next frame (or the error that ended the connection),
// waiting at most 10 s.
func (c *liveClient) next() (liveMsg, error) {
	c.start()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case r := <-c.in:
		return r.msg, r.err
	case <-t.C:
		return liveMsg{}, errors.New("no frame within 10 s")
	}
}

var liveStatuses = map[string]bool{"available": true, "reserved": true, "booked": true, "blocked": true}

// apply checks m against the protocol and applies it.
func (c *liveClient) apply(m liveMsg) error {
	switch m.Type {
	case "snapshot":
		if m.From != nil || m.Changes != nil || m.Seats == nil {
			return fmt.Errorf("malformed snapshot: from %v, changes %v", m.From, m.Changes)
		}
		if m.Version < c.version {
			return fmt.Errorf("snapshot of version %d after version %d", m.Version, c.version)
		}
		for id, st := range m.Seats {
			if !liveStatuses[st] {
				return fmt.Errorf("snapshot: seat %s has status %q", id, st)
			}
		}
		c.seats = m.Seats
	case "delta":
		if m.From == nil || m.Seats != nil || m.Changes == nil {
			return fmt.Errorf("malformed delta: from %v, seats %d", m.From, len(m.Seats))
		}
		if c.seats == nil {
			return fmt.Errorf("delta %d→%d before any state", *m.From, m.Version)
		}
		if *m.From != c.version || m.Version <= *m.From {
			return fmt.Errorf("delta %d→%d applied at version %d", *m.From, m.Version, c.version)
		}
		for id, st := range m.Changes {
			if _, ok := c.seats[id]; !ok || !liveStatuses[st] {
				return fmt.Errorf("delta %d→%d: seat %q status %q", *m.From, m.Version, id, st)
			}
			c.seats[id] = st
		}
	default:
		return fmt.Errorf("frame of type %q", m.Type)
	}
	c.version = m.Version
	c.frames++
	return nil
}

// step reads and applies one frame.
func (c *liveClient) step() (liveMsg, error) {
	m, err := c.next()
	if err != nil {
		return m, err
	}
	return m, c.apply(m)
}

// until reads frames until the client has reached version v.
func (c *liveClient) until(v uint64) error {
	for c.version < v {
		if _, err := c.step(); err != nil {
			return fmt.Errorf("at version %d, waiting for %d: %w", c.version, v, err)
		}
	}
	if c.version != v {
		return fmt.Errorf("reached version %d, not %d", c.version, v)
	}
	return nil
}

// mustMatch brings c to the event's version and compares its state with
// GET seats of that version (served within a second: a body may be reused
// for up to 200 ms). The event must be at rest.
func (c *liveClient) mustMatch(e *env, eventID string) {
	e.t.Helper()
	v := e.hubVersion(eventID)
	deadline := time.Now().Add(time.Second)
	want, tag := e.seatStatuses(eventID)
	for tag != etag(v) {
		if time.Now().After(deadline) {
			e.t.Fatalf("GET seats has ETag %s a second after version %d", tag, v)
		}
		time.Sleep(20 * time.Millisecond)
		want, tag = e.seatStatuses(eventID)
	}
	if err := c.until(v); err != nil {
		e.t.Fatal(err)
	}
	if !maps.Equal(c.seats, want) {
		for id, st := range want {
			if c.seats[id] != st {
				e.t.Errorf("seat %s: live %q, seat map %q", id, c.seats[id], st)
			}
		}
		e.t.Fatalf("live state at version %d differs from GET seats", v)
	}
}

// hubVersion is the version the hub shows for an event.
func (e *env) hubVersion(eventID string) uint64 {
	e.t.Helper()
	info, ok, err := e.srv.hub.event(eventID)
	if !ok || err != nil {
		e.t.Fatalf("hub event %s: %v %v", eventID, ok, err)
	}
	return info.Version
}

// TestCaseC15: a reconnect loses nothing. A subscriber has seen version 10;
// its connection drops while A1 and A2 are held, A1 released (its hold
// expires on the clock) and A3 booked; it reconnects with since=10 and gets
// the deltas from 10 on, in order; its state then equals GET seats.
func TestCaseC15(t *testing.T) {
	e := newLiveEnv(t, nil)
	e.createEvent("c15", func(m map[string]any) {
		m["seatingPlan"] = enginetest.GridPlan(2, 12)
		m["prices"] = map[string]int64{"Standard": 5000}
		m["holdTtlSeconds"] = 60
	})
	// Move the event to version 10 with holds of other seats.
	u0, _ := e.session()
	for i := 1; e.hubVersion("c15") < 10; i++ {
		r := e.mustHold(u0, "c15", fmt.Sprintf("B%d", i)) // one record
		if e.hubVersion("c15") < 10 {
			e.do(http.MethodDelete, "/v1/reservations/"+r.ID, u0, nil).want(t, http.StatusNoContent) // one more
		}
	}
	if v := e.hubVersion("c15"); v != 10 {
		t.Fatalf("version %d, want 10", v)
	}

	sub := e.mustDialLive("c15", "")
	if m, err := sub.step(); err != nil || m.Type != "snapshot" || m.Version != 10 {
		t.Fatalf("first frame %+v, %v; want the snapshot of version 10", m, err)
	}
	sub.mustMatch(e, "c15")
	seen := maps.Clone(sub.seats)
	_ = sub.conn.Close() // the connection drops

	u1, _ := e.session()
	u2, _ := e.session()
	u3, _ := e.session()
	e.mustHold(u1, "c15", "A1")
	e.clock.Advance(30 * time.Second)
	e.mustHold(u2, "c15", "A2")
	e.clock.Advance(31 * time.Second) // A1's hold (60 s) expires, A2's does not
	e.waitSeat("c15", "A1", "available")
	r3 := e.mustHold(u3, "c15", "A3")
	e.do(http.MethodPost, "/v1/reservations/"+r3.ID+"/pay", u3, map[string]string{"paymentToken": "tok_visa"}).want(t, http.StatusOK)
	e.waitSeat("c15", "A3", "booked")

	back := e.mustDialLive("c15", "since=10")
	back.seats, back.version = seen, 10
	first, err := back.step()
	if err != nil {
		t.Fatal(err)
	}
	if first.Type != "delta" || *first.From != 10 {
		t.Fatalf("first frame after reconnecting: %s from %v, want a delta from 10", first.Type, first.From)
	}
	back.mustMatch(e, "c15")
	if got := []string{back.seats["A1"], back.seats["A2"], back.seats["A3"]}; got[0] != "available" || got[1] != "reserved" || got[2] != "booked" {
		t.Fatalf("A1, A2, A3 = %v, want available, reserved, booked", got)
	}
}

// TestLiveRandomRun: several customers hold, cancel and pay at random over
// one event while three subscribers follow: one from the start, one that
// joins midway with a snapshot, one that joins midway with since= the
// version of a seat map it read. Every delta chains onto the previous
// version, and at the end each subscriber's state is GET seats exactly.
func TestLiveRandomRun(t *testing.T) {
	// Frames every 5 ms, so the run yields many deltas however fast the
	// machine is (at the production 100 ms a fast run gives only ~3).
	e := newLiveEnv(t, func(c *liveConfig) { c.frameInterval = 5 * time.Millisecond })
	e.createEvent("random", func(m map[string]any) { m["maxSeatsPerCustomer"] = 8 })
	const customers, opsEach = 6, 80
	seats := make([]string, 0, 80)
	for _, row := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		for n := 1; n <= 10; n++ {
			seats = append(seats, fmt.Sprintf("stalls-%s-%d", row, n))
		}
	}

	first := e.mustDialLive("random", "")
	var wg sync.WaitGroup
	var granted, ops atomic.Int64
	midway := make(chan struct{})
	for i := range customers {
		tok, _ := e.session()
		rng := rand.New(rand.NewPCG(uint64(i), 15))
		wg.Go(func() {
			var mine []string // held reservation ids
			for range opsEach {
				if ops.Add(1) == customers*opsEach/2 {
					close(midway)
				}
				switch op := rng.IntN(10); {
				case op < 5 || len(mine) == 0:
					n := 1 + rng.IntN(3)
					pick := make([]string, 0, n)
					for _, k := range rng.Perm(len(seats))[:n] {
						pick = append(pick, seats[k])
					}
					if res := e.hold(tok, "random", pick...); res.status == http.StatusCreated {
						var r reservationView
						res.decode(t, &r)
						mine = append(mine, r.ID)
						granted.Add(1)
					}
				case op < 8:
					k := rng.IntN(len(mine))
					e.do(http.MethodDelete, "/v1/reservations/"+mine[k], tok, nil)
					mine = append(mine[:k], mine[k+1:]...)
				default:
					k := rng.IntN(len(mine))
					e.do(http.MethodPost, "/v1/reservations/"+mine[k]+"/pay", tok, map[string]string{"paymentToken": "tok_visa"})
					mine = append(mine[:k], mine[k+1:]...)
				}
			}
		})
	}
	<-midway
	snap := e.mustDialLive("random", "")
	read, tag := e.seatStatuses("random")
	since := e.mustDialLive("random", "since="+strings.Trim(tag, `"`))
	since.seats = read
	since.version, _ = strconv.ParseUint(strings.Trim(tag, `"`), 10, 64)

	wg.Wait()
	for _, c := range []*liveClient{first, snap, since} {
		c.mustMatch(e, "random")
	}
	if granted.Load() < 50 || first.frames < 5 {
		t.Fatalf("only %d holds granted, %d frames: the run proves little", granted.Load(), first.frames)
	}
	if since.frames == 0 || since.seats == nil {
		t.Fatal("the since= subscriber got nothing")
	}
	t.Logf("%d holds granted, final version %d; frames: %d, %d, %d", granted.Load(), first.version, first.frames, snap.frames, since.frames)
}

// hubEvent creates an event known only to the hub (no actor), whose feed
// the test drives by calling the hub as the actor would.
func hubEvent(t *testing.T, e *env, id string, version uint64) *engine.Plan {
	t.Helper()
	plan := testPlan(t)
	e.srv.hub.Reset(id, version, plan, engine.EventInfo{ID: id, Name: id, Capacity: plan.Capacity()}, make([]engine.SeatStatus, plan.Capacity()))
	return plan
}

// TestLiveCoalescing: 200 batches applied within a few milliseconds reach a
// subscriber in at most two frames (one for the first change after a quiet
// spell, one merged for the rest), the last one naming each seat once.
func TestLiveCoalescing(t *testing.T) {
	e := newLiveEnv(t, nil)
	plan := hubEvent(t, e, "burst", 1)
	c := e.mustDialLive("burst", "")
	if m, err := c.step(); err != nil || m.Type != "snapshot" {
		t.Fatalf("%+v %v", m, err)
	}
	const batches = 200
	start := time.Now()
	for v := uint64(2); v < 2+batches; v++ {
		seat := int32(v % 50) // seats change several times
		st := engine.SeatReserved
		if v%3 == 0 {
			st = engine.SeatAvailable
		}
		e.srv.hub.Apply("burst", v, []engine.SeatChange{{Seat: seat, Status: st}})
	}
	took := time.Since(start)
	if err := c.until(1 + batches); err != nil {
		t.Fatal(err)
	}
	deltas := c.frames - 1
	allowed := 2 + int(took/e.srv.hub.cfg.frameInterval)
	if deltas > allowed {
		t.Fatalf("%d batches in %v came in %d frames, want at most %d", batches, took, deltas, allowed)
	}
	for i := range 50 {
		want := "reserved"
		for v := uint64(1 + batches); v >= 2; v-- {
			if int(v%50) == i {
				if v%3 == 0 {
					want = "available"
				}
				break
			}
		}
		if got := c.seats[plan.Seats[i].ID]; got != want {
			t.Fatalf("seat %d: %q, want %q", i, got, want)
		}
	}
	t.Logf("%d batches in %v → %d delta frames", batches, took, deltas)
}

// slowDialer dials with a 4 KiB receive buffer, so that a client that does
// not read stalls the server's writes after a few kilobytes.
func slowDialer() *websocket.Dialer {
	nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: nd.DialContext, ReadBufferSize: 1024}
}

// holdMany holds n single seats from workers goroutines as fast as the
// server answers, and returns the slowest hold and the total time.
func holdMany(t *testing.T, e *env, eventID string, seats []string, workers int) (slowest, total time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := atomic.Int64{}
	start := time.Now()
	for range workers {
		tok, _ := e.session()
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(seats) {
					return
				}
				t0 := time.Now()
				res := e.hold(tok, eventID, seats[i])
				d := time.Since(t0)
				if res.status != http.StatusCreated {
					t.Errorf("hold %s: %d %s", seats[i], res.status, res.body)
					return
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return slowest, time.Since(start)
}

// TestLiveSlowSubscriber: a subscriber that stops reading while 500 holds
// go through at full speed never slows them (were Apply to wait on it, the
// holds would wait for its 10 s write deadline), a healthy subscriber keeps
// up meanwhile, and once the slow one reads again it finds its version gone
// from the ring and is closed with 4000 "resync".
func TestLiveSlowSubscriber(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		// The 500 holds roll the ring over; a healthy subscriber, sent a
		// frame every 10 ms, would have to fall 250 ms behind to drop out.
		c.ringChangesMax = 400
		c.frameInterval = 10 * time.Millisecond
		c.sendBufferBytes = 4096
	})
	e.createEvent("slow", func(m map[string]any) { m["maxSeatsPerCustomer"] = 100 })
	slow, _, err := e.dialLive(slowDialer(), "slow", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	healthy := e.mustDialLive("slow", "")
	if _, err := healthy.step(); err != nil {
		t.Fatal(err)
	}
	var seats []string
	for _, p := range testPlan(t).Seats[:500] {
		seats = append(seats, p.ID)
	}
	slowest, total := holdMany(t, e, "slow", seats, 8)
	if total > 8*time.Second || slowest > 2*time.Second {
		t.Fatalf("500 holds took %v, the slowest %v: the slow subscriber held them up", total, slowest)
	}
	healthy.mustMatch(e, "slow")

	// The slow subscriber reads again: its snapshot, then 4000.
	var frames []liveMsg
	for {
		m, err := slow.next()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != closeResync || ce.Text != "resync" {
				t.Fatalf("after %d frames: %v, want close 4000 resync", len(frames), err)
			}
			break
		}
		frames = append(frames, m)
	}
	if len(frames) == 0 || frames[0].Type != "snapshot" {
		t.Fatalf("slow subscriber's frames %v, want its snapshot first", len(frames))
	}
	if n := e.srv.hub.live.resyncs.Load(); n != 1 {
		t.Errorf("resyncs = %d, want 1", n)
	}
	t.Logf("500 holds in %v, slowest %v; slow subscriber got %d frames before 4000", total, slowest, len(frames))
}

// waitSubscribers waits (up to 5 s) until the server has n live connections.
func (e *env) waitSubscribers(n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.hub.liveSubscribers() != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d live subscribers after 5 s, want %d", e.srv.hub.liveSubscribers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stalledLiveEnv is a live env (tuned by tune) with one subscriber of a
// new event eventID that never reads: with 4 KiB socket buffers its writer
// blocks in the 1,244-seat snapshot (plain: the dialer does not offer
// permessage-deflate).
func stalledLiveEnv(t *testing.T, eventID string, tune func(*liveConfig)) *env {
	t.Helper()
	e := newLiveEnv(t, func(c *liveConfig) {
		c.sendBufferBytes = 4096
		tune(c)
	})
	e.createEvent(eventID, nil)
	if _, _, err := e.dialLive(slowDialer(), eventID, "", nil); err != nil {
		t.Fatal(err)
	}
	e.waitSubscribers(1)
	return e
}

// TestLiveWriteDeadline: a client that never reads is dropped when a write
// misses its deadline; the server's side of it ends.
func TestLiveWriteDeadline(t *testing.T) {
	e := stalledLiveEnv(t, "stall", func(c *liveConfig) { c.writeTimeout = 300 * time.Millisecond })
	e.waitSubscribers(0)
	if n := e.srv.hub.live.writeTimeouts.Load(); n != 1 {
		t.Fatalf("write timeouts = %d, want 1", n)
	}
}

// TestLiveKeepAlive: the server pings; a client that answers stays, one
// that does not (it never reads, so never answers) is dropped after
// pongWait.
func TestLiveKeepAlive(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		c.pingInterval = 50 * time.Millisecond
		c.pongWait = time.Second
	})
	hubEvent(t, e, "ping", 1)
	if _, _, err := e.dialLive(nil, "ping", "", nil); err != nil { // never reads
		t.Fatal(err)
	}
	alive, _, err := e.dialLive(nil, "ping", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pings := atomic.Int64{}
	alive.conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return alive.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	if _, err := alive.step(); err != nil { // the snapshot; from now on it reads and answers
		t.Fatal(err)
	}
	e.waitSubscribers(1) // the mute one is gone after pongWait; the answering one stays
	e.srv.hub.Apply("ping", 2, []engine.SeatChange{{Seat: 0, Status: engine.SeatBooked}})
	if err := alive.until(2); err != nil {
		t.Fatalf("the answering client: %v", err)
	}
	if pings.Load() < 5 {
		t.Fatalf("%d pings, want one every 50 ms for a second", pings.Load())
	}
}

// TestLiveSince: since= inside the ring gives deltas from it; the current
// version gives nothing until the next change; a version out of the ring,
// in the future or 0 gives a snapshot.
func TestLiveSince(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) { c.ringBatchesMax = 4 })
	plan := hubEvent(t, e, "since", 1)
	apply := func(v uint64) {
		e.srv.hub.Apply("since", v, []engine.SeatChange{{Seat: int32(v), Status: engine.SeatReserved}})
	}
	for v := uint64(2); v <= 10; v++ {
		apply(v)
	}
	// The ring keeps the batches to 7..10: versions 6..10 are served by deltas.
	for _, since := range []string{"5", "1", "0", "11", "18446744073709551615"} {
		c := e.mustDialLive("since", "since="+since)
		if m, err := c.step(); err != nil || m.Type != "snapshot" || m.Version != 10 {
			t.Fatalf("since=%s: %s %d %v, want the snapshot of 10", since, m.Type, m.Version, err)
		}
		_ = c.conn.Close()
	}
	withSeats := func(c *liveClient, version uint64) {
		c.seats, c.version = map[string]string{}, version
		for _, s := range plan.Seats {
			c.seats[s.ID] = "available" // the test checks versions, not seats
		}
	}
	for _, since := range []uint64{6, 8} {
		c := e.mustDialLive("since", "since="+strconv.FormatUint(since, 10))
		withSeats(c, since)
		if m, err := c.step(); err != nil || m.Type != "delta" || *m.From != since || m.Version != 10 {
			t.Fatalf("since=%d: %s %d %v, want the delta %d→10", since, m.Type, m.Version, err, since)
		}
		_ = c.conn.Close()
	}
	c := e.mustDialLive("since", "since=10")
	withSeats(c, 10)
	apply(11)
	if m, err := c.step(); err != nil || m.Type != "delta" || *m.From != 10 || m.Version != 11 {
		t.Fatalf("since=10: %s %d %v, want the delta 10→11 and nothing before", m.Type, m.Version, err)
	}
}

// TestLiveRefusals: what is refused before the upgrade, as problem+json.
func TestLiveRefusals(t *testing.T) {
	e := newLiveEnv(t, nil)
	hubEvent(t, e, "ok", 1)
	e.srv.hub.Unavailable("broken", errors.New("corrupt journal"))
	for _, q := range []string{"since=", "since=abc", "since=-1", "since=%2B1", "since=01", "since=1.0",
		"since=18446744073709551616", "since=1&since=2", "since=%zz", "since=1;x=2"} {
		e.do(http.MethodGet, "/v1/events/ok/live?"+q, "", nil).wantProblem(t, 400, engine.CodeInvalidRequest)
		// Malformed since comes before an unknown event (API.md's order).
		e.do(http.MethodGet, "/v1/events/nope/live?"+q, "", nil).wantProblem(t, 400, engine.CodeInvalidRequest)
	}
	e.do(http.MethodGet, "/v1/events/nope/live", "", nil).wantProblem(t, 404, engine.CodeEventNotFound)
	e.do(http.MethodGet, "/v1/events/broken/live", "", nil).wantProblem(t, 503, actors.CodeEventUnavailable)
	e.do(http.MethodGet, "/v1/events/ok/live", "", nil).wantProblem(t, 400, engine.CodeInvalidRequest) // not a WebSocket handshake

	for _, tc := range []struct {
		id, origin string
		status     int
		code       engine.Code
	}{
		{"nope", "", 404, engine.CodeEventNotFound},
		{"broken", "", 503, actors.CodeEventUnavailable},
		{"ok", "https://elsewhere.example", 403, codeForbidden},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		_, res, err := e.dialLive(nil, tc.id, "", h)
		if err == nil || res == nil {
			t.Fatalf("%s %s: dial succeeded", tc.id, tc.origin)
		}
		r := response{status: res.StatusCode, header: res.Header}
		r.body = readAll(t, res)
		r.wantProblem(t, tc.status, tc.code)
	}
	u, _ := url.Parse(e.http.URL)
	c, _, err := e.dialLive(nil, "ok", "", http.Header{"Origin": {"http://" + u.Host}})
	if err != nil {
		t.Fatalf("same-origin dial: %v", err)
	}
	if m, err := c.step(); err != nil || m.Type != "snapshot" {
		t.Fatalf("same-origin: %+v %v", m, err)
	}
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLiveResetAndUnavailable: a Reset (the event recovered) sends its
// subscribers a snapshot of the new map, then deltas from it; an event
// that becomes unavailable closes them with 1011.
func TestLiveResetAndUnavailable(t *testing.T) {
	e := newLiveEnv(t, nil)
	plan := hubEvent(t, e, "reset", 1)
	c := e.mustDialLive("reset", "")
	if _, err := c.step(); err != nil {
		t.Fatal(err)
	}
	e.srv.hub.Apply("reset", 2, []engine.SeatChange{{Seat: 0, Status: engine.SeatReserved}})
	if err := c.until(2); err != nil {
		t.Fatal(err)
	}
	statuses := make([]engine.SeatStatus, plan.Capacity())
	statuses[0], statuses[1] = engine.SeatBooked, engine.SeatBooked
	e.srv.hub.Reset("reset", 40, plan, engine.EventInfo{ID: "reset", Capacity: plan.Capacity()}, statuses)
	m, err := c.step()
	if err != nil || m.Type != "snapshot" || m.Version != 40 || m.Seats[plan.Seats[1].ID] != "booked" {
		t.Fatalf("after a reset: %+v %v, want the snapshot of 40", m.Type, err)
	}
	e.srv.hub.Apply("reset", 41, []engine.SeatChange{{Seat: 2, Status: engine.SeatBlocked}})
	if err := c.until(41); err != nil {
		t.Fatal(err)
	}
	c.mustMatch(e, "reset")

	e.srv.hub.Unavailable("reset", errors.New("corrupt journal"))
	_, err = c.next()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr || ce.Text != "event_unavailable" {
		t.Fatalf("after Unavailable: %v, want close 1011 event_unavailable", err)
	}
}

// TestLiveServerClose: Server.Close sends 1001 to every subscriber, ends
// their goroutines, does not wait out the write deadline of a stalled one,
// and later subscriptions answer 503.
func TestLiveServerClose(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) { c.sendBufferBytes = 4096 })
	hubEvent(t, e, "bye", 1)
	if _, _, err := e.dialLive(slowDialer(), "bye", "", nil); err != nil { // stalls on its snapshot
		t.Fatal(err)
	}
	var clients []*liveClient
	for range 3 {
		c := e.mustDialLive("bye", "")
		if _, err := c.step(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	closed := make(chan time.Duration)
	go func() {
		start := time.Now()
		e.srv.Close()
		closed <- time.Since(start)
	}()
	for _, c := range clients {
		_, err := c.next() // reading answers the close handshake
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("after Close: %v, want 1001", err)
		}
	}
	if took := <-closed; took > 3*time.Second {
		t.Fatalf("Close took %v: it waited for the stalled subscriber's write deadline", took)
	}
	if n := e.srv.hub.liveSubscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
	_, res, err := e.dialLive(nil, "bye", "", nil)
	if err == nil {
		t.Fatal("dial after Close succeeded")
	}
	r := response{status: res.StatusCode, header: res.Header, body: readAll(t, res)}
	r.wantProblem(t, 503, codeNotReady)
	e.srv.Close() // again: no effect
}

// TestLiveRing: the ring's bounds, the versions it retains and the merged
// changes it gives.
func TestLiveRing(t *testing.T) {
	var r deltaRing
	ch := func(seats ...int32) []engine.SeatChange {
		var out []engine.SeatChange
		for _, s := range seats {
			out = append(out, engine.SeatChange{Seat: s, Status: engine.SeatStatus(s % 4)})
		}
		return out
	}
	// Versions 5 → 7 → 8 → 12 → 13 (gaps: batches without seat changes).
	versions := []uint64{5, 7, 8, 12, 13}
	for i := 1; i < len(versions); i++ {
		r.push(ringEntry{from: versions[i-1], version: versions[i], changes: ch(int32(i), 9)}, 3, 100)
	}
	// Three batches kept: 7→8, 8→12, 12→13.
	for v, want := range map[uint64]bool{5: false, 6: false, 7: true, 8: true, 9: false, 12: true, 13: true, 14: false} {
		if got := r.retains(v, 13); got != want {
			t.Errorf("retains(%d) = %v, want %v", v, got, want)
		}
	}
	parts, ok := r.between(7, 13)
	if !ok || len(parts) != 3 {
		t.Fatalf("between(7, 13) = %v %v", parts, ok)
	}
	var mg changeMerger
	merged := mg.merge(parts, 10)
	want := ch(2, 3, 4, 9)
	if fmt.Sprint(merged) != fmt.Sprint(want) {
		t.Fatalf("merged %v, want %v", merged, want)
	}
	// The merger's stamps forget the previous merge, also when they wrap.
	for _, epoch := range []uint32{mg.epoch, math.MaxUint32} {
		mg.epoch = epoch
		parts := [][]engine.SeatChange{{{Seat: 7, Status: engine.SeatReserved}}, {{Seat: 7, Status: engine.SeatAvailable}, {Seat: 1, Status: engine.SeatBooked}}}
		want := []engine.SeatChange{{Seat: 1, Status: engine.SeatBooked}, {Seat: 7, Status: engine.SeatAvailable}} // the last status of each, by seat
		if got := mg.merge(parts, 10); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("merge after epoch %d: %v, want %v", epoch, got, want)
		}
	}
	for _, bad := range [][2]uint64{{5, 13}, {9, 13}, {8, 9}, {13, 13}, {8, 14}} {
		if _, ok := r.between(bad[0], bad[1]); ok {
			t.Errorf("between(%d, %d) succeeded", bad[0], bad[1])
		}
	}
	// The change bound drops old batches, but keeps the newest whatever its size.
	r.push(ringEntry{from: 13, version: 20, changes: ch(make([]int32, 150)...)}, 3, 100)
	if r.n != 1 || !r.retains(13, 20) || r.retains(12, 20) {
		t.Fatalf("after a big batch: %d entries", r.n)
	}
	// The buffer wraps and grows.
	var g deltaRing
	for v := uint64(1); v <= 100; v++ {
		g.push(ringEntry{from: v - 1, version: v, changes: ch(int32(v))}, 40, 1000)
	}
	if g.n != 40 || g.changes != 40 || !g.retains(60, 100) || g.retains(59, 100) {
		t.Fatalf("wrapped ring: n %d changes %d", g.n, g.changes)
	}
	if parts, ok := g.between(60, 100); !ok || len(parts) != 40 {
		t.Fatalf("between(60, 100): %d %v", len(parts), ok)
	}
}

// FuzzLiveSince: since= is accepted exactly when it is one canonical decimal
// uint64, and the version read is that number; anything else is a 400.
func FuzzLiveSince(f *testing.F) {
	for _, s := range []string{"", "since=1", "since=0", "since=18446744073709551615", "since=18446744073709551616",
		"since=01", "since=-1", "since=%2B1", "since=", "since=1&since=1", "x=1&since=7", "since=%zz", "since=1;", "since= 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, ok, err := parseLiveSince(raw)
		q, qerr := url.ParseQuery(raw)
		if err != nil {
			if engine.CodeOf(err) != engine.CodeInvalidRequest || ok {
				t.Fatalf("%q: %v %v", raw, ok, err)
			}
			if qerr == nil && len(q["since"]) == 1 && q["since"][0] == strconv.FormatUint(parseOrMax(q["since"][0]), 10) {
				t.Fatalf("%q refused: %v", raw, err)
			}
			return
		}
		if qerr != nil {
			t.Fatalf("%q accepted with a malformed query: %v", raw, qerr)
		}
		switch vals := q["since"]; {
		case !ok && len(vals) == 0:
		case ok && len(vals) == 1 && vals[0] == strconv.FormatUint(v, 10):
		default:
			t.Fatalf("%q read as %d %v", raw, v, ok)
		}
	})
}

// parseOrMax parses a decimal, or returns the largest uint64 (whose decimal
// no string that fails to parse equals).
func parseOrMax(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 1<<64 - 1
	}
	return v
}

// TestLivePacing: under a steady stream of changes, subscribers spread over
// the feed's groups each get at most one frame per frameInterval (so at most
// 10 a second in production), the groups take turns, the adaptive interval
// stays within its bounds, and every subscriber ends with the state of GET
// seats.
func TestLivePacing(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		c.frameInterval = 20 * time.Millisecond
		c.frameMax = 60 * time.Millisecond
		c.frameGroups = 4
	})
	hubEvent(t, e, "paced", 1)
	const subscribers = 10
	clients := make([]*liveClient, subscribers)
	for i := range clients {
		clients[i] = e.mustDialLive("paced", "")
		if m, err := clients[i].step(); err != nil || m.Type != "snapshot" {
			t.Fatalf("%+v %v", m, err)
		}
	}
	e.waitSubscribers(subscribers)
	e.srv.hub.mu.RLock()
	f := e.srv.hub.live.feeds["paced"]
	var sizes []int
	for _, g := range f.groups {
		sizes = append(sizes, g.members)
	}
	e.srv.hub.mu.RUnlock()
	if !slices.Equal(sizes, []int{3, 3, 2, 2}) {
		t.Fatalf("group sizes %v, want the subscribers spread evenly", sizes)
	}

	start := time.Now()
	v := uint64(1)
	for time.Since(start) < 500*time.Millisecond {
		v++
		st := engine.SeatReserved
		if v%2 == 0 {
			st = engine.SeatAvailable
		}
		e.srv.hub.Apply("paced", v, []engine.SeatChange{{Seat: int32(v % 200), Status: st}})
		time.Sleep(200 * time.Microsecond)
	}
	took := time.Since(start)
	interval := time.Duration(f.interval.Load())
	if interval < 20*time.Millisecond || interval > 60*time.Millisecond {
		t.Errorf("frame interval %v, want within [20ms, 60ms]", interval)
	}
	allowed := 2 + int(took/(20*time.Millisecond))
	for i, c := range clients {
		c.mustMatch(e, "paced")
		if deltas := c.frames - 1; deltas > allowed || deltas < 3 {
			t.Errorf("subscriber %d: %d delta frames in %v, want 3 to %d", i, deltas, took, allowed)
		}
	}
	t.Logf("%d batches in %v; frames per subscriber %d..; interval at the end %v", v-1, took, clients[0].frames, interval)
}

// TestLiveGroupsTakeTurns: with the groups' frames spread over the
// interval, two subscribers in different groups receive a change at
// different times, each at most one interval after it was applied.
func TestLiveGroupsTakeTurns(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		c.frameInterval = 200 * time.Millisecond
		c.frameMax = 200 * time.Millisecond
		c.frameGroups = 2
	})
	hubEvent(t, e, "turns", 1)
	a, b := e.mustDialLive("turns", ""), e.mustDialLive("turns", "")
	for _, c := range []*liveClient{a, b} {
		if _, err := c.step(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitSubscribers(2)
	// The first change after a quiet spell goes out at once to the group
	// whose turn it is; the other group's turn comes interval/2 later.
	e.srv.hub.Apply("turns", 2, []engine.SeatChange{{Seat: 0, Status: engine.SeatReserved}})
	applied := time.Now()
	var got [2]time.Duration
	var wg sync.WaitGroup
	for i, c := range []*liveClient{a, b} {
		wg.Go(func() {
			if err := c.until(2); err != nil {
				t.Error(err)
			}
			got[i] = time.Since(applied)
		})
	}
	wg.Wait()
	first, second := min(got[0], got[1]), max(got[0], got[1])
	if first > 60*time.Millisecond || second < 70*time.Millisecond || second > 300*time.Millisecond {
		t.Fatalf("received after %v and %v, want one at once and one about 100 ms later", first, second)
	}
}

// TestTouchReadBufferKeepsBufferedFrames: the fan-out benchmark's client
// faults in each connection's read buffer before the load (touchReadBuffer,
// which reaches into gorilla's unexported bufio.Reader). It must find the
// fields in the gorilla version in go.mod, and must not disturb frames
// already buffered: two frames arrive in one read, the first is consumed,
// the buffer is touched, and the second still reads intact.
func TestTouchReadBufferKeepsBufferedFrames(t *testing.T) {
	first, second := strings.Repeat("a", 100), strings.Repeat("b", 3000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		// One write of both frames, so that the client's first read
		// buffers both.
		var frames []byte
		for _, m := range []string{first, second} {
			frames = append(frames, 0x81, 126, byte(len(m)>>8), byte(len(m)))
			frames = append(frames, m...)
		}
		_, _ = c.NetConn().Write(frames)
		_, _, _ = c.ReadMessage() // until the client closes
	}))
	defer srv.Close()
	c, _, err := (&websocket.Dialer{ReadBufferSize: 64 << 10}).Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, m, err := c.ReadMessage(); err != nil || string(m) != first {
		t.Fatalf("first frame: %q, %v", m, err)
	}
	if err := touchReadBuffer(c); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != second {
		t.Fatalf("second frame after touchReadBuffer: %d bytes, %v", len(m), err)
	}
	if err := touchReadBuffer(c); err != nil { // an empty buffer
		t.Fatal(err)
	}
}

// TestLiveFrameBuiltOnce: a frame's delta is framed once for all its
// subscribers. gorilla's NewPreparedMessage frames it eagerly at compression
// level 0 and WritePreparedMessage looks it up by the connection's level, 1
// unless the connection sets 0, which live does: otherwise every frame was
// built a second time, on its first write.
func TestLiveFrameBuiltOnce(t *testing.T) {
	e := newLiveEnv(t, nil)
	plan := hubEvent(t, e, "once", 1)
	c := e.mustDialLive("once", "since=1")
	e.srv.hub.Apply("once", 2, []engine.SeatChange{{Seat: 3, Status: engine.SeatReserved}})
	c.seats, c.version = map[string]string{}, 1
	for _, s := range plan.Seats {
		c.seats[s.ID] = "available"
	}
	if m, err := c.step(); err != nil || m.Type != "delta" || m.Version != 2 {
		t.Fatalf("%s %d %v, want the delta 1→2", m.Type, m.Version, err)
	}
	e.srv.hub.mu.RLock()
	f := e.srv.hub.live.feeds["once"]
	e.srv.hub.mu.RUnlock()
	var sent *websocket.PreparedMessage
	for _, g := range f.groups {
		if fr := g.latest.Load(); fr.version == 2 && fr.msg != nil {
			sent = fr.msg
		}
	}
	if sent == nil {
		t.Fatal("no group's frame carries the delta 1→2")
	}
	frames := reflect.ValueOf(sent).Elem().FieldByName("frames")
	if !frames.IsValid() || frames.Kind() != reflect.Map {
		t.Fatal("websocket.PreparedMessage has no frames map any more: this test needs updating")
	}
	if n := frames.Len(); n != 1 {
		t.Fatalf("the delta was framed %d times, want 1", n)
	}
}

// TestLiveCloseCutsARestoredDeadline: Server.Close shortens every
// connection's write deadline to closeWait, but a writer that passed its
// closing check just before sets its own again (gorilla sets the deadline
// on every write), which held a shutdown for writeTimeout. Emulated here:
// once Close has shortened the deadlines (it holds the hub's lock while it
// does), the test puts a stalled subscriber's deadline back to a minute.
// Close must still end within its limit.
func TestLiveCloseCutsARestoredDeadline(t *testing.T) {
	e := stalledLiveEnv(t, "stuck", func(c *liveConfig) {
		c.writeTimeout = time.Minute
		c.closeWait = 200 * time.Millisecond
	})
	time.Sleep(100 * time.Millisecond) // the writer is blocked in the snapshot's write
	closed := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		e.srv.Close()
		closed <- time.Since(start)
	}()
	<-e.srv.hub.live.closing
	e.srv.hub.mu.Lock() // after Close has shortened the deadlines
	restored := 0
	for _, f := range e.srv.hub.live.feeds {
		for sub := range f.subs {
			if sub.conn.NetConn().SetWriteDeadline(time.Now().Add(time.Minute)) == nil {
				restored++
			}
		}
	}
	e.srv.hub.mu.Unlock()
	if restored != 1 {
		t.Fatalf("restored the deadline of %d subscribers, want 1", restored)
	}
	select {
	case took := <-closed:
		if limit := e.srv.hub.closeLimit() + time.Second; took > limit {
			t.Fatalf("Close took %v, want at most %v", took, limit)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waits after 30 s: the stalled write holds it")
	}
}

// TestLiveDeflate: a client that offers permessage-deflate (as browsers
// do) gets the feed compressed — the concert hall's snapshot and deltas in
// less than half the bytes a plain client reads — and follows it exactly
// (deltas applied in order equal GET seats); one that does not offer it
// gets the feed plain.
func TestLiveDeflate(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) { c.frameGroups = 1 }) // all three share each frame
	e.createEvent("deflate", nil)
	var clients []*liveClient
	var read []*atomic.Int64
	for i, deflate := range []bool{true, true, false} {
		n := new(atomic.Int64)
		nd := &net.Dialer{}
		d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: deflate,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := nd.DialContext(ctx, network, addr)
				return &countingConn{Conn: c, read: n}, err
			}}
		c, res, err := e.dialLive(d, "deflate", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ext := res.Header.Get("Sec-WebSocket-Extensions"); strings.Contains(ext, "permessage-deflate") != deflate {
			t.Fatalf("client %d (offers deflate: %v): the server answered extensions %q", i, deflate, ext)
		}
		c.start()
		clients = append(clients, c)
		read = append(read, n)
	}
	for _, row := range []string{"A", "B", "C", "D"} {
		tok, _ := e.session()
		var seats []string
		for n := 1; n <= 4; n++ {
			seats = append(seats, fmt.Sprintf("stalls-%s-%d", row, n))
		}
		if res := e.hold(tok, "deflate", seats...); res.status != http.StatusCreated {
			t.Fatalf("hold row %s: %d %s", row, res.status, res.body)
		}
	}
	for _, c := range clients {
		c.mustMatch(e, "deflate")
	}
	plain := read[2].Load()
	for i, n := range read[:2] {
		if got := n.Load(); got*2 > plain {
			t.Fatalf("compressing client %d read %d bytes, the plain one %d: want less than half", i, got, plain)
		}
	}
	t.Logf("bytes read: compressing %d, %d; plain %d", read[0].Load(), read[1].Load(), plain)
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestLiveDeflateOffers: permessage-deflate is negotiated only for an offer
// the server can honour (RFC 7692 7.1.2.1: a server that accepts
// server_max_window_bits=N must compress within that window, and gorilla
// always uses 32 KiB, i.e. 15 bits; an offer with an unknown parameter is
// declined); an offer it cannot honour gets the feed plain.
func TestLiveDeflateOffers(t *testing.T) {
	e := newLiveEnv(t, nil)
	e.createEvent("offers", nil)
	host := strings.TrimPrefix(e.http.URL, "http://")
	for _, tc := range []struct {
		offer string
		want  bool
	}{
		{"permessage-deflate; client_max_window_bits", true}, // Chromium's
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"permessage-deflate; server_max_window_bits=15", true},
		{`permessage-deflate; server_max_window_bits="15"`, true},
		{"permessage-deflate; server_max_window_bits=9", false},
		{"permessage-deflate; client_max_window_bits; server_max_window_bits=10", false},
		{"permessage-deflate; server_max_window_bits=9, permessage-deflate", true}, // the second offer
		{"permessage-deflate; future_parameter=1", false},
		{"x-webkit-deflate-frame", false},
		{"", false},
	} {
		conn, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := "GET /v1/events/offers/live HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		if tc.offer != "" {
			req += "Sec-WebSocket-Extensions: " + tc.offer + "\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("offer %q: %v %v", tc.offer, res, err)
		}
		ext := res.Header.Get("Sec-WebSocket-Extensions")
		var head [2]byte // the snapshot frame's first bytes: RSV1 marks it compressed
		if _, err := io.ReadFull(br, head[:]); err != nil {
			t.Fatalf("offer %q: read the snapshot: %v", tc.offer, err)
		}
		_ = conn.Close()
		got, compressed := strings.Contains(ext, "permessage-deflate"), head[0]&0x40 != 0
		if got != tc.want || compressed != tc.want {
			t.Errorf("offer %q: answered %q, snapshot compressed %v; want negotiated and compressed %v", tc.offer, ext, compressed, tc.want)
		}
	}
}

// FuzzDeflateAcceptable: any Sec-WebSocket-Extensions value is read without
// a panic, and only an offer naming permessage-deflate is accepted.
func FuzzDeflateAcceptable(f *testing.F) {
	for _, s := range []string{"permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=9, permessage-deflate",
		`permessage-deflate; server_max_window_bits="15"`, ";;,=,", "x, permessage-deflate;=;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Sec-Websocket-Extensions": {v}}
		if deflateAcceptable(h) && !strings.Contains(v, "permessage-deflate") {
			t.Fatalf("accepted %q", v)
		}
	})
}

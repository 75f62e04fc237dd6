package web

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/boxoffice/boxoffice/engine"
)

// Review (attack 2) of the live feed after growStack and the 200 ms cap.

// TestAttack2StaleGroupFrameAfterPatch (failed before join refreshed an
// empty group's frame; kept as a regression test). An operator's PATCH
// of an event during a sale makes the actor Reset the hub's seat map (a new
// seatMap object). The groups of the event's feed that have no member at
// that moment are not published to, so their latest frame still points at
// the old map. The next subscriber that joins lands in such an empty group
// (join picks the smallest) and is served from the old, frozen map: a
// snapshot of the state before the PATCH, older than what GET seats showed
// it a moment before; with since=<current version> it even goes backwards
// from the version it asked for. Only the group's next frame brings the
// new map's snapshot.
func TestAttack2StaleGroupFrameAfterPatch(t *testing.T) {
	e := newLiveEnv(t, nil)
	e.createEvent("patched", nil)
	tok, _ := e.session()

	a := e.mustDialLive("patched", "") // group 0; groups 1..15 keep the first map's frame
	if _, err := a.step(); err != nil {
		t.Fatal(err)
	}
	e.waitSubscribers(1)
	before := e.hubVersion("patched")

	e.patchEvent(testAdminToken, "patched", map[string]any{"name": "Renamed during the sale"}).want(t, http.StatusOK)
	e.mustHold(tok, "patched", "stalls-A-1", "stalls-A-2")
	a.mustMatch(e, "patched") // the member of group 0 follows the new map

	want, tag := e.seatStatuses("patched")
	v, _ := strconv.ParseUint(strings.Trim(tag, `"`), 10, 64)
	if want["stalls-A-1"] != "reserved" {
		t.Fatalf("GET seats: stalls-A-1 %q", want["stalls-A-1"])
	}

	var failures []string
	for _, query := range []string{"", "since=" + strconv.FormatUint(v, 10)} {
		b, _, err := e.dialLive(nil, "patched", query, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.start()
		if query != "" {
			b.seats, b.version = want, v
		}
		// What it has 300 ms after joining (with since=current nothing is
		// due until the next change): a snapshot may be up to a second old
		// (snapshotMaxAge) if the catch-up delta follows at once.
		deadline := time.After(300 * time.Millisecond)
		var got []string
	collect:
		for {
			select {
			case r := <-b.in:
				if r.err != nil {
					t.Fatalf("%q: %v", query, r.err)
				}
				got = append(got, fmt.Sprintf("%s of version %d", r.msg.Type, r.msg.Version))
				if err := b.apply(r.msg); err != nil {
					t.Fatalf("%q: %v", query, err)
				}
				if r.msg.Type == "snapshot" && r.msg.Version < before+1 {
					failures = append(failures, fmt.Sprintf("?%s: a snapshot of version %d, from the map before the PATCH (version %d)", query, r.msg.Version, before))
				}
			case <-deadline:
				break collect
			}
		}
		if b.version < v || b.seats["stalls-A-1"] != "reserved" {
			failures = append(failures, fmt.Sprintf("?%s (after GET seats at version %d; version before the PATCH %d): 300 ms after joining it has version %d with stalls-A-1 %q (frames: %v)",
				query, v, before, b.version, b.seats["stalls-A-1"], got))
		}
		_ = b.conn.Close()
		e.waitSubscribers(1)
	}
	if len(failures) > 0 {
		t.Fatalf("a subscriber joining an empty group after a PATCH is served the old seat map:\n%s", strings.Join(failures, "\n"))
	}
}

// TestAttack2StaleUnavailableGroupRefusesJoiners (failed before join refreshed
// an empty group's frame; a regression test now. The bug was only
// reachable through the hub's API: in production Unavailable is final).
// Unavailable then Reset (the hub's contract allows it: "a Reset brings a
// new map") while one subscriber's group is published only after the
// Reset: that subscriber never sees the outage and stays, so the feed
// stays, and the emptied groups keep an "unavailable" frame. Every new
// subscriber is put into such an empty group and closed at once with 1011
// event_unavailable, although GET seats answers 200, until the survivor
// leaves.
func TestAttack2StaleUnavailableGroupRefusesJoiners(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		c.frameInterval = time.Second
		c.frameMax = time.Second
		c.frameGroups = 2
	})
	plan := hubEvent(t, e, "flap", 1)
	a := e.mustDialLive("flap", "") // group 0
	if _, err := a.step(); err != nil {
		t.Fatal(err)
	}
	x := e.mustDialLive("flap", "") // group 1
	if _, err := x.step(); err != nil {
		t.Fatal(err)
	}
	e.waitSubscribers(2)

	// Group 0's turn is at once, group 1's half an interval later.
	e.srv.hub.Unavailable("flap", errors.New("corrupt journal"))
	if _, err := a.next(); err == nil {
		t.Fatal("group 0's subscriber was not closed")
	}
	e.srv.hub.Reset("flap", 50, plan, engine.EventInfo{ID: "flap", Name: "flap", Capacity: plan.Capacity()}, make([]engine.SeatStatus, plan.Capacity()))
	if err := x.until(50); err != nil { // group 1 went straight to the new map
		t.Fatal(err)
	}
	e.waitSubscribers(1)
	e.do(http.MethodGet, "/v1/events/flap/seats", "", nil).want(t, http.StatusOK)

	refused := 0
	for range 5 {
		b, _, err := e.dialLive(nil, "flap", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := b.next()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.CloseInternalServerErr {
			refused++
		} else if err != nil || m.Type != "snapshot" {
			t.Fatalf("new subscriber: %+v %v", m.Type, err)
		}
		_ = b.conn.Close()
		e.waitSubscribers(1)
	}
	if refused > 0 {
		t.Fatalf("%d of 5 new subscribers of an available event were closed with 1011 event_unavailable", refused)
	}
}

// TestAttack2WriterStacksBeforeGC (failed with growStack at 16 KiB; passes
// at 8 KiB: a regression test now. The 20 KiB per subscriber
// target is not met between connecting and the GC cycles that undo
// growStack). It measures the goroutine stacks each idle subscriber costs
// right after it connects (no collection in between: GC is off while they
// connect), then after one, two and three collections. The GC halves a
// stack that uses less than a quarter of it, so an idle writer's 16 KiB is
// back to a few KiB after two cycles — and BenchmarkLiveFanout's KiB/sub
// (9.5, "stacks 6.0 KiB after two GCs") is taken after two forced GCs, so it
// never sees the grown stacks; those same two GCs run before its load, so
// the writers do not start the load with grown stacks either.
func TestAttack2WriterStacksBeforeGC(t *testing.T) {
	e := newLiveEnv(t, nil)
	hubEvent(t, e, "stacks", 1)
	const n = 300
	// BenchmarkLiveFanout's server heap per idle subscriber (docs/BENCHMARKS.md:
	// "9.5 KiB (heap 3.5 ...)"); the heap is not measured here (the clients
	// share this process).
	const heapPerSubKiB = 3.5
	stack := func(gcs int) uint64 {
		for range gcs {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse
	}
	base := stack(3)
	gcWas := debug.SetGCPercent(-1)
	for range n { // clients that never read: no client goroutine
		if _, _, err := e.dialLive(nil, "stacks", "", nil); err != nil {
			debug.SetGCPercent(gcWas)
			t.Fatal(err)
		}
	}
	e.waitSubscribers(n)
	time.Sleep(300 * time.Millisecond) // the snapshots are written (they fit the socket buffers)
	fresh := stack(0)
	debug.SetGCPercent(gcWas)
	per := func(v uint64) float64 { return (float64(v) - float64(base)) / n / 1024 }
	gc1 := stack(1)
	gc2 := stack(1)
	gc3 := stack(1)
	t.Logf("goroutine stacks per idle subscriber: just connected %.1f KiB; after 1 GC %.1f KiB, 2 GCs %.1f KiB, 3 GCs %.1f KiB",
		per(fresh), per(gc1), per(gc2), per(gc3))
	// A change after the collections: every writer sends one small delta.
	e.srv.hub.Apply("stacks", 2, []engine.SeatChange{{Seat: 0, Status: engine.SeatReserved}})
	time.Sleep(500 * time.Millisecond)
	t.Logf("after one delta frame to every subscriber (no GC): %.1f KiB", per(stack(0)))
	if total := per(fresh) + heapPerSubKiB; total > 20 {
		t.Errorf("an idle subscriber costs %.1f KiB of stacks + ~%.1f KiB of heap = %.1f KiB until the GC shrinks the writer's stack (target ≤ 20 KiB); the benchmark reports %.1f KiB of stacks after its two GCs",
			per(fresh), heapPerSubKiB, total, per(gc2))
	}
}

// TestAttack2ChurnPacingAndChain: with the production pacing (100 ms,
// 16 groups, cap 200 ms), a stream of changes at ~2,000 batches/s while
// 40 subscribers join and leave at random (half with since= a version they
// read from the hub): every subscriber's frames chain (a snapshot or a
// delta from the version it has), it gets at most one frame per 100 ms
// (plus its first snapshot and the catch-up delta right after it; counted
// at receipt, with slack), and the ones still connected at the end match
// GET seats. Holds.
func TestAttack2ChurnPacingAndChain(t *testing.T) {
	e := newLiveEnv(t, nil)
	plan := hubEvent(t, e, "churn", 1)
	var version atomic.Uint64
	version.Store(1)
	stop := make(chan struct{})
	var applier sync.WaitGroup
	applier.Go(func() {
		for v := uint64(2); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			st := engine.SeatReserved
			if v%3 == 0 {
				st = engine.SeatAvailable
			}
			e.srv.hub.Apply("churn", v, []engine.SeatChange{{Seat: int32(v % uint64(plan.Capacity())), Status: st}, {Seat: int32(v * 7 % uint64(plan.Capacity())), Status: engine.SeatBooked}})
			version.Store(v)
			time.Sleep(500 * time.Microsecond)
		}
	})

	type result struct {
		frames int
		took   time.Duration
		err    error
	}
	const rounds = 40
	results := make(chan result, rounds)
	var keep []*liveClient
	var keepMu sync.Mutex
	var wg sync.WaitGroup
	for i := range rounds {
		wg.Go(func() {
			time.Sleep(time.Duration(i*37%400) * time.Millisecond)
			query := ""
			var seats map[string]string
			var since uint64
			if i%2 == 1 {
				// since= a version whose state we know: GET seats and its ETag.
				var tag string
				seats, tag = e.seatStatuses("churn")
				since, _ = strconv.ParseUint(strings.Trim(tag, `"`), 10, 64)
				query = "since=" + strconv.FormatUint(since, 10)
			}
			c, _, err := e.dialLive(nil, "churn", query, nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			if seats != nil {
				c.seats, c.version = seats, since
			}
			start := time.Now()
			life := time.Duration(300+i*53%900) * time.Millisecond
			var at []time.Time
			for time.Since(start) < life {
				if _, err := c.step(); err != nil {
					results <- result{err: fmt.Errorf("subscriber %d (%s): %w", i, query, err)}
					return
				}
				at = append(at, time.Now())
			}
			// Pacing: at most 10 frames a second, measured at receipt (so
			// with some slack for the client's own scheduling): no 1 s
			// window holds more than 13 frames.
			for k := range at {
				n := 0
				for j := k; j < len(at) && at[j].Sub(at[k]) < time.Second; j++ {
					n++
				}
				if n > 13 {
					results <- result{err: fmt.Errorf("subscriber %d: %d frames within a second", i, n)}
					return
				}
			}
			if i%4 == 0 {
				keepMu.Lock()
				keep = append(keep, c)
				keepMu.Unlock()
			} else {
				_ = c.conn.Close()
			}
			results <- result{frames: c.frames, took: time.Since(start)}
		})
	}
	wg.Wait()
	close(stop)
	applier.Wait()
	close(results)
	total := 0
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		total += r.frames
		if limit := 3 + int(r.took/(100*time.Millisecond)); r.frames > limit {
			t.Errorf("%d frames in %v, want at most %d", r.frames, r.took, limit)
		}
	}
	for _, c := range keep {
		c.mustMatch(e, "churn")
	}
	t.Logf("final version %d; %d frames over %d subscribers; %d kept to the end", version.Load(), total, rounds, len(keep))
}

// TestAttack2DisconnectMidFrame: clients that read part of the snapshot
// (a 4 KiB receive buffer against a ~40 KiB snapshot, the server's send
// buffer 4 KiB) and then vanish, by a close or by a TCP reset: the server
// notices at once, not after the 10 s write deadline, and counts no write
// timeout. Holds.
func TestAttack2DisconnectMidFrame(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) { c.sendBufferBytes = 4096 })
	hubEvent(t, e, "cut", 1)
	const n = 10
	for i := range n {
		c, _, err := e.dialLive(slowDialer(), "cut", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		// Read the first bytes of the snapshot frame, then go.
		_, r, err := c.conn.NextReader()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if tc, ok := c.conn.NetConn().(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0) // a reset, not a FIN
			}
		}
		_ = c.conn.Close()
	}
	start := time.Now()
	e.waitSubscribers(0)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the server took %v to notice %d clients gone mid-frame", took, n)
	}
	if w := e.srv.hub.live.writeTimeouts.Load(); w != 0 {
		t.Fatalf("%d write timeouts for clients that left", w)
	}
}

// TestAttack2CloseDuringChurn: Server.Close while clients keep dialling,
// some reading, some never reading (stalled on a 4 KiB buffer), some with
// since=: Close returns in about closeWait, every subscriber is gone, every
// dial after it is refused with 503, and (TestMain's goleak) no goroutine
// is left. Holds.
func TestAttack2CloseDuringChurn(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) {
		c.sendBufferBytes = 4096
		c.frameInterval = 10 * time.Millisecond
	})
	hubEvent(t, e, "bye2", 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := uint64(2); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			e.srv.hub.Apply("bye2", v, []engine.SeatChange{{Seat: int32(v % 500), Status: engine.SeatStatus(v % 3)}})
			time.Sleep(time.Millisecond)
		}
	})
	var dialled, refused atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				d := (*websocket.Dialer)(nil)
				if (w+k)%3 == 0 {
					d = slowDialer()
				}
				query := ""
				if k%2 == 1 {
					query = "since=" + strconv.FormatUint(e.srv.hub.lookup("bye2").version0(), 10)
				}
				c, res, err := e.dialLive(d, "bye2", query, nil)
				if err != nil {
					if res != nil && res.StatusCode == http.StatusServiceUnavailable {
						refused.Add(1)
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				dialled.Add(1)
				if d == nil {
					c.start()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	closed := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		e.srv.Close()
		closed <- time.Since(start)
	}()
	var took time.Duration
	select {
	case took = <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Server.Close hangs")
	}
	time.Sleep(200 * time.Millisecond) // dials keep coming after Close
	close(stop)
	wg.Wait()
	if n := e.srv.hub.liveSubscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
	if took > 3*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if refused.Load() == 0 {
		t.Fatal("no dial was refused after Close")
	}
	t.Logf("%d subscriptions before Close; Close took %v; %d refused after", dialled.Load(), took, refused.Load())
}

// version0 reads a seat map's version under its lock.
func (m *seatMap) version0() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}

// TestAttack2DeltaCachePinnedByEmptyGroups (failed before publish ignored
// empty groups; a regression test now. A performance bug, same
// root as TestAttack2StaleGroupFrameAfterPatch). publish drops cached
// deltas that end before every group's latest frame, but the groups
// without members are never published to, so their latest frame (from
// when the feed started) pins that bound: with fewer subscribers than
// groups nothing is ever dropped, the cache reaches liveDeltaCacheMax (64)
// within a few seconds and stays full of dead entries, and from then on
// every delta is encoded uncached (per subscriber, not once per (from,
// version)).
func TestAttack2DeltaCachePinnedByEmptyGroups(t *testing.T) {
	e := newLiveEnv(t, func(c *liveConfig) { c.frameInterval = 5 * time.Millisecond; c.frameMax = 5 * time.Millisecond })
	hubEvent(t, e, "pinned", 1)
	c := e.mustDialLive("pinned", "") // one subscriber: groups 1..15 stay empty
	if _, err := c.step(); err != nil {
		t.Fatal(err)
	}
	e.waitSubscribers(1)
	v := uint64(1)
	for range 300 {
		v++
		e.srv.hub.Apply("pinned", v, []engine.SeatChange{{Seat: int32(v % 300), Status: engine.SeatStatus(v % 3)}})
		time.Sleep(time.Millisecond)
	}
	if err := c.until(v); err != nil {
		t.Fatal(err)
	}
	e.srv.hub.mu.RLock()
	f := e.srv.hub.live.feeds["pinned"]
	e.srv.hub.mu.RUnlock()
	f.cacheMu.Lock()
	n, oldest := len(f.cache), v
	for k := range f.cache {
		oldest = min(oldest, k.to)
	}
	f.cacheMu.Unlock()
	t.Logf("version %d, subscriber at %d after %d frames; delta cache %d entries, the oldest ending at %d", v, c.version, c.frames, n, oldest)
	if n >= liveDeltaCacheMax {
		t.Fatalf("the delta cache is full (%d) of deltas ending as early as version %d while the only subscriber is at %d: nothing is ever dropped", n, oldest, c.version)
	}
}

package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
	"github.com/boxoffice/boxoffice/persistence"
)

// withFeed gives the system a seat feed and a quiet logger.
func withFeed(feed actors.SeatFeed) func(*actors.Config) {
	return func(c *actors.Config) { c.Feed, c.Logger = feed, quietLogger() }
}

// goleak checks that every goroutine the tests start is gone when they end:
// event actors' worker and committer goroutines, timers, and protoactor's
// own. The one exception, by name: protoactor's dead-letter log throttle
// (actor.NewThrottleWithLogger) starts a goroutine that outlives the actor
// system by up to its one-second period after a dead letter (for example a
// timer that fires after its actor stopped). It ends by itself.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottleWithLogger.func1"))
}

var t0 = time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)

func definition(id string, plan json.RawMessage) engine.EventDefinition {
	return engine.EventDefinition{
		ID: id, Name: "Test " + id, StartsAt: t0.Add(30 * 24 * time.Hour), OnSaleAt: t0.Add(-time.Hour),
		HoldTTLSeconds: 60, MaxSeatsPerCustomer: 4, Currency: "EUR",
		Prices: map[string]int64{"Standard": 5000}, SeatingPlan: plan,
	}
}

type env struct {
	fs    vfs.FS
	store *persistence.Store
	clock *actors.ManualClock
	sys   *actors.System
}

// start opens a store on fs and starts an actor system on it (snapshots
// every 7 records); opts may change the system's configuration.
func start(t *testing.T, fs vfs.FS, clock *actors.ManualClock, opts ...func(*actors.Config)) *env {
	t.Helper()
	store, err := persistence.Open("db", persistence.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	cfg := actors.Config{Journal: store, Clock: clock, SnapshotEveryRecords: 7, Payments: newFakeProvider()}
	for _, o := range opts {
		o(&cfg)
	}
	sys, err := actors.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{fs: fs, store: store, clock: clock, sys: sys}
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.sys != nil {
		_ = e.sys.Close(context.Background())
		e.sys = nil
	}
	if e.store != nil {
		_ = e.store.Close()
		e.store = nil
	}
}

func code(err error) engine.Code { return engine.CodeOf(err) }

func TestHoldPayCancelAndRecover(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := actors.NewManualClock(t0)
	e := start(t, fs, clock)
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(2, 10))); code(err) != engine.CodeEventExists {
		t.Fatalf("second create: got %v, want event_exists", err)
	}
	r1, err := e.sys.Hold(ctx, "ev1", "u1", []string{"A1", "A2"})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Status != engine.StatusHeld || !r1.ExpiresAt.Equal(t0.Add(time.Minute)) || r1.TotalCents != 10000 {
		t.Fatalf("hold: got %+v", r1)
	}
	if _, err := e.sys.Hold(ctx, "ev1", "u2", []string{"A2", "A3"}); code(err) != engine.CodeSeatUnavailable {
		t.Fatalf("contended hold: got %v, want seat_unavailable", err)
	}
	if _, err := e.sys.Reservation(ctx, "u2", r1.ID); code(err) != engine.CodeReservationNotFound {
		t.Fatalf("other customer's reservation: got %v", err)
	}
	paid, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
	if err != nil || paid.Status != engine.StatusBooked || paid.BookingID == "" {
		t.Fatalf("pay: got %+v, %v", paid, err)
	}
	if err := e.sys.Cancel(ctx, "u1", r1.ID); code(err) != engine.CodeAlreadyBooked {
		t.Fatalf("cancel booked: got %v", err)
	}
	r2, err := e.sys.Hold(ctx, "ev1", "u2", []string{"B1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sys.Pay(ctx, "u2", r2.ID, "tok_chargeDeclined"); code(err) != engine.CodePaymentDeclined {
		t.Fatalf("declined: got %v", err)
	}
	r3, err := e.sys.Hold(ctx, "ev1", "u3", []string{"B5"})
	if err != nil {
		t.Fatal(err)
	}
	// The expiry timer fires on the manual clock: r2 and r3 lapse.
	clock.Advance(61 * time.Second)
	waitFor(t, func() bool {
		info, err := e.sys.Event(ctx, "ev1")
		return err == nil && info.Counts.Reserved == 0
	})
	got, err := e.sys.Reservation(ctx, "u3", r3.ID)
	if err != nil || got.Status != engine.StatusReleased || got.ReleaseReason != engine.ReasonExpired {
		t.Fatalf("after expiry: got %+v, %v", got, err)
	}
	r4, err := e.sys.Hold(ctx, "ev1", "u4", []string{"B9"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := e.sys.Event(ctx, "ev1")

	// Restart on the same store: everything acknowledged is there.
	e.stop()
	e2 := start(t, fs, clock)
	after, err := e2.sys.Event(ctx, "ev1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Counts != before.Counts || after.Version != before.Version {
		t.Fatalf("after restart: counts %+v v%d, want %+v v%d", after.Counts, after.Version, before.Counts, before.Version)
	}
	if got, err := e2.sys.Reservation(ctx, "u1", r1.ID); err != nil || got.Status != engine.StatusBooked {
		t.Fatalf("booking after restart: %+v, %v", got, err)
	}
	// A hold that lapses while the process is down is expired at recovery.
	e2.stop()
	clock.Advance(2 * time.Minute)
	e3 := start(t, fs, clock)
	if got, err := e3.sys.Reservation(ctx, "u4", r4.ID); err != nil || got.Status != engine.StatusReleased {
		t.Fatalf("lapsed hold after restart: %+v, %v", got, err)
	}
	info, _ := e3.sys.Event(ctx, "ev1")
	if info.Counts.Reserved != 0 || info.Counts.Booked != 2 {
		t.Fatalf("counts after lapse: %+v", info.Counts)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// TestConcurrentHoldsOneWinner races many customers for the same seats; the
// actor serialises them, so each seat is won once.
func TestConcurrentHoldsOneWinner(t *testing.T) {
	ctx := context.Background()
	e := start(t, vfs.NewMem(), actors.NewManualClock(t0))
	if _, err := e.sys.CreateEvent(ctx, definition("ev", enginetest.GridPlan(1, 4))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]string{}
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			seat := fmt.Sprintf("A%d", i%4+1)
			r, err := e.sys.Hold(ctx, "ev", fmt.Sprintf("u%d", i), []string{seat})
			if err == nil {
				mu.Lock()
				if prev, dup := won[seat]; dup {
					t.Errorf("seat %s held by %s and %s", seat, prev, r.ID)
				}
				won[seat] = r.ID
				mu.Unlock()
			} else if code(err) != engine.CodeSeatUnavailable {
				t.Errorf("hold: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if len(won) != 4 {
		t.Fatalf("got %d seats won, want 4", len(won))
	}
}

// panickyFeed panics on its first Apply: a bug in the actor's own code path.
type panickyFeed struct {
	mu       sync.Mutex
	panicked bool
	resets   int
}

func (f *panickyFeed) Reset(string, uint64, *engine.Plan, engine.EventInfo, []engine.SeatStatus) {
	f.mu.Lock()
	f.resets++
	f.mu.Unlock()
}

func (f *panickyFeed) Apply(string, uint64, []engine.SeatChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.panicked {
		f.panicked = true
		panic("feed bug")
	}
}

func (f *panickyFeed) Unavailable(string, error) {}

// TestPanicRestartRecoversFromJournal: a panic restarts the event actor with
// empty state (protoactor's supervision); it recovers from the journal in
// Started, answers the callers caught in the panic, and goes on selling.
func TestPanicRestartRecoversFromJournal(t *testing.T) {
	ctx := context.Background()
	feed := &panickyFeed{}
	sys := start(t, vfs.NewMem(), actors.NewManualClock(t0), withFeed(feed)).sys
	if _, err := sys.CreateEvent(ctx, definition("ev", enginetest.GridPlan(1, 10))); err != nil {
		t.Fatal(err)
	}
	// The first hold's batch is durable, then publishing it panics: the
	// caller hears "not acknowledged" (a durable, unacknowledged hold is
	// allowed), never silence.
	_, err := sys.Hold(ctx, "ev", "u1", []string{"A1"})
	if code(err) != actors.CodeStorageUnavailable {
		t.Fatalf("hold during the panic: got %v, want storage_unavailable", err)
	}
	// The restarted actor recovered the durable hold from the journal.
	mine, err := sys.Reservations(ctx, "u1", "ev")
	if err != nil || len(mine) != 1 || mine[0].Status != engine.StatusHeld {
		t.Fatalf("after restart: %+v, %v", mine, err)
	}
	if _, err := sys.Hold(ctx, "ev", "u2", []string{"A1"}); code(err) != engine.CodeSeatUnavailable {
		t.Fatalf("A1 after restart: got %v, want seat_unavailable", err)
	}
	if _, err := sys.Hold(ctx, "ev", "u2", []string{"A2"}); err != nil {
		t.Fatalf("hold after restart: %v", err)
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if feed.resets < 2 {
		t.Fatalf("the seat map was reset %d times, want a reset after the restart", feed.resets)
	}
}

// TestDirectoryStartsActorsOnDemand: an event in the journal that no actor
// owns yet gets one on its first request.
func TestDirectoryStartsActorsOnDemand(t *testing.T) {
	ctx := context.Background()
	e := start(t, vfs.NewMem(), actors.NewManualClock(t0))
	_, recs, err := engine.CreateEvent(definition("late", enginetest.GridPlan(1, 3)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Append("late", 1, recs); err != nil {
		t.Fatal(err)
	}
	info, err := e.sys.Event(ctx, "late")
	if err != nil || info.Capacity != 3 {
		t.Fatalf("on-demand event: %+v, %v", info, err)
	}
	if _, err := e.sys.Event(ctx, "missing"); code(err) != engine.CodeEventNotFound {
		t.Fatalf("unknown event: %v", err)
	}
}

// TestSnapshotsKeepComing: the event's one snapshot buffer comes back from
// the snapshot writer, so snapshots go on being taken as the journal grows
// (every 7 records here), and a restart recovers from the latest one.
func TestSnapshotsKeepComing(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := actors.NewManualClock(t0)
	e := start(t, fs, clock)
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(10, 20))); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		r, err := e.sys.Hold(ctx, "ev1", fmt.Sprint("u", i), []string{fmt.Sprintf("%c%d", 'A'+i%10, 1+i/10)})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := e.sys.Cancel(ctx, fmt.Sprint("u", i), r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	last, err := e.store.LastSeq("ev1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec, err := e.store.Load("ev1")
		if err != nil {
			t.Fatal(err)
		}
		if rec.SnapshotSeq+30 >= last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the latest snapshot is at seq %d of %d: snapshots stopped", rec.SnapshotSeq, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.stop()
	e = start(t, fs, clock)
	for i := range 150 {
		rs, err := e.sys.Reservations(ctx, fmt.Sprint("u", i), "ev1")
		if err != nil || len(rs) != 1 {
			t.Fatalf("after recovery u%d has %d reservations, %v", i, len(rs), err)
		}
		if want := map[bool]engine.ReservationStatus{true: engine.StatusReleased, false: engine.StatusHeld}[i%2 == 0]; rs[0].Status != want {
			t.Fatalf("after recovery u%d's reservation is %s, want %s", i, rs[0].Status, want)
		}
	}
}

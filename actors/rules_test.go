package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// TestConcurrentBestAvailable: 200 customers ask for the best 2 seats of a
// 300-seat plan at once. The event actor chooses and holds in one step:
// every winner holds a pair of adjacent seats no one else holds, every loser
// gets no_adjacent_seats, and when the dust settles no pair is left — so no
// loser was refused while one was.
func TestConcurrentBestAvailable(t *testing.T) {
	ctx := context.Background()
	e := start(t, vfs.NewMem(), actors.NewManualClock(t0))
	def := definition("pairs", enginetest.AislePlan(15))
	def.HoldTTLSeconds = 600
	if _, err := e.sys.CreateEvent(ctx, def); err != nil {
		t.Fatal(err)
	}
	const customers = 200
	var wg sync.WaitGroup
	barrier := make(chan struct{})
	results := make([]engine.ReservationView, customers)
	errs := make([]error, customers)
	for i := range customers {
		wg.Go(func() {
			<-barrier
			results[i], errs[i] = e.sys.HoldBest(ctx, "pairs", fmt.Sprintf("u%d", i), "", engine.BestAvailable{Quantity: 2})
		})
	}
	close(barrier)
	wg.Wait()
	held := map[string]int{}
	winners := 0
	for i, err := range errs {
		if err != nil {
			if code(err) != engine.CodeNoAdjacentSeats {
				t.Fatalf("customer %d: %v", i, err)
			}
			continue
		}
		winners++
		r := results[i]
		if len(r.Seats) != 2 || !enginetest.AisleNeighbours(r.Seats[0], r.Seats[1]) || r.Status != engine.StatusHeld {
			t.Fatalf("customer %d holds %+v", i, r)
		}
		for _, s := range r.Seats {
			if prev, dup := held[s]; dup {
				t.Fatalf("seat %s held by customers %d and %d", s, prev, i)
			}
			held[s] = i
		}
	}
	// No pair is left: every seat not held has no free neighbour.
	for r := 0; r < 15; r++ {
		row := string(rune('A' + r))
		for n := 1; n < 20; n++ {
			a, b := fmt.Sprintf("%s-%d", row, n), fmt.Sprintf("%s-%d", row, n+1)
			_, ha := held[a]
			_, hb := held[b]
			if enginetest.AisleNeighbours(a, b) && !ha && !hb {
				t.Fatalf("%d winners, %d refused, yet %s and %s are both free", winners, customers-winners, a, b)
			}
		}
	}
	info, err := e.sys.Event(ctx, "pairs")
	if err != nil || info.Counts.Reserved != 2*winners {
		t.Fatalf("event: %+v, %v; want %d seats reserved", info.Counts, err, 2*winners)
	}
	if winners < 120 || winners == customers {
		t.Fatalf("%d winners: a 300-seat plan of 10-seat runs holds 120–150 pairs", winners)
	}
	t.Logf("%d pairs held, %d customers refused, %d seats left single", winners, customers-winners, info.Counts.Available)
	// Once no pair is left, one more customer is refused too.
	if _, err := e.sys.HoldBest(ctx, "pairs", "late", "", engine.BestAvailable{Quantity: 2}); code(err) != engine.CodeNoAdjacentSeats {
		t.Fatalf("late customer: %v", err)
	}
}

// recordingFeed keeps the last read model each event was reset with.
type recordingFeed struct {
	mu    sync.Mutex
	infos map[string]engine.EventInfo
}

func (f *recordingFeed) Reset(id string, _ uint64, _ *engine.Plan, info engine.EventInfo, _ []engine.SeatStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.infos[id] = info
}
func (f *recordingFeed) Apply(string, uint64, []engine.SeatChange) {}
func (f *recordingFeed) Unavailable(string, error)                 {}

func (f *recordingFeed) info(id string) engine.EventInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.infos[id]
}

// TestUpdateEventJournaled: an operator's change is durable (it survives a
// restart, also from a snapshot), reaches the seat feed before the operator
// hears of it, and cancelling releases the holds.
func TestUpdateEventJournaled(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clock := actors.NewManualClock(t0)
	e := start(t, fs, clock) // snapshots every 7 records
	if _, err := e.sys.CreateEvent(ctx, definition("ev", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	r1, err := e.sys.Hold(ctx, "ev", "u1", []string{"A1", "A2"})
	if err != nil {
		t.Fatal(err)
	}
	prevent := engine.OrphanPrevent
	info, err := e.sys.UpdateEvent(ctx, "ev", engine.EventPatch{Name: ptr("Renamed"), MaxSeatsPerCustomer: ptr(2), OrphanSeats: &prevent})
	if err != nil || info.Name != "Renamed" || info.MaxSeatsPerCustomer != 2 || info.OrphanSeats != engine.OrphanPrevent {
		t.Fatalf("update: %+v, %v", info, err)
	}
	if _, err := e.sys.UpdateEvent(ctx, "ev", engine.EventPatch{HoldTTLSeconds: ptr(0)}); code(err) != engine.CodeInvalidRequest {
		t.Fatalf("invalid update: %v", err)
	}
	if _, err := e.sys.UpdateEvent(ctx, "nope", engine.EventPatch{Name: ptr("x")}); code(err) != engine.CodeEventNotFound {
		t.Fatalf("update of an unknown event: %v", err)
	}
	// The new limit and rule apply at once.
	if _, err := e.sys.Hold(ctx, "ev", "u1", []string{"B1"}); code(err) != engine.CodeLimitExceeded {
		t.Fatalf("hold past the new limit: %v", err)
	}
	if _, err := e.sys.Hold(ctx, "ev", "u2", []string{"B2"}); code(err) != engine.CodeOrphanSeat {
		t.Fatalf("hold stranding B1: %v", err)
	}
	// A re-hold over the actors: same seats, a replacement.
	clock.Advance(10 * time.Second)
	r2, err := e.sys.Hold(ctx, "ev", "u1", []string{"A1", "A2"})
	if err != nil || r2.ID == r1.ID || !r2.ExpiresAt.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("re-hold: %+v, %v", r2, err)
	}
	for i := 0; i < 10; i++ { // past a snapshot (every 7 records)
		if err := e.sys.Block(ctx, "ev", []string{"B10"}); err != nil {
			t.Fatal(err)
		}
		if err := e.sys.Unblock(ctx, "ev", []string{"B10"}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := e.sys.Event(ctx, "ev")
	e.stop()
	e2 := start(t, fs, clock)
	after, err := e2.sys.Event(ctx, "ev")
	if err != nil || after.Name != "Renamed" || after.MaxSeatsPerCustomer != 2 || after.OrphanSeats != engine.OrphanPrevent ||
		after.Version != before.Version || after.Counts != before.Counts {
		t.Fatalf("after restart: %+v, %v", after, err)
	}
	// Cancel: the hold is released, nothing more can be held, the change
	// survives another restart.
	info, err = e2.sys.UpdateEvent(ctx, "ev", engine.EventPatch{Status: ptr(engine.EventCancelled)})
	if err != nil || info.Status != engine.EventCancelled || info.Counts.Reserved != 0 {
		t.Fatalf("cancel: %+v, %v", info, err)
	}
	if got, err := e2.sys.Reservation(ctx, "u1", r2.ID); err != nil || got.Status != engine.StatusReleased || got.ReleaseReason != engine.ReasonCancelled {
		t.Fatalf("held reservation after cancel: %+v, %v", got, err)
	}
	if _, err := e2.sys.HoldBest(ctx, "ev", "u3", "", engine.BestAvailable{Quantity: 1}); code(err) != engine.CodeEventCancelled {
		t.Fatalf("best available after cancel: %v", err)
	}
	e2.stop()
	e3 := start(t, fs, clock)
	if info, err := e3.sys.Event(ctx, "ev"); err != nil || info.Status != engine.EventCancelled {
		t.Fatalf("after the second restart: %+v, %v", info, err)
	}
}

// TestUpdateEventFeedsReadModel: the seat feed has the changed read model
// by the time UpdateEvent returns (the web layer serves events from it).
func TestUpdateEventFeedsReadModel(t *testing.T) {
	ctx := context.Background()
	feed := &recordingFeed{infos: map[string]engine.EventInfo{}}
	sys := start(t, vfs.NewMem(), actors.NewManualClock(t0), withFeed(feed)).sys
	if _, err := sys.CreateEvent(ctx, definition("ev", enginetest.GridPlan(1, 10))); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Hold(ctx, "ev", "u1", []string{"A1"}); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(time.Hour)
	info, err := sys.UpdateEvent(ctx, "ev", engine.EventPatch{SalesEndAt: &end, Name: ptr("Moved")})
	if err != nil {
		t.Fatal(err)
	}
	got := feed.info("ev")
	if got.Name != "Moved" || !got.SalesEndAt.Equal(end) || got.Version != info.Version {
		t.Fatalf("feed read model %+v, want the update at version %d", got, info.Version)
	}
	// A change to nothing journals nothing: the version stays.
	again, err := sys.UpdateEvent(ctx, "ev", engine.EventPatch{Name: ptr("Moved")})
	if err != nil || again.Version != info.Version {
		t.Fatalf("no-op update: %+v, %v", again, err)
	}
}

// TestHoldBestIdempotent: a best-available hold retried with its
// Idempotency-Key gets its first reservation back, seats included; the key
// with another quantity is idempotency_key_reused.
func TestHoldBestIdempotent(t *testing.T) {
	ctx := context.Background()
	e := start(t, vfs.NewMem(), actors.NewManualClock(t0))
	if _, err := e.sys.CreateEvent(ctx, definition("ev", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	first, err := e.sys.HoldBest(ctx, "ev", "u1", "key-1", engine.BestAvailable{Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.sys.HoldBest(ctx, "ev", "u1", "key-1", engine.BestAvailable{Quantity: 2})
	if err != nil || again.ID != first.ID || !slices.Equal(again.Seats, first.Seats) {
		t.Fatalf("retry: %+v, %v; first %+v", again, err, first)
	}
	if _, err := e.sys.HoldBest(ctx, "ev", "u1", "key-1", engine.BestAvailable{Quantity: 3}); code(err) != actors.CodeIdempotencyKeyReused {
		t.Fatalf("other quantity: %v", err)
	}
	info, _ := e.sys.Event(ctx, "ev")
	if info.Counts.Reserved != 2 {
		t.Fatalf("%d seats reserved, want 2", info.Counts.Reserved)
	}
}

func ptr[T any](v T) *T { return &v }

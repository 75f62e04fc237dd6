package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// TestStorageFaultRecovers: while the WAL cannot be written, the event
// actor acknowledges nothing (503 storage_unavailable); once the storage
// works again it recovers by itself — the store closed and reopened, the
// event reloaded from the journal — without a process restart, and every
// acknowledged hold is still there.
func TestStorageFaultRecovers(t *testing.T) {
	ctx := context.Background()
	// A disk that takes no writes (reads still work).
	broken := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	clock := actors.NewManualClock(t0)
	e := start(t, errorfs.Wrap(vfs.NewMem(), broken), clock, func(c *actors.Config) { c.Logger = quietLogger() })
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	acked, err := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	if err != nil {
		t.Fatal(err)
	}

	broken.On()
	if _, err := e.sys.Hold(ctx, "ev1", "u2", []string{"A2"}); code(err) != actors.CodeStorageUnavailable {
		t.Fatalf("hold with a failing WAL: %v, want storage_unavailable", err)
	}
	// While it stays broken, retries keep failing and nothing is acknowledged.
	clock.Advance(time.Second)
	if _, err := e.sys.Hold(ctx, "ev1", "u3", []string{"A3"}); code(err) != actors.CodeStorageUnavailable {
		t.Fatalf("hold while still broken: %v, want storage_unavailable", err)
	}

	broken.Off()
	var again engine.ReservationView
	eventually(t, "recovery without a restart", func() bool {
		clock.Advance(time.Second) // the actor retries its recovery every second
		again, err = e.sys.Hold(ctx, "ev1", "u4", []string{"A4"})
		return err == nil
	})
	if v, err := e.sys.Reservation(ctx, "u1", acked.ID); err != nil || v.Status != engine.StatusHeld {
		t.Fatalf("acknowledged hold after the fault: %+v %v", v, err)
	}
	if v, err := e.sys.Reservation(ctx, "u4", again.ID); err != nil || v.Status != engine.StatusHeld {
		t.Fatalf("hold after recovery: %+v %v", v, err)
	}
	// And it is durable: a restart on the same store finds both.
	e.sys.Close(ctx)
	sys, err := actors.Start(ctx, actors.Config{Journal: e.store, Clock: clock, Payments: newFakeProvider(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.sys = sys
	for cust, id := range map[string]string{"u1": acked.ID, "u4": again.ID} {
		if v, err := sys.Reservation(ctx, cust, id); err != nil || v.Status != engine.StatusHeld {
			t.Fatalf("after a restart, %s: %+v %v", id, v, err)
		}
	}
}

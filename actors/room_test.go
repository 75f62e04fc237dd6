package actors_test

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// TestWaitingRoomFairness: 10,000 customers join before onSaleAt; at
// onSaleAt the event actor draws with a seed from crypto/rand that the
// journal keeps; the admission order equals the permutation reproduced
// from that journaled seed; customers who join after onSaleAt are admitted
// in arrival order after them.
func TestWaitingRoomFairness(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 joins through the actor system; skipped with -short")
	}
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := start(t, vfs.NewMem(), clock, func(c *actors.Config) { c.SnapshotEveryRecords, c.Logger = 1_000_000_000, quietLogger() })
	def := definition("fair", enginetest.GridPlan(100, 110))
	def.OnSaleAt = t0.Add(30 * time.Second) // they join just before: nobody misses a poll
	def.WaitingRoom = &engine.WaitingRoom{Enabled: true, AdmitPerSecond: 100_000}
	if _, err := e.sys.CreateEvent(ctx, def); err != nil {
		t.Fatal(err)
	}
	const early, late = 10_000, 5
	var wg sync.WaitGroup
	next := make(chan int, early)
	for i := range early {
		next <- i
	}
	close(next)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if tv, err := e.sys.QueueJoin(ctx, "fair", fmt.Sprintf("c%05d", i)); err != nil || tv.Status != engine.TicketPreQueue {
					t.Errorf("join %d: %+v %v", i, tv, err)
					return
				}
			}
		})
	}
	wg.Wait()
	clock.Set(def.OnSaleAt) // the next room tick draws and admits
	eventually(t, "the draw", func() bool {
		clock.Advance(time.Second)
		info, _ := e.sys.Event(ctx, "fair")
		return info.Version > early+2
	})
	for i := range late {
		if _, err := e.sys.QueueJoin(ctx, "fair", fmt.Sprintf("late%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)

	// Read the journal: joins (visitor numbers in journal order), the draw,
	// the admissions.
	var joined []string // visitor number → customer
	var seed [32]byte
	drawn := -1
	var admitted []uint32
	eventually(t, "every admission", func() bool {
		rec, err := e.store.Load("fair")
		if err != nil {
			t.Fatal(err)
		}
		joined, admitted, drawn = nil, nil, -1
		for _, r := range rec.Tail {
			if r.Type != engine.RecordRoom {
				continue
			}
			rr, err := engine.RoomRecordOf(r)
			if err != nil {
				t.Fatal(err)
			}
			switch rr.Type {
			case engine.RoomRecordJoined:
				joined = append(joined, rr.CustomerID)
			case engine.RoomRecordDrawn:
				seed, drawn = rr.Seed, int(rr.Count)
			case engine.RoomRecordAdmitted:
				admitted = append(admitted, rr.Visitors...)
			}
		}
		clock.Advance(time.Second)
		return len(admitted) >= early+late
	})
	if drawn != early || seed == [32]byte{} {
		t.Fatalf("draw of %d visitors with seed %x", drawn, seed)
	}
	// The permutation, reproduced independently: Fisher–Yates from the
	// last position down, each index drawn from ChaCha8(seed) by Lemire's
	// unbiased multiply-shift (engine.Room.Draw documents it).
	want := make([]uint32, early)
	for i := range want {
		want[i] = uint32(i)
	}
	src := rand.NewChaCha8(seed)
	for i := early - 1; i > 0; i-- {
		m := uint64(i + 1)
		hi, lo := bits.Mul64(src.Uint64(), m)
		for lo < -m%m {
			hi, lo = bits.Mul64(src.Uint64(), m)
		}
		want[i], want[hi] = want[hi], want[i]
	}
	for i := range late {
		want = append(want, uint32(early+i))
	}
	if !slices.Equal(admitted[:early+late], want) {
		t.Fatalf("admission order differs from the journaled draw: first %v, want %v", admitted[:8], want[:8])
	}
	for i := range late {
		if joined[early+i] != fmt.Sprintf("late%d", i) {
			t.Fatalf("visitor %d is %s, want late%d", early+i, joined[early+i], i)
		}
	}
}

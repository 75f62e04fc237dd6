package actors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// BenchmarkEventActorHolds measures one hot event: the 48,568-seat stadium,
// real Pebble on disk with synced commits, 256 concurrent callers, each its
// own customer, each looping "hold 1–4 random seats, then cancel that hold if
// it was granted". Half the seats are blocked first, so that about half the
// random picks are refused and the event stays about half full. Every
// decision is answered only after its batch is durable.
//
// Metrics: decisions/s (holds granted + refused), records/fsync (journal
// records per synced commit), granted/s.
func BenchmarkEventActorHolds(b *testing.B) {
	plan, err := os.ReadFile("../testdata/venues/harbour-stadium.json")
	if err != nil {
		b.Fatal(err)
	}
	store, err := persistence.Open(b.TempDir(), persistence.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	sys, err := actors.Start(ctx, actors.Config{Journal: store, Logger: quietLogger(), Payments: newFakeProvider()})
	if err != nil {
		b.Fatal(err)
	}
	defer sys.Close(ctx)
	def := definition("stadium", plan)
	def.Prices = map[string]int64{"Floor": 15000, "Lower Bowl": 9500, "Club": 18000, "Upper Bowl": 5500, "Accessible": 9500}
	def.HoldTTLSeconds = 600
	def.OnSaleAt = time.Now().Add(-time.Hour)
	def.StartsAt = time.Now().Add(30 * 24 * time.Hour)
	info, err := sys.CreateEvent(ctx, def)
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := engine.ParsePlan(plan)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, len(parsed.Seats))
	for i, s := range parsed.Seats {
		ids[i] = s.ID
	}
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Perm(len(ids))
	var half []string
	for _, i := range perm[:len(ids)/2] {
		half = append(half, ids[i])
	}
	for len(half) > 0 {
		n := min(1000, len(half))
		if err := sys.Block(ctx, "stadium", half[:n]); err != nil {
			b.Fatal(err)
		}
		half = half[n:]
	}
	_ = info

	var granted, refused, callers atomic.Int64
	batches0, records0 := sys.Stats()
	b.SetParallelism(128) // × GOMAXPROCS (2) = 256 callers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := callers.Add(1)
		customer := fmt.Sprintf("bench-%d", c)
		r := rand.New(rand.NewPCG(uint64(c), 7))
		seats := make([]string, 0, 4)
		for pb.Next() {
			seats = seats[:0]
			n := 1 + r.IntN(4)
			for len(seats) < n {
				id := ids[r.IntN(len(ids))]
				dup := false
				for _, s := range seats {
					dup = dup || s == id
				}
				if !dup {
					seats = append(seats, id)
				}
			}
			res, err := sys.Hold(ctx, "stadium", customer, seats)
			switch engine.CodeOf(err) {
			case "":
				granted.Add(1)
				if err := sys.Cancel(ctx, customer, res.ID); err != nil {
					b.Error(err)
					return
				}
			case engine.CodeSeatUnavailable:
				refused.Add(1)
			default:
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	batches, records := sys.Stats()
	// Cancels are decisions too, but the target counts holds: report both.
	holds := float64(granted.Load() + refused.Load())
	b.ReportMetric(holds/elapsed.Seconds(), "decisions/s")
	b.ReportMetric((holds+float64(granted.Load()))/elapsed.Seconds(), "commands/s")
	b.ReportMetric(float64(granted.Load())/elapsed.Seconds(), "granted/s")
	if batches > batches0 {
		b.ReportMetric(float64(records-records0)/float64(batches-batches0), "records/fsync")
	}
}

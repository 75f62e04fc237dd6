package actors_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// stadiumJournal writes a journal of at least n records for the 48,568-seat
// stadium into store: holds of 1–4 random seats by many customers, about a
// third paid, a third cancelled, the rest left to expire. With snapshotEvery
// > 0 it saves a snapshot every snapshotEvery records, as the event actor
// does.
func stadiumJournal(tb testing.TB, store *persistence.Store, n int, snapshotEvery int) time.Time {
	plan, err := os.ReadFile("../testdata/venues/harbour-stadium.json")
	if err != nil {
		tb.Fatal(err)
	}
	def := definition("stadium", plan)
	def.Prices = map[string]int64{"Floor": 15000, "Lower Bowl": 9500, "Club": 18000, "Upper Bowl": 5500, "Accessible": 9500}
	now := t0
	ev, recs, err := engine.CreateEvent(def, now)
	if err != nil {
		tb.Fatal(err)
	}
	seats := ev.Plan().Seats
	rng := rand.New(rand.NewPCG(3, 4))
	var pending []engine.Record
	lastSnap := uint64(1)
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := store.Append("stadium", pending[0].Seq, pending); err != nil {
			tb.Fatal(err)
		}
		pending = pending[:0]
		if snapshotEvery > 0 && ev.Seq()-lastSnap >= uint64(snapshotEvery) {
			if err := store.SaveSnapshot("stadium", ev.Seq(), ev.MarshalSnapshot()); err != nil {
				tb.Fatal(err)
			}
			lastSnap = ev.Seq()
		}
	}
	pending = append(pending, recs...)
	for i := 0; ev.Seq() < uint64(n); i++ {
		now = now.Add(50 * time.Millisecond)
		k := 1 + rng.IntN(4)
		ids := make([]string, 0, k)
		for len(ids) < k {
			ids = append(ids, seats[rng.IntN(len(seats))].ID)
		}
		cust := fmt.Sprintf("c%d", rng.IntN(20000))
		res := fmt.Sprintf("r%d", i)
		out, got, err := ev.Hold(now, engine.HoldRequest{ReservationID: res, CustomerID: cust, SeatIDs: ids})
		pending = append(pending, out...)
		if err == nil {
			res = got // a re-hold may answer with the customer's reservation
			switch rng.IntN(3) {
			case 0:
				out, att, err := ev.BeginPayment(now, cust, res, "tok_visa")
				pending = append(pending, out...)
				if err == nil {
					out, _ = ev.ConfirmPayment(now, res, att, "b"+res, engine.PaymentEvidence{})
					pending = append(pending, out...)
				}
			case 1:
				out, _ := ev.Cancel(now, cust, res)
				pending = append(pending, out...)
			}
		}
		if len(pending) >= 1000 {
			flush()
		}
	}
	flush()
	return now
}

// BenchmarkStadiumRecovery measures how long an event actor takes to recover
// the stadium from a 200,000-record journal: with no snapshot (all records
// replayed) and with snapshots at the default interval (20,000 records).
func BenchmarkStadiumRecovery(b *testing.B) {
	for _, tc := range []struct {
		name          string
		snapshotEvery int
		records       int
	}{
		{"no-snapshot", 0, 200_000},
		{"snapshot-every-20000", 20_000, 200_000},
		// The worst case of one snapshot per 100,000 records: a snapshot
		// and a tail of 99,990 records.
		{"snapshot-every-100000-worst", 100_000, 199_990},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			store, err := persistence.Open(dir, persistence.Options{Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			now := stadiumJournal(b, store, tc.records, tc.snapshotEvery)
			last, _ := store.LastSeq("stadium")
			if err := store.Close(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				store, err := persistence.Open(dir, persistence.Options{Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				sys, err := actors.Start(context.Background(), actors.Config{
					Journal: store, Logger: quietLogger(), Clock: actors.NewManualClock(now),
					SnapshotEveryRecords: max(tc.snapshotEvery, 1_000_000), Payments: newFakeProvider(),
				})
				if err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				info, err := sys.Event(context.Background(), "stadium")
				if err != nil || info.Version < last {
					b.Fatalf("recovered %+v, %v; want version ≥ %d", info.Version, err, last)
				}
				b.ReportMetric(float64(elapsed.Milliseconds()), "ms/recovery")
				b.StopTimer()
				_ = sys.Close(context.Background())
				_ = store.Close()
				b.StartTimer()
			}
		})
	}
}

package engine

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkEngineHold measures the decision rate of one event on the
// 48,568-seat stadium, half of it held. One op: one of 256 customers asks
// for 1–4 random seats; a granted hold is cancelled again, so the event stays
// about half full. decisions/s counts every command decided (holds and
// cancels); granted/op is the share of holds granted.
func BenchmarkEngineHold(b *testing.B) {
	def := venueDef(b, "harbour-stadium.json", MaxSeatsPerCustomerMax, HoldTTLSecondsMax)
	ev, _, err := CreateEvent(def, t0)
	if err != nil {
		b.Fatal(err)
	}
	seats := ev.Plan().Seats
	rng := rand.New(rand.NewPCG(1, 2))
	now := at(1) // constant: nothing expires during the run
	perm := rng.Perm(len(seats))
	for i := 0; i+4 <= len(seats)/2; i += 4 {
		req := HoldRequest{ReservationID: "pre-" + strconv.Itoa(i), CustomerID: "pre-" + strconv.Itoa(i)}
		for _, s := range perm[i : i+4] {
			req.SeatIDs = append(req.SeatIDs, seats[s].ID)
		}
		if _, _, err := ev.Hold(now, req); err != nil {
			b.Fatal(err)
		}
	}
	customers := make([]string, 256)
	for i := range customers {
		customers[i] = "c" + strconv.Itoa(i)
	}
	var decisions, granted, holds int
	ids := make([]string, 0, 4)
	idx := make([]int, 0, 4)
	i := 0
	for b.Loop() {
		ids, idx = ids[:0], idx[:0]
		for n := 1 + rng.IntN(4); len(idx) < n; {
			s := rng.IntN(len(seats))
			if !containsInt(idx, s) {
				idx = append(idx, s)
				ids = append(ids, seats[s].ID)
			}
		}
		cust := customers[i&255]
		res := "h" + strconv.Itoa(i)
		i++
		_, _, err := ev.Hold(now, HoldRequest{ReservationID: res, CustomerID: cust, SeatIDs: ids})
		decisions++
		holds++
		if err == nil {
			granted++
			if _, err := ev.Cancel(now, cust, res); err != nil {
				b.Fatal(err)
			}
			decisions++
		}
	}
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(granted)/float64(holds), "granted/op")
	if err := ev.CheckInvariants(time.Time{}); err != nil {
		b.Fatal(err)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// journalEntry is one record as the journal stores it: seq, type, payload.
type journalEntry struct {
	seq     uint64
	typ     RecordType
	payload []byte
}

var (
	replayJournalOnce sync.Once
	replayJournal     []journalEntry
)

// stadiumJournal produces a journal of n records from a sale on the stadium:
// customers hold 1–4 seats; of the granted holds some are paid and booked,
// some fail payment, some are cancelled, the rest expire.
func stadiumJournal(b *testing.B, n int) []journalEntry {
	replayJournalOnce.Do(func() {
		def := venueDef(b, "harbour-stadium.json", 8, 60)
		ev, recs, err := CreateEvent(def, t0)
		if err != nil {
			b.Fatal(err)
		}
		seats := ev.Plan().Seats
		rng := rand.New(rand.NewPCG(3, 4))
		nowMs := t0.UnixMilli()
		type live struct{ res, cust string }
		var open []live
		next := 0
		for len(recs) < n {
			nowMs += int64(rng.IntN(100))
			now := time.UnixMilli(nowMs)
			var out []Record
			switch k := rng.IntN(10); {
			case k < 6 || len(open) == 0:
				cust := "c" + strconv.Itoa(rng.IntN(20_000))
				res := "r" + strconv.Itoa(next)
				next++
				var ids []string
				for m := 1 + rng.IntN(4); len(ids) < m; {
					id := seats[rng.IntN(len(seats))].ID
					if !containsStr(ids, id) {
						ids = append(ids, id)
					}
				}
				var err error
				out, _, err = ev.Hold(now, HoldRequest{ReservationID: res, CustomerID: cust, SeatIDs: ids})
				if err == nil {
					open = append(open, live{res, cust})
				}
			case k < 9:
				j := rng.IntN(len(open))
				l := open[j]
				open[j] = open[len(open)-1]
				open = open[:len(open)-1]
				switch rng.IntN(10) {
				case 0, 1, 2: // cancel
					out, _ = ev.Cancel(now, l.cust, l.res)
				case 3, 4, 5, 6, 7: // pay and book
					r1, attempt, err := ev.BeginPayment(now, l.cust, l.res, "tok_visa")
					out = r1
					if err == nil && attempt > 0 {
						r2, _ := ev.ConfirmPayment(now, l.res, attempt, "b-"+l.res, PaymentEvidence{})
						out = append(out, r2...)
					}
				default: // payment declined; the hold then lapses
					r1, attempt, err := ev.BeginPayment(now, l.cust, l.res, "tok_visa")
					out = r1
					if err == nil && attempt > 0 {
						r2, _ := ev.FailPayment(now, l.res, attempt, PaymentEvidence{})
						out = append(out, r2...)
					}
				}
			default:
				out = ev.Tick(now)
			}
			recs = append(recs, out...)
		}
		// The journal must replay to the live state, or the benchmark
		// measures nothing useful.
		if string(replayRecords(b, recs).MarshalSnapshot()) != string(ev.MarshalSnapshot()) {
			b.Fatal("the journal does not replay to the live state")
		}
		for _, r := range recs {
			replayJournal = append(replayJournal, journalEntry{r.Seq, r.Type, r.AppendPayload(nil)})
		}
	})
	if len(replayJournal) < n {
		b.Fatalf("journal has %d records, want %d", len(replayJournal), n)
	}
	return replayJournal[:n]
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// BenchmarkReplay measures recovery: rebuilding the stadium event from a
// 200,000-record journal (hold/pay/cancel/expire workload). "decode+apply"
// includes the EventCreated record (parsing the 4.8 MB plan) and decoding
// every payload; "apply" only the Apply calls.
func BenchmarkReplay(b *testing.B) {
	const records = 200_000
	journal := stadiumJournal(b, records)
	decodeAll := func() []Record {
		out := make([]Record, len(journal))
		for i, j := range journal {
			r, err := DecodePayload(j.seq, j.typ, j.payload)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = r
		}
		return out
	}
	b.Run("decode+apply", func(b *testing.B) {
		var ev *Event
		for b.Loop() {
			created, err := DecodePayload(journal[0].seq, journal[0].typ, journal[0].payload)
			if err != nil {
				b.Fatal(err)
			}
			if ev, err = NewEvent(created); err != nil {
				b.Fatal(err)
			}
			for _, j := range journal[1:] {
				r, err := DecodePayload(j.seq, j.typ, j.payload)
				if err != nil {
					b.Fatal(err)
				}
				if err := ev.Apply(r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*records)/b.Elapsed().Seconds(), "records/s")
		if ev.Seq() != records {
			b.Fatalf("replayed to seq %d", ev.Seq())
		}
	})
	b.Run("apply", func(b *testing.B) {
		recs := decodeAll()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ev, err := NewEvent(recs[0])
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for _, r := range recs[1:] {
				if err := ev.Apply(r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*(records-1))/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkSnapshotStadium measures MarshalSnapshot of the stadium, half of
// it held by 6,000 reservations and ReleasedRetainMax released reservations
// retained, with ids as long as the server's (26-character reservation ids,
// 31-character session customer ids): the pause a snapshot costs the event
// actor — into a fresh buffer, and into the previous snapshot's buffer as
// the event actor does.
func BenchmarkSnapshotStadium(b *testing.B) {
	def := venueDef(b, "harbour-stadium.json", MaxSeatsPerCustomerMax, HoldTTLSecondsMax)
	ev, _, err := CreateEvent(def, t0)
	if err != nil {
		b.Fatal(err)
	}
	seats := ev.Plan().Seats
	now := at(1)
	resID := func(p string, i int) string { return fmt.Sprintf("%s%025d", p, i) }
	custID := func(i int) string { return fmt.Sprintf("anon-%026d", i) }
	for i := 0; i < ReleasedRetainMax; i++ {
		id := resID("x", i)
		if _, _, err := ev.Hold(now, HoldRequest{ReservationID: id, CustomerID: custID(i % 5000), SeatIDs: []string{seats[i%len(seats)].ID}}); err != nil {
			b.Fatal(err)
		}
		if _, err := ev.Cancel(now, custID(i%5000), id); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i+4 <= len(seats)/2; i += 4 {
		req := HoldRequest{ReservationID: resID("h", i), CustomerID: custID(5000 + i)}
		for _, s := range seats[i : i+4] {
			req.SeatIDs = append(req.SeatIDs, s.ID)
		}
		if _, _, err := ev.Hold(now, req); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("fresh", func(b *testing.B) {
		var n int
		for b.Loop() {
			n = len(ev.MarshalSnapshot())
		}
		b.ReportMetric(float64(n), "bytes")
	})
	b.Run("reused", func(b *testing.B) {
		buf := ev.MarshalSnapshot()
		for b.Loop() {
			buf = ev.AppendSnapshot(buf[:0])
		}
		b.ReportMetric(float64(len(buf)), "bytes")
	})
}

// BenchmarkBestAvailable measures one best-available decision on the
// 48,568-seat stadium with 0, 50 and 95% of its seats sold, scattered seat
// by seat at random, and with a quarter sold so that every run of free
// seats is 3 long (or 1): then every pair strands a seat, the worst case
// for finding one that does not. One op: HoldBest for 2 or 4 seats (or 2
// of the 88 Accessible seats), then Cancel of that hold, so the level stays
// put; the cancel and the bookkeeping of the released reservation are part
// of the time.
func BenchmarkBestAvailable(b *testing.B) {
	def := venueDef(b, "harbour-stadium.json", 4, HoldTTLSecondsMax)
	for _, level := range []string{"0%", "50%", "95%", "runs-of-3"} {
		ev, _, err := CreateEvent(def, t0)
		if err != nil {
			b.Fatal(err)
		}
		now := at(1)
		p := ev.Plan()
		var sell []string
		switch level {
		case "runs-of-3":
			for _, sg := range p.segments {
				for j := range sg.count {
					if j%4 == 3 || sg.count%4 == 2 && j == sg.count-1 {
						sell = append(sell, p.Seats[sg.first+j].ID)
					}
				}
			}
		default:
			sold, _ := strconv.Atoi(level[:len(level)-1])
			rng := rand.New(rand.NewPCG(5, uint64(sold)))
			for _, i := range rng.Perm(len(p.Seats))[:len(p.Seats)*sold/100] {
				sell = append(sell, p.Seats[i].ID)
			}
		}
		for i, id := range sell {
			res := "s" + strconv.Itoa(i)
			if _, _, err := ev.Hold(now, HoldRequest{ReservationID: res, CustomerID: res, SeatIDs: []string{id}}); err != nil {
				b.Fatal(err)
			}
		}
		next := 0 // reservation ids stay unique across runs of the sub-benchmarks
		for _, want := range []BestAvailable{{Quantity: 2}, {Quantity: 4}, {Quantity: 2, Category: "Accessible"}} {
			name := fmt.Sprintf("sold=%s/quantity=%d", level, want.Quantity)
			if want.Category != "" {
				name += "/category=" + want.Category
			}
			b.Run(name, func(b *testing.B) {
				ops, refused := 0, 0
				for b.Loop() {
					id := "b" + strconv.Itoa(next)
					next++
					ops++
					_, err := ev.HoldBest(now, HoldBestRequest{ReservationID: id, CustomerID: id, BestAvailable: want})
					if err != nil {
						if CodeOf(err) != CodeNoAdjacentSeats {
							b.Fatal(err)
						}
						refused++
						continue
					}
					if _, err := ev.Cancel(now, id, id); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(refused)/float64(ops), "refused/op")
			})
		}
		if err := ev.CheckInvariants(time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

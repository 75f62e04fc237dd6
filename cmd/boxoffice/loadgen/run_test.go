package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeConfig is a small sale against a fake server.
func fakeConfig(target string) Config {
	cfg := DefaultConfig()
	cfg.Target, cfg.EventID, cfg.AdminToken = target, fakeEvent, "admin"
	cfg.Buyers = 60
	cfg.ArrivalOver = 200 * time.Millisecond
	cfg.Think = 10 * time.Millisecond
	cfg.PayShare, cfg.CancelShare, cfg.AbandonShare = 0.9, 0.1, 0
	cfg.Connections = 8
	return cfg
}

// TestRunWaitingRoom: with a room, every buyer queues before holding,
// polls no sooner than pollAfterSeconds, holds with its admission token,
// and buyers who reach the front after the sell-out are told sold out.
func TestRunWaitingRoom(t *testing.T) {
	f, url := newFakeServer(t, 4) // 40 seats for 60 buyers
	f.room = &fakeRoom{pollAfter: 150 * time.Millisecond, admitAfterPoll: 2, tickets: map[string]*fakeTicket{}}
	cfg := fakeConfig(url)
	cfg.PayShare, cfg.CancelShare = 0.5, 0.5
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK || !rep.SoldOut {
		t.Fatalf("audit %+v, sold out %v", rep.Audit, rep.SoldOut)
	}
	f.mu.Lock()
	early, without, leaves := f.earlyPolls, f.holdsWithoutAdmission, f.leaves
	f.mu.Unlock()
	if early != 0 || without != 0 {
		t.Errorf("%d polls sooner than pollAfterSeconds, %d holds without an admission token", early, without)
	}
	// Admitted buyers who end without a booking (here: they cancel) leave
	// the room, so that it can admit the next.
	if n := rep.Buyers.Outcomes[OutcomeCancelled]; leaves < n || n == 0 || rep.Latency["queueLeave"].Count != int64(leaves) {
		t.Errorf("%d leaves for %d cancelled buyers (latency count %d)", leaves, n, rep.Latency["queueLeave"].Count)
	}
	if rep.UnexpectedErrors != 0 {
		t.Errorf("unexpected errors: %v", rep.ErrorsByCode)
	}
	wr := rep.WaitingRoom
	if !wr.Used || wr.Joined == 0 || wr.Admitted == 0 || wr.MaxQueueLength == 0 {
		t.Errorf("waiting room %+v", wr)
	}
	for _, ep := range []string{"queueJoin", "queuePoll", "hold", "pay"} {
		if rep.Latency[ep].Count == 0 {
			t.Errorf("no %s latency: %+v", ep, rep.Latency)
		}
	}
	if rep.Buyers.Outcomes[OutcomeSoldOut] == 0 {
		t.Errorf("outcomes %v: nobody saw the sell-out", rep.Buyers.Outcomes)
	}
}

// TestRunRoomNotSupported: an event that claims a room on a server without
// the queue endpoints: the buyers go straight to the hold and the report
// says why.
func TestRunRoomNotSupported(t *testing.T) {
	f, url := newFakeServer(t, 4)
	f.claimRoomOnly = true
	rep, err := Run(context.Background(), fakeConfig(url))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK || rep.Bookings == 0 {
		t.Fatalf("audit %+v, bookings %d", rep.Audit, rep.Bookings)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "no waiting room") {
		t.Errorf("notes %q do not say the room was missing", rep.Notes)
	}
}

// TestRunOpenLoop: latency is measured from when a request was meant to be
// sent, not from when a busy generator got round to it (no coordinated
// omission). One connection, a server that takes 20 ms per request, 30
// buyers arriving at once: the last is answered after about 600 ms, and
// that is its latency.
func TestRunOpenLoop(t *testing.T) {
	f, url := newFakeServer(t, 10)
	f.delay = 20 * time.Millisecond
	cfg := fakeConfig(url)
	cfg.Buyers, cfg.Arrival, cfg.Connections = 30, ArrivalBurst, 1
	cfg.EventPage, cfg.Customers, cfg.MaxAttempts = false, 30, 1
	cfg.PayShare, cfg.CancelShare, cfg.AbandonShare = 0, 0, 1
	cfg.HandPickedShare = 1
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hold := rep.Latency["hold"]
	if hold.Count != 30 {
		t.Fatalf("holds %d, want 30", hold.Count)
	}
	// The i-th request waits for i before it: p50 ≈ 300 ms, max ≈ 600 ms.
	if hold.Max < 25*20 || hold.P50 < 10*20 {
		t.Errorf("hold latency p50 %.1f ms, max %.1f ms: the time queued in the generator is missing", hold.P50, hold.Max)
	}
	if rep.SendDelay.Max < 20*20 {
		t.Errorf("send delay max %.1f ms, want ≥ 400 ms", rep.SendDelay.Max)
	}
	if rep.HoldDecisions != 30 || rep.GrantedHolds+rep.RefusedHolds != 30 {
		t.Errorf("decisions %d (granted %d, refused %d)", rep.HoldDecisions, rep.GrantedHolds, rep.RefusedHolds)
	}
}

// TestRunInterrupt: cancelling the context stops arrivals, lets requests
// in flight finish, and still returns an audited report of the sale so far.
func TestRunInterrupt(t *testing.T) {
	_, url := newFakeServer(t, 20)
	cfg := fakeConfig(url)
	cfg.Buyers, cfg.ArrivalOver = 10_000, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %s after the interrupt", took)
	}
	if !rep.Interrupted || rep.Buyers.Outcomes[OutcomeNotArrived] == 0 || rep.Buyers.Arrived == 0 {
		t.Errorf("interrupted %v, arrived %d, outcomes %v", rep.Interrupted, rep.Buyers.Arrived, rep.Buyers.Outcomes)
	}
	sum := 0
	for _, n := range rep.Buyers.Outcomes {
		sum += n
	}
	if sum != cfg.Buyers {
		t.Errorf("outcomes %v add up to %d, want %d", rep.Buyers.Outcomes, sum, cfg.Buyers)
	}
	if !rep.Audit.OK {
		t.Errorf("audit %+v", rep.Audit)
	}
}

// TestRunProgress: the live progress draws bars on a terminal and plain
// lines elsewhere, and stops with the run.
func TestRunProgress(t *testing.T) {
	for _, tty := range []bool{false, true} {
		_, url := newFakeServer(t, 4)
		var out bytes.Buffer
		cfg := fakeConfig(url)
		cfg.ArrivalOver = time.Second
		cfg.Progress, cfg.ProgressTTY, cfg.ProgressEvery = &out, tty, 100*time.Millisecond
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if testing.Verbose() {
			t.Logf("tty %v:\n%s", tty, got)
		}
		want := []string{"buyers", "seats sold", "decisions/s", "hold p99"}
		if tty {
			want = []string{"buyers", "sold", "decisions/s", "hold p99", "%"}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("tty %v: progress lacks %q:\n%s", tty, w, got)
			}
		}
		if !tty && strings.Contains(got, "\x1b[") {
			t.Errorf("plain progress has escape codes: %q", got)
		}
	}
}

// TestRunAuditFails: a server whose bookings list a seat twice fails the
// audit, and Report.Err names the seat.
func TestRunAuditFails(t *testing.T) {
	f, url := newFakeServer(t, 4)
	cfg := fakeConfig(url)
	rep, err := Run(context.Background(), cfg)
	if err != nil || !rep.Audit.OK {
		t.Fatalf("clean sale: %v %+v", err, rep)
	}
	// Sell one seat again, as a buggy server would, and play once more.
	f.mu.Lock()
	b0 := f.bookings[0]
	f.bookings = append(f.bookings, Booking{ID: "bk-double", ReservationID: "res-double", Seats: []string{b0.Seats[0]}})
	f.mu.Unlock()
	cfg.Buyers = 1
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit.OK || rep.Err() == nil {
		t.Fatalf("audit passed with seat %s in two bookings", b0.Seats[0])
	}
	if msg := rep.Err().Error(); !strings.Contains(msg, "seat "+b0.Seats[0]+" is in 2 bookings") {
		t.Errorf("error %q does not name seat %s", msg, b0.Seats[0])
	}
	if got := rep.Audit.DoubleSoldSeats; len(got) != 1 || got[0] != b0.Seats[0] {
		t.Errorf("double-sold seats %v, want [%s]", got, b0.Seats[0])
	}
}

// TestRunWatchersBuyReturnedSeats: buyers who find every seat held keep
// watching the live map (Patience) and buy the seats that cancellations
// give back; without patience they leave and nobody buys those seats.
func TestRunWatchersBuyReturnedSeats(t *testing.T) {
	sold := map[time.Duration]int{}
	for _, patience := range []time.Duration{0, 2 * time.Second} {
		_, url := newFakeServer(t, 2) // 20 seats
		cfg := fakeConfig(url)
		cfg.Buyers, cfg.Arrival, cfg.Think = 200, ArrivalBurst, 300*time.Millisecond
		cfg.PayShare, cfg.CancelShare, cfg.AbandonShare = 0.6, 0.4, 0
		cfg.Patience, cfg.MaxAttempts = patience, 1 // no retries: only watchers come back
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Audit.OK {
			t.Fatalf("patience %s: audit %+v", patience, rep.Audit)
		}
		sold[patience] = rep.SeatsSold
		b := rep.Buyers
		if patience == 0 && (b.Watched != 0 || b.WatchedBooked != 0) || patience > 0 && (b.Watched == 0 || b.WatchedBooked == 0) {
			t.Errorf("patience %s: %d watched, %d of them booked (outcomes %v)", patience, b.Watched, b.WatchedBooked, b.Outcomes)
		}
	}
	if sold[2*time.Second] <= sold[0] {
		t.Errorf("seats sold: %d with watchers, %d without", sold[2*time.Second], sold[0])
	}
}

package actors_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// eventually waits (in real time, for the actors and the payment worker to
// get there) until cond holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// payEnv is an actor system with a fake provider on one event of 20 seats
// (hold TTL 60 s, payment grace 600 s), snapshots off so that the journal
// can be counted.
type payEnv struct {
	*env
	p *fakeProvider
}

func startPay(t *testing.T, fs vfs.FS, clock *actors.ManualClock, p *fakeProvider, create bool) *payEnv {
	t.Helper()
	e := start(t, fs, clock, withProvider(p), func(c *actors.Config) {
		c.SnapshotEveryRecords, c.Logger, c.PaymentWait = 1_000_000, quietLogger(), 2*time.Second
	})
	if create {
		if _, err := e.sys.CreateEvent(context.Background(), definition("ev1", enginetest.GridPlan(2, 10))); err != nil {
			t.Fatal(err)
		}
	}
	return &payEnv{env: e, p: p}
}

func (e *payEnv) view(t *testing.T, id string) engine.ReservationView {
	t.Helper()
	v, err := e.sys.AdminReservation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// records counts the journal's records of a type.
func (e *payEnv) records(t *testing.T, typ engine.RecordType) int {
	t.Helper()
	rec, err := e.store.Load("ev1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.SnapshotSeq != 0 {
		t.Fatal("a snapshot dropped records: the count would be wrong")
	}
	n := 0
	for _, r := range rec.Tail {
		if r.Type == typ {
			n++
		}
	}
	return n
}

// keyOf is the idempotency key the provider saw for an attempt of a
// reservation of ev1, "" when it saw none.
func (p *fakeProvider) keyOf(res string, attempt uint32) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.charges {
		if c.req.EventID == "ev1" && c.req.ReservationID == res && c.req.Attempt == attempt {
			return k
		}
	}
	return ""
}

func attemptState(v engine.ReservationView, attempt uint32) engine.PaymentState {
	for _, p := range v.Payments {
		if p.Attempt == attempt {
			return p.State
		}
	}
	return 255
}

// C08: a payment started before the hold's expiry and confirmed after it
// books the seats; one that never resolves ends at the grace deadline,
// released, its authorisation voided.
func TestCaseC08PaymentFrozenByPaying(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := startPay(t, vfs.NewMem(), clock, newFakeProvider(), true)
	r1, err := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Second)
	v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_delayed")
	if err != nil || v.Status != engine.StatusPaying {
		t.Fatalf("pay tok_delayed: %+v %v, want paying", v, err)
	}
	clock.Advance(40 * time.Second) // t = 90: past the hold's own expiry
	if v := e.view(t, r1.ID); v.Status != engine.StatusPaying {
		t.Fatalf("paying reservation at t=90 reads %s", v.Status)
	}
	if _, err := e.sys.Hold(ctx, "ev1", "u2", []string{"A1"}); code(err) != engine.CodeSeatUnavailable {
		t.Fatalf("seat of a paying reservation taken: %v", err)
	}
	if err := e.sys.PaymentWebhook(ctx, e.p.settle(e.p.keyOf(r1.ID, 1), payment.StatusSucceeded, "evt_1")); err != nil {
		t.Fatal(err)
	}
	if v := e.view(t, r1.ID); v.Status != engine.StatusBooked || v.Payments[0].Ref == "" {
		t.Fatalf("after the confirmation: %+v", v)
	}

	// Never answered: released at the grace deadline, voided.
	r2, err := e.sys.Hold(ctx, "ev1", "u2", []string{"A2"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.sys.Pay(ctx, "u2", r2.ID, "tok_delayed"); err != nil || v.Status != engine.StatusPaying {
		t.Fatalf("pay: %+v %v", v, err)
	}
	clock.Advance(599 * time.Second)
	if v := e.view(t, r2.ID); v.Status != engine.StatusPaying {
		t.Fatalf("before the grace deadline: %s", v.Status)
	}
	clock.Advance(time.Second)
	eventually(t, "the void", func() bool { return attemptState(e.view(t, r2.ID), 1) == engine.PaymentVoided })
	if v := e.view(t, r2.ID); v.Status != engine.StatusReleased || v.ReleaseReason != engine.ReasonExpired {
		t.Fatalf("after the grace deadline: %+v", v)
	}
	if c, _ := e.p.charge(e.p.keyOf(r2.ID, 1)); c.status != payment.StatusCanceled {
		t.Fatalf("provider's charge %s, want canceled", c.status)
	}
}

// C07: a success that arrives after the seats were resold is refunded and
// recorded; the seats stay the second buyer's.
func TestCaseC07LateSuccessRefunded(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := startPay(t, vfs.NewMem(), clock, newFakeProvider(), true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	// Paid too late: told the seat is gone, never charged.
	clock.Advance(61 * time.Second)
	if _, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa"); code(err) != engine.CodeReservationExpired {
		t.Fatalf("pay after expiry: %v", err)
	}
	if e.p.count("charge/"+e.p.keyOf(r1.ID, 1)) != 0 {
		t.Fatal("an expired reservation was charged")
	}

	// The provider takes the money, but its word is late: the grace
	// period ends first, the seat is resold, then the void finds the money
	// taken and refunds it; the late webhook then changes nothing.
	r3, _ := e.sys.Hold(ctx, "ev1", "u3", []string{"A3"})
	if v, err := e.sys.Pay(ctx, "u3", r3.ID, "tok_delayed"); err != nil || v.Status != engine.StatusPaying {
		t.Fatalf("pay: %+v %v", v, err)
	}
	late := e.p.settle(e.p.keyOf(r3.ID, 1), payment.StatusSucceeded, "evt_late")
	clock.Advance(601 * time.Second)
	eventually(t, "the refund", func() bool { return attemptState(e.view(t, r3.ID), 1) == engine.PaymentRefunded })
	r4, err := e.sys.Hold(ctx, "ev1", "u4", []string{"A3"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.sys.Pay(ctx, "u4", r4.ID, "tok_visa"); err != nil || v.Status != engine.StatusBooked {
		t.Fatalf("second buyer: %+v %v", v, err)
	}
	if err := e.sys.PaymentWebhook(ctx, late); err != nil {
		t.Fatalf("late webhook: %v", err)
	}
	v := e.view(t, r3.ID)
	if v.Status != engine.StatusReleased || v.Payments[0].RefundRef == "" {
		t.Fatalf("late payer: %+v", v)
	}
	if c, _ := e.p.charge(e.p.keyOf(r3.ID, 1)); c.refunded == "" {
		t.Fatal("the provider has no refund")
	}
	bookings, _ := e.sys.Bookings(ctx, "ev1")
	if len(bookings) != 1 || bookings[0].CustomerID != "u4" {
		t.Fatalf("bookings %+v", bookings)
	}
	if n := e.records(t, engine.RecordPaymentRefunded); n != 1 {
		t.Fatalf("%d PaymentRefunded records, want 1", n)
	}
}

// C09: the same success webhook twice at once, then again after a restart:
// one booking, one SeatsBooked record.
func TestCaseC09DuplicateWebhooks(t *testing.T) {
	ctx := context.Background()
	fs, clock, p := vfs.NewMem(), actors.NewManualClock(t0), newFakeProvider()
	e := startPay(t, fs, clock, p, true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1", "A2"})
	if _, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_delayed"); err != nil {
		t.Fatal(err)
	}
	ev := p.settle(e.p.keyOf(r1.ID, 1), payment.StatusSucceeded, "evt_c09")
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() { errs <- e.sys.PaymentWebhook(ctx, ev) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.stop()
	clock.Advance(time.Hour)
	e = startPay(t, fs, clock, p, false)
	if err := e.sys.PaymentWebhook(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := e.records(t, engine.RecordSeatsBooked); n != 1 {
		t.Fatalf("%d SeatsBooked records, want 1", n)
	}
	if v := e.view(t, r1.ID); v.Status != engine.StatusBooked || len(v.Payments[0].Events) != 1 {
		t.Fatalf("%+v", v)
	}
}

// C10: P1 declined, P2 succeeds; then "failed" and "canceled" for P1
// arrive. The booking stands.
func TestCaseC10StaleFailure(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := startPay(t, vfs.NewMem(), clock, newFakeProvider(), true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	if v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_chargeDeclined"); code(err) != engine.CodePaymentDeclined || v.Status != engine.StatusHeld {
		t.Fatalf("P1: %+v %v, want declined and held", v, err)
	}
	if v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa"); err != nil || v.Status != engine.StatusBooked {
		t.Fatalf("P2: %+v %v", v, err)
	}
	for i, st := range []payment.Status{payment.StatusFailed, payment.StatusCanceled} {
		err := e.sys.PaymentWebhook(ctx, payment.WebhookEvent{
			ID: "evt_p1_" + string(st), Status: st, Ref: "pi_1", EventID: "ev1", ReservationID: r1.ID, Attempt: 1,
		})
		if err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
	}
	if v := e.view(t, r1.ID); v.Status != engine.StatusBooked {
		t.Fatalf("a stale failure undid the booking: %+v", v)
	}
	// A webhook for an attempt this server never started: the provider
	// should retry (404), and nothing changes.
	err := e.sys.PaymentWebhook(ctx, payment.WebhookEvent{ID: "evt_x", Status: payment.StatusSucceeded, EventID: "ev1", ReservationID: r1.ID, Attempt: 7})
	if code(err) != engine.CodeReservationNotFound {
		t.Fatalf("unknown attempt: %v", err)
	}
}

// The outbox: a payment whose provider could not be reached is asked again
// — after a backoff, and after a restart — with the same idempotency key,
// and books once.
func TestPaymentOutboxAcrossRestart(t *testing.T) {
	ctx := context.Background()
	fs, clock, p := vfs.NewMem(), actors.NewManualClock(t0), newFakeProvider()
	e := startPay(t, fs, clock, p, true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	p.setFailing(true)
	if v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa"); err != nil || v.Status != engine.StatusPaying {
		t.Fatalf("pay with the provider down: %+v %v, want paying", v, err)
	}
	e.stop()
	p.setFailing(false)
	e = startPay(t, fs, clock, p, false)
	eventually(t, "the booking", func() bool { return e.view(t, r1.ID).Status == engine.StatusBooked })
	if n := e.records(t, engine.RecordSeatsBooked); n != 1 {
		t.Fatalf("%d SeatsBooked, want 1", n)
	}

	// Down again; back before the grace deadline: the backoff retry books.
	r2, _ := e.sys.Hold(ctx, "ev1", "u2", []string{"A2"})
	p.setFailing(true)
	if _, err := e.sys.Pay(ctx, "u2", r2.ID, "tok_visa"); err != nil {
		t.Fatal(err)
	}
	calls := p.count("charge/" + e.p.keyOf(r2.ID, 1))
	p.setFailing(false)
	for e.view(t, r2.ID).Status != engine.StatusBooked {
		clock.Advance(time.Second) // the retry timer runs on the injected clock
		time.Sleep(2 * time.Millisecond)
	}
	if got := p.count("charge/" + e.p.keyOf(r2.ID, 1)); got <= calls {
		t.Fatalf("charge asked %d times, want a retry after %d", got, calls)
	}
}

// Two payments racing on one reservation: one charge, one booking; the
// other is refused with payment_in_progress.
func TestPayRaceOneCharge(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	p := newFakeProvider()
	e := startPay(t, vfs.NewMem(), clock, p, true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	type result struct {
		v   engine.ReservationView
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
			results <- result{v, err}
		}()
	}
	// One of them is refused at once, while the other's charge waits.
	first := <-results
	if code(first.err) != engine.CodePaymentInProgress {
		t.Fatalf("first answer %+v %v, want payment_in_progress", first.v, first.err)
	}
	close(gate)
	second := <-results
	if second.err != nil || second.v.Status != engine.StatusBooked {
		t.Fatalf("second answer %+v %v", second.v, second.err)
	}
	if n := p.count("charge/" + e.p.keyOf(r1.ID, 1)); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	if v := e.view(t, r1.ID); v.Attempts != 1 {
		t.Fatalf("%d attempts, want 1", v.Attempts)
	}
}

// An operator's refund: the provider refunds, the seats return to sale,
// the booking is gone from the list, and it is all journaled.
func TestRefundBooking(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := startPay(t, vfs.NewMem(), clock, newFakeProvider(), true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1", "A2"})
	v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.sys.RefundBooking(ctx, v.BookingID)
	if err != nil || got.Status != engine.StatusReleased || got.ReleaseReason != engine.ReasonRefunded {
		t.Fatalf("refund: %+v %v", got, err)
	}
	if _, err := e.sys.RefundBooking(ctx, v.BookingID); code(err) != engine.CodeBookingNotFound {
		t.Fatalf("refund again: %v", err)
	}
	if _, err := e.sys.RefundBooking(ctx, "bnope.ev1"); code(err) != engine.CodeBookingNotFound {
		t.Fatalf("unknown booking: %v", err)
	}
	if _, err := e.sys.Hold(ctx, "ev1", "u2", []string{"A1", "A2"}); err != nil {
		t.Fatalf("refunded seats not back on sale: %v", err)
	}
	if n := e.records(t, engine.RecordPaymentRefunded); n != 1 {
		t.Fatalf("%d PaymentRefunded, want 1", n)
	}
}

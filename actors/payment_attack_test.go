package actors_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// Attack: a free category (price 0 is a valid price: engine accepts
// 0–priceCentsMax) can never be booked with the built-in provider. The
// simulated provider refuses a charge of 0 cents (checkRequest:
// invalid_request) and the payment worker treats every provider error as
// "unreachable": Pay answers 202 paying, the charge is retried with backoff
// until the grace period ends, then the reservation is released as
// expired. A permanent refusal is never turned into a decision.
func TestAttackFreeSeatNeverBooks(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	sim, err := payment.OpenSimulated(payment.SimulatedConfig{
		LedgerPath: filepath.Join(t.TempDir(), "ledger"), WebhookSecret: "whsec_test",
		WebhookURL: func() string { return "" }, Manual: true, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := start(t, vfs.NewMem(), clock, withProvider(sim), func(c *actors.Config) {
		c.Logger, c.PaymentWait = quietLogger(), 2*time.Second
	})
	def := definition("ev1", enginetest.GridPlan(2, 10))
	def.Prices = map[string]int64{"Standard": 0} // complimentary seats
	if _, err := e.sys.CreateEvent(ctx, def); err != nil {
		t.Fatal(err)
	}
	r1, err := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
	if err != nil || v.Status != engine.StatusBooked {
		t.Errorf("pay a free seat with tok_visa: %s %v, want booked at once", v.Status, err)
	}
	clock.Advance(601 * time.Second) // the grace period ends
	eventually(t, "an outcome", func() bool {
		v, _ := e.sys.AdminReservation(ctx, r1.ID)
		return v.Status != engine.StatusPaying
	})
	if v, _ := e.sys.AdminReservation(ctx, r1.ID); v.Status != engine.StatusBooked {
		t.Fatalf("free seat ends %s/%s: the 0-cent charge was refused and retried until the grace ran out", v.Status, v.ReleaseReason)
	}
}

// Attack: RefundBooking dereferences a nil reply when the request fails
// before reaching the actor with anything but a timeout (the server shutting
// down, or the event overloaded): the operator's request panics instead of
// answering 503.
func TestAttackRefundBookingNilReplyPanics(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	e := startPay(t, vfs.NewMem(), clock, newFakeProvider(), true)
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	sys := e.sys
	if err := sys.Close(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("RefundBooking during shutdown panicked: %v", p)
		}
	}()
	_, err = sys.RefundBooking(ctx, v.BookingID)
	if code(err) != actors.CodeStorageUnavailable {
		t.Fatalf("refund during shutdown: %v, want storage_unavailable", err)
	}
}

// Attack: Pay answers a payment that ended in a void (the reservation's
// payment grace ran out while the charge was still with the provider) with
// no error and the reservation released: the web layer turns that into
// 200 — the answer API.md reserves for "booked". answerPayers passes on the
// void's nil error; it should be reservation_expired (410).
func TestAttackPayAnsweredOKWhenVoided(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	p := newFakeProvider()
	e := start(t, vfs.NewMem(), clock, withProvider(p), func(c *actors.Config) {
		c.Logger, c.PaymentWait = quietLogger(), 5*time.Second
	})
	def := definition("ev1", enginetest.GridPlan(2, 10))
	def.PaymentGraceSeconds = 1
	if _, err := e.sys.CreateEvent(ctx, def); err != nil {
		t.Fatal(err)
	}
	r1, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	clock.Advance(59500 * time.Millisecond) // paid half a second before the hold lapses
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate // the provider is slow to answer the charge
	p.mu.Unlock()
	defer close(gate)
	type result struct {
		v   engine.ReservationView
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
		done <- result{v, err}
	}()
	eventually(t, "paying", func() bool {
		v, _ := e.sys.AdminReservation(ctx, r1.ID)
		return v.Status == engine.StatusPaying
	})
	clock.Advance(2 * time.Second) // the grace deadline passes: released, voided
	res := <-done
	if res.err == nil && res.v.Status != engine.StatusBooked && res.v.Status != engine.StatusPaying {
		t.Fatalf("Pay answered no error with the reservation %s/%s: over HTTP a 200 for a seat not booked", res.v.Status, res.v.ReleaseReason)
	}
}

// Attack (found nothing): pay, cancel, duplicate webhooks (success and
// failure), the expiry of the hold and of the grace period, all at once on
// each of 20 reservations. Afterwards every charge the provider took is
// either the one booking of its reservation or refunded, every refund is
// recorded, and no seat is booked twice.
func TestAttackPayCancelWebhookExpiryRace(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	p := newFakeProvider()
	e := start(t, vfs.NewMem(), clock, withProvider(p), func(c *actors.Config) {
		c.Logger, c.PaymentWait, c.SnapshotEveryRecords = quietLogger(), 2*time.Second, 3
	})
	def := definition("ev1", enginetest.GridPlan(2, 10))
	def.PaymentGraceSeconds = 5
	if _, err := e.sys.CreateEvent(ctx, def); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		seat := string(rune('A'+i/10)) + fmt.Sprint(i%10+1)
		r, err := e.sys.Hold(ctx, "ev1", fmt.Sprintf("u%d", i), []string{seat})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	clock.Advance(57 * time.Second)
	var wg sync.WaitGroup
	for i, id := range ids {
		cust := fmt.Sprintf("u%d", i)
		tok := []string{"tok_delayed", "tok_visa", "tok_chargeDeclined", "tok_delayed"}[i%4]
		wg.Go(func() {
			_, _ = e.sys.Pay(ctx, cust, id, tok)
			if tok == "tok_chargeDeclined" {
				_, _ = e.sys.Pay(ctx, cust, id, "tok_delayed") // attempt 2
			}
		})
		wg.Go(func() { _ = e.sys.Cancel(ctx, cust, id) })
		wg.Go(func() {
			for a := uint32(1); a <= 2; a++ {
				k := p.keyOf(id, a)
				if _, ok := p.charge(k); !ok {
					continue
				}
				st := payment.StatusSucceeded
				if i%3 == 0 {
					st = payment.StatusFailed
				}
				ev := p.settle(k, st, fmt.Sprintf("evt_%s_%d", id, a))
				var w2 sync.WaitGroup
				for range 2 {
					w2.Go(func() { _ = e.sys.PaymentWebhook(ctx, ev) })
				}
				w2.Wait()
			}
		})
	}
	for range 10 {
		clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	// Late webhooks for whatever was charged, then let the grace run out.
	for _, id := range ids {
		for a := uint32(1); a <= 2; a++ {
			if c, ok := p.charge(p.keyOf(id, a)); ok && c.status == payment.StatusProcessing {
				_ = e.sys.PaymentWebhook(ctx, p.settle(p.keyOf(id, a), payment.StatusSucceeded, "evt_late_"+id))
			}
		}
	}
	clock.Advance(700 * time.Second)
	settled := func() bool {
		for _, id := range ids {
			v, _ := e.sys.AdminReservation(ctx, id)
			for _, pa := range v.Payments {
				if pa.State == engine.PaymentPending || pa.State == engine.PaymentRefundPending {
					return false
				}
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !settled(); {
		if time.Now().After(deadline) {
			t.Fatal("payments never settled")
		}
		clock.Advance(time.Second) // retry timers
		time.Sleep(5 * time.Millisecond)
	}
	booked := 0
	for _, id := range ids {
		v, _ := e.sys.AdminReservation(ctx, id)
		for _, pa := range v.Payments {
			c, charged := p.charge(p.keyOf(id, pa.Attempt))
			took := charged && c.status == payment.StatusSucceeded && c.refunded == ""
			mine := v.Status == engine.StatusBooked && v.Attempts == pa.Attempt
			switch {
			case took && !(mine && pa.State == engine.PaymentSucceeded):
				t.Errorf("%s attempt %d: money taken, reservation %s, attempt %s", id, pa.Attempt, v.Status, pa.State)
			case !took && pa.State == engine.PaymentSucceeded:
				t.Errorf("%s attempt %d: booked without money (provider %+v)", id, pa.Attempt, c)
			case charged && c.refunded != "" && pa.State != engine.PaymentRefunded:
				t.Errorf("%s attempt %d: refunded at the provider, journal says %s", id, pa.Attempt, pa.State)
			}
		}
		if v.Status == engine.StatusBooked {
			booked++
		}
	}
	bookings, _ := e.sys.Bookings(ctx, "ev1")
	if len(bookings) != booked {
		t.Errorf("%d bookings, %d booked reservations", len(bookings), booked)
	}
}

// Attack (found nothing): snapshots every record while attempts are in
// every state (pending, failed, succeeded, refund_pending with the provider
// down), then a restart: the views are the same, and the owed refund and
// charge are finished by the recovered outbox exactly once.
func TestAttackSnapshotRestartWithRefundsPending(t *testing.T) {
	ctx := context.Background()
	fs, clock, p := vfs.NewMem(), actors.NewManualClock(t0), newFakeProvider()
	opts := func(c *actors.Config) {
		c.SnapshotEveryRecords, c.Logger, c.PaymentWait = 1, quietLogger(), time.Second
	}
	e := &payEnv{env: start(t, fs, clock, withProvider(p), opts), p: p}
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	rb, _ := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	vb, err := e.sys.Pay(ctx, "u1", rb.ID, "tok_visa")
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := e.sys.Hold(ctx, "ev1", "u2", []string{"A2"})
	if _, err := e.sys.Pay(ctx, "u2", rd.ID, "tok_chargeDeclined"); code(err) != engine.CodePaymentDeclined {
		t.Fatal(err)
	}
	if _, err := e.sys.Pay(ctx, "u2", rd.ID, "tok_delayed"); err != nil {
		t.Fatal(err)
	}
	p.setFailing(true)
	if v, err := e.sys.RefundBooking(ctx, vb.BookingID); err != nil || v.Status != engine.StatusBooked {
		t.Fatalf("refund with the provider down: %+v %v", v, err)
	}
	before := map[string]engine.ReservationView{rb.ID: e.view(t, rb.ID), rd.ID: e.view(t, rd.ID)}
	e.stop()
	e = &payEnv{env: start(t, fs, clock, withProvider(p), opts), p: p}
	for id, want := range before {
		if got := e.view(t, id); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after restart %s:\n got %+v\nwant %+v", id, got, want)
		}
	}
	p.setFailing(false)
	for deadline := time.Now().Add(10 * time.Second); e.view(t, rb.ID).Status != engine.StatusReleased; {
		if time.Now().After(deadline) {
			t.Fatal("refund never completed after restart")
		}
		clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.count("refund/" + p.keyOf(rb.ID, 1)); got < 1 {
		t.Fatalf("refund calls %d", got)
	}
	if _, err := e.sys.Hold(ctx, "ev1", "u3", []string{"A1"}); err != nil {
		t.Fatalf("refunded seat not on sale: %v", err)
	}
	_ = e.sys.PaymentWebhook(ctx, p.settle(p.keyOf(rd.ID, 2), payment.StatusSucceeded, "evt_rd"))
	if v := e.view(t, rd.ID); v.Status != engine.StatusBooked || attemptState(v, 1) != engine.PaymentFailed {
		t.Fatalf("%+v", v)
	}
}

// Attack: the payment worker reports an outcome through the same
// admission control as customers' requests. While the event has
// InflightRequestsMax requests in flight — and every Pay keeps its slot
// while it waits for the provider — the outcome is refused as overloaded;
// the worker drops it ("asked again at the next recovery") and the task
// stays in payTasks, so no retry is ever dispatched: the charge succeeded at
// the provider, the reservation stays paying until its grace period ends,
// then is released and the money refunded. (Scaled down here to
// InflightRequestsMax 1: one Pay in flight is enough.)
func TestAttackOutcomeRefusedAsOverloadedIsLost(t *testing.T) {
	ctx := context.Background()
	clock := actors.NewManualClock(t0)
	p := newFakeProvider()
	e := start(t, vfs.NewMem(), clock, withProvider(p), func(c *actors.Config) {
		c.Logger, c.PaymentWait, c.InflightRequestsMax = quietLogger(), time.Second, 1
	})
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(2, 10))); err != nil {
		t.Fatal(err)
	}
	r1, err := e.sys.Hold(ctx, "ev1", "u1", []string{"A1"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.sys.Pay(ctx, "u1", r1.ID, "tok_visa")
	t.Logf("pay: %s %v", v.Status, err)
	for range 20 { // retries, if any, run on the injected clock
		clock.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
	got, _ := e.sys.AdminReservation(ctx, r1.ID)
	if c, _ := p.charge(p.keyOf(r1.ID, 1)); c.status == payment.StatusSucceeded && got.Status != engine.StatusBooked {
		t.Fatalf("the provider took the money; the reservation is still %s 20 s later: the outcome was dropped", got.Status)
	}
}

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// The payment cases (CASES.md C07–C11) over HTTP, against the simulated
// provider in manual mode: a charge that answers "processing" settles, and
// its signed webhook comes to this server, only when a test says so.

func (e *env) pay(token, reservationID, paymentToken string, headers ...string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/reservations/"+reservationID+"/pay", token, map[string]any{"paymentToken": paymentToken}, headers...)
}

func (e *env) adminReservation(id string) adminReservationView {
	e.t.Helper()
	var v adminReservationView
	e.do(http.MethodGet, "/v1/admin/reservations/"+id, testAdminToken, nil).decode(e.t, &v)
	return v
}

// eventually waits, in real time, for the actors and the payment worker.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// charge is the simulated provider's ledger entry of attempt of a
// reservation, or false.
func (e *env) charge(eventID, reservationID string, attempt uint32) (payment.LedgerEntry, bool) {
	for _, c := range e.provider.Charges() {
		if c.Metadata[payment.MetadataEvent] == eventID && c.Metadata[payment.MetadataReservation] == reservationID &&
			c.Metadata[payment.MetadataAttempt] == fmt.Sprint(attempt) {
			return c, true
		}
	}
	return payment.LedgerEntry{}, false
}

// chargeKey is the provider's idempotency key of an attempt it has seen.
func (e *env) chargeKey(eventID, reservationID string, attempt uint32) string {
	e.t.Helper()
	c, ok := e.charge(eventID, reservationID, attempt)
	if !ok {
		e.t.Fatalf("the provider has no charge for %s attempt %d", reservationID, attempt)
	}
	return c.Key
}

// providerEvent is a Stripe event about a charge of ours, as raw JSON.
func providerEvent(id, typ, ref, eventID, reservationID string, attempt uint32, amount int64) []byte {
	status := map[string]string{
		payment.EventSucceeded: "succeeded", payment.EventFailed: "requires_payment_method", payment.EventCanceled: "canceled",
	}[typ]
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(), "type": typ,
		"data": map[string]any{"object": map[string]any{
			"id": ref, "object": "payment_intent", "amount": amount, "currency": "eur", "status": status,
			"metadata": map[string]string{
				payment.MetadataEvent: eventID, payment.MetadataReservation: reservationID,
				payment.MetadataAttempt: fmt.Sprint(attempt),
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// webhook posts body to the simulated provider's webhook endpoint, signed
// at the given time (zero: unsigned).
func (e *env) webhook(body []byte, signedAt time.Time) response {
	e.t.Helper()
	var headers []string
	if !signedAt.IsZero() {
		headers = []string{"Stripe-Signature", payment.SignWebhook(body, testWebhookSecret, signedAt)}
	}
	return e.do(http.MethodPost, "/v1/payments/webhooks/simulated", "", body, headers...)
}

// TestCaseC07: U1 holds A1 (TTL 60 s); it expires; U1 pays at t = 75: told
// the seat is gone, never charged. And a payment whose success the provider
// reports only after the grace period ended and the seat was resold: the
// money is refunded and recorded, the seat stays the second buyer's.
func TestCaseC07(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c07", func(b map[string]any) { b["paymentGraceSeconds"] = 30 })
	u1, _ := e.session()
	u2, _ := e.session()
	r1 := e.mustHold(u1, "c07", "stalls-A-1")
	e.clock.Advance(61 * time.Second)
	r2 := e.mustHold(u2, "c07", "stalls-A-1")
	e.clock.Advance(9 * time.Second) // t = 70
	e.pay(u2, r2.ID, "tok_visa").want(t, http.StatusOK)
	e.clock.Advance(5 * time.Second) // t = 75
	e.pay(u1, r1.ID, "tok_visa").wantProblem(t, http.StatusGone, engine.CodeReservationExpired)
	if _, charged := e.charge("c07", r1.ID, 1); charged {
		t.Fatal("an expired reservation was charged")
	}

	// The provider takes U3's money, but its webhook cannot reach us; the
	// grace period ends, the void finds the money taken: refunded.
	u3, _ := e.session()
	u4, _ := e.session()
	r3 := e.mustHold(u3, "c07", "stalls-A-2")
	e.pay(u3, r3.ID, "tok_delayed").want(t, http.StatusAccepted)
	e.webhooksDown.Store(true)
	if err := e.provider.Settle(context.Background(), e.chargeKey("c07", r3.ID, 1)); err == nil {
		t.Fatal("the webhook reached a server that is down")
	}
	e.webhooksDown.Store(false)
	e.clock.Advance(61 * time.Second) // past the hold and the grace period
	e.eventually("the refund", func() bool {
		a := e.adminReservation(r3.ID)
		return len(a.Attempts) == 1 && a.Attempts[0].State == "refunded"
	})
	r4 := e.mustHold(u4, "c07", "stalls-A-2")
	e.pay(u4, r4.ID, "tok_visa").want(t, http.StatusOK)
	// The late webhook now arrives: 200, nothing changes.
	if err := e.provider.Settle(context.Background(), e.chargeKey("c07", r3.ID, 1)); err != nil {
		t.Fatalf("late webhook: %v", err)
	}
	a := e.adminReservation(r3.ID)
	if a.Status != "released" || a.Attempts[0].RefundRef == "" {
		t.Fatalf("late payer %+v", a)
	}
	if c, _ := e.charge("c07", r3.ID, 1); c.RefundRef != a.Attempts[0].RefundRef {
		t.Fatalf("provider's refund %q, journal's %q", c.RefundRef, a.Attempts[0].RefundRef)
	}
	var bookings struct{ Bookings []bookingView }
	e.do(http.MethodGet, "/v1/admin/events/c07/bookings", testAdminToken, nil).decode(t, &bookings)
	owners := map[string]string{}
	for _, b := range bookings.Bookings {
		for _, s := range b.Seats {
			owners[s] = b.ReservationID
		}
	}
	if len(bookings.Bookings) != 2 || owners["stalls-A-1"] != r2.ID || owners["stalls-A-2"] != r4.ID {
		t.Fatalf("bookings %+v", bookings.Bookings)
	}
}

// TestCaseC08: U1 holds A1 with TTL 60, pays at t = 50 with tok_delayed,
// the confirmation arrives at t = 90: booked. A payment the provider never
// answers ends at the grace deadline: released, authorisation voided.
func TestCaseC08(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c08", func(b map[string]any) { b["paymentGraceSeconds"] = 120 })
	u1, _ := e.session()
	r1 := e.mustHold(u1, "c08", "stalls-A-1")
	e.clock.Advance(50 * time.Second)
	res := e.pay(u1, r1.ID, "tok_delayed")
	res.want(t, http.StatusAccepted)
	var paying reservationView
	res.decode(t, &paying)
	if paying.Status != "paying" || !paying.ExpiresAt.Equal(r1.CreatedAt.Add(170*time.Second)) {
		t.Fatalf("paying reservation %+v, want expiresAt at the end of the grace period", paying)
	}
	e.clock.Advance(40 * time.Second) // t = 90
	if err := e.provider.Settle(context.Background(), e.chargeKey("c08", r1.ID, 1)); err != nil {
		t.Fatal(err)
	}
	var v reservationView
	e.do(http.MethodGet, "/v1/reservations/"+r1.ID, u1, nil).decode(t, &v)
	if v.Status != "booked" || v.BookingID == "" {
		t.Fatalf("after the confirmation %+v", v)
	}
	e.waitSeat("c08", "stalls-A-1", "booked")

	r2 := e.mustHold(u1, "c08", "stalls-A-2")
	e.pay(u1, r2.ID, "tok_delayed").want(t, http.StatusAccepted)
	e.clock.Advance(121 * time.Second)
	e.eventually("the void", func() bool {
		a := e.adminReservation(r2.ID)
		return len(a.Attempts) == 1 && a.Attempts[0].State == "voided"
	})
	if a := e.adminReservation(r2.ID); a.Status != "released" || a.ReleaseReason != "expired" {
		t.Fatalf("unanswered payment %+v", a)
	}
	if c, _ := e.charge("c08", r2.ID, 1); c.Status != payment.StatusCanceled {
		t.Fatalf("provider's charge %s, want canceled", c.Status)
	}
	e.waitSeat("c08", "stalls-A-2", "available")
}

// TestCaseC09: the provider's success event for R1 twice at the same
// moment, then once more an hour later (after a restart): one booking, one
// SeatsBooked record, one live-map change; the repeats answer 200.
func TestCaseC09(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c09", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "c09", "stalls-A-1", "stalls-A-2")
	e.pay(u1, r1.ID, "tok_delayed").want(t, http.StatusAccepted)
	c, _ := e.charge("c09", r1.ID, 1)
	_, before := e.seatStatuses("c09")
	body := providerEvent("evt_c09", payment.EventSucceeded, c.Ref, "c09", r1.ID, 1, r1.TotalCents)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = e.webhook(body, e.clock.Now()).status })
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Fatalf("webhooks answered %v", codes)
	}
	e.waitSeat("c09", "stalls-A-1", "booked")
	_, after := e.seatStatuses("c09")
	e.restart()
	e.clock.Advance(time.Hour)
	e.webhook(body, time.Now()).want(t, http.StatusOK)
	if _, again := e.seatStatuses("c09"); again != after || after == before {
		t.Fatalf("seat map versions %s → %s → %s: the repeats changed the map", before, after, again)
	}
	rec, err := e.store.Load("c09")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rec.Tail {
		if r.Type == engine.RecordSeatsBooked {
			n++
		}
	}
	if n != 1 || rec.SnapshotSeq != 0 {
		t.Fatalf("%d SeatsBooked records (snapshot at %d), want 1", n, rec.SnapshotSeq)
	}
	var bookings struct{ Bookings []bookingView }
	e.do(http.MethodGet, "/v1/admin/events/c09/bookings", testAdminToken, nil).decode(t, &bookings)
	if len(bookings.Bookings) != 1 {
		t.Fatalf("bookings %+v", bookings.Bookings)
	}
}

// TestCaseC10: P1 declined, P2 succeeds → booked; then "failed" and
// "canceled" (expired) for P1 arrive: R1 stays booked.
func TestCaseC10(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c10", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "c10", "stalls-A-1")
	e.pay(u1, r1.ID, "tok_chargeDeclined").wantProblem(t, http.StatusPaymentRequired, engine.CodePaymentDeclined)
	e.pay(u1, r1.ID, "tok_visa").want(t, http.StatusOK)
	p1, _ := e.charge("c10", r1.ID, 1)
	for _, typ := range []string{payment.EventFailed, payment.EventCanceled} {
		e.webhook(providerEvent("evt_p1_"+typ, typ, p1.Ref, "c10", r1.ID, 1, r1.TotalCents), e.clock.Now()).want(t, http.StatusOK)
	}
	a := e.adminReservation(r1.ID)
	if a.Status != "booked" || len(a.Attempts) != 2 || a.Attempts[0].State != "failed" || a.Attempts[1].State != "succeeded" {
		t.Fatalf("after stale failures %+v", a)
	}
	e.waitSeat("c10", "stalls-A-1", "booked")
}

// TestCaseC11: the signature covers the raw body. A correctly signed body
// with unusual whitespace and key order is accepted; the same body
// re-serialised, or with a changed amount, or signed outside the tolerance
// → 400 and nothing changes.
func TestCaseC11(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c11", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "c11", "stalls-A-1")
	e.pay(u1, r1.ID, "tok_delayed").want(t, http.StatusAccepted)
	c, _ := e.charge("c11", r1.ID, 1)
	odd := []byte(fmt.Sprintf("{ \"type\" :\"payment_intent.succeeded\",\n\t\"data\":{\"object\":{\"metadata\":{\"boxoffice_attempt\":\"1\",\"boxoffice_reservation\":%q,\"boxoffice_event\":\"c11\"},"+
		"\"status\":\"succeeded\",\"currency\":\"eur\",\"amount\":%d,\"object\":\"payment_intent\",\"id\":%q}},\r\n  \"created\":%d,\"api_version\":%q,\"object\":\"event\",\"id\":\"evt_c11\"   }",
		r1.ID, r1.TotalCents, c.Ref, time.Now().Unix(), stripe.APIVersion))
	sig := payment.SignWebhook(odd, testWebhookSecret, time.Now())

	paying := func() {
		t.Helper()
		if a := e.adminReservation(r1.ID); a.Status != "paying" {
			t.Fatalf("a rejected webhook changed the reservation: %+v", a)
		}
	}
	var generic map[string]any
	if err := json.Unmarshal(odd, &generic); err != nil {
		t.Fatal(err)
	}
	reserialised, _ := json.Marshal(generic)
	changed := []byte(strings.Replace(string(odd), fmt.Sprintf("\"amount\":%d", r1.TotalCents), "\"amount\":1", 1))
	for name, body := range map[string][]byte{"re-serialised": reserialised, "changed amount": changed} {
		res := e.do(http.MethodPost, "/v1/payments/webhooks/simulated", "", body, "Stripe-Signature", sig)
		if res.status != http.StatusBadRequest || res.problem(t).Code != string(codeInvalidSignature) {
			t.Fatalf("%s: %d %s", name, res.status, res.body)
		}
		paying()
	}
	e.webhook(odd, time.Now().Add(-10*time.Minute)).wantProblem(t, http.StatusBadRequest, codeInvalidSignature)
	e.webhook(odd, time.Time{}).wantProblem(t, http.StatusBadRequest, codeInvalidSignature)
	e.do(http.MethodPost, "/v1/payments/webhooks/simulated", "", odd, "Stripe-Signature", payment.SignWebhook(odd, "whsec_other", time.Now())).
		wantProblem(t, http.StatusBadRequest, codeInvalidSignature)
	// Over 64 KiB: 413 before anything is verified. Another provider: 404.
	big := append([]byte(`{"pad":"`), append([]byte(strings.Repeat("x", 64<<10)), `"}`...)...)
	e.webhook(big, time.Now()).wantProblem(t, http.StatusRequestEntityTooLarge, codeBodyTooLarge)
	e.do(http.MethodPost, "/v1/payments/webhooks/stripe", "", odd, "Stripe-Signature", sig).wantProblem(t, http.StatusNotFound, codeNotFound)
	paying()

	e.do(http.MethodPost, "/v1/payments/webhooks/simulated", "", odd, "Stripe-Signature", sig).want(t, http.StatusOK)
	if a := e.adminReservation(r1.ID); a.Status != "booked" || a.Attempts[0].ProviderEvents[0] != "evt_c11" {
		t.Fatalf("accepted webhook did not book: %+v", a)
	}
	// A verified event that is not about a charge of ours: 200, ignored.
	other := []byte(`{"id":"evt_other","object":"event","api_version":"` + stripe.APIVersion + `","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`)
	var ack webhookAnswer
	e.webhook(other, time.Now()).decode(t, &ack)
	if !ack.Received || !ack.Ignored {
		t.Fatalf("foreign event answered %+v", ack)
	}
	// An event for a reservation this server does not know (yet): 404, so
	// that the provider retries.
	e.webhook(providerEvent("evt_unknown", payment.EventSucceeded, "pi_x", "c11", "rnope.c11", 1, 100), time.Now()).
		wantProblem(t, http.StatusNotFound, engine.CodeReservationNotFound)
}

// Pay is idempotent: the same Idempotency-Key twice is one charge and the
// same answer; two different keys racing on one reservation end in one
// booking and one charge, the other refused with 409 payment_in_progress
// (or, arriving after the booking, answered with it).
func TestPayIdempotency(t *testing.T) {
	e := newEnv(t)
	e.createEvent("idem", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "idem", "stalls-A-1")
	first := e.pay(u1, r1.ID, "tok_visa", "Idempotency-Key", "pay-1")
	first.want(t, http.StatusOK)
	again := e.pay(u1, r1.ID, "tok_visa", "Idempotency-Key", "pay-1")
	if again.status != http.StatusOK || string(again.body) != string(first.body) {
		t.Fatalf("same key again: %d %s, want the first answer %s", again.status, again.body, first.body)
	}
	if n := len(e.provider.Charges()); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}

	for round := range 10 {
		r := e.mustHold(u1, "idem", fmt.Sprintf("stalls-B-%d", round+1))
		var wg sync.WaitGroup
		res := make([]response, 2)
		for i := range res {
			wg.Go(func() { res[i] = e.pay(u1, r.ID, "tok_visa", "Idempotency-Key", fmt.Sprintf("race-%d-%d", round, i)) })
		}
		wg.Wait()
		ok := 0
		for _, x := range res {
			switch {
			case x.status == http.StatusOK:
				ok++
			case x.status == http.StatusConflict && x.problem(t).Code == string(engine.CodePaymentInProgress):
			default:
				t.Fatalf("racing pay: %d %s", x.status, x.body)
			}
		}
		if ok == 0 {
			t.Fatal("neither racing payment booked")
		}
		a := e.adminReservation(r.ID)
		if a.Status != "booked" || len(a.Attempts) != 1 {
			t.Fatalf("after the race %+v", a)
		}
		e.cancelBooking(r.ID) // stay under the per-customer limit
	}
	if n := len(e.provider.Charges()); n != 11 {
		t.Fatalf("%d charges after 10 races, want 11", n)
	}
}

// cancelBooking refunds a booking through the admin API, which also gives
// the customer's allowance back.
func (e *env) cancelBooking(reservationID string) {
	e.t.Helper()
	a := e.adminReservation(reservationID)
	res := e.do(http.MethodPost, "/v1/admin/bookings/"+a.BookingID+"/refund", testAdminToken, nil)
	res.want(e.t, http.StatusOK)
	var v adminReservationView
	res.decode(e.t, &v)
	if v.Status != "released" || v.ReleaseReason != "refunded" || v.Attempts[len(v.Attempts)-1].State != "refunded" {
		e.t.Fatalf("refunded reservation %+v", v)
	}
}

// TestRefundBooking: an operator refunds a booking: the provider refunds,
// the seats return to sale, the booking leaves the list.
func TestRefundBooking(t *testing.T) {
	e := newEnv(t)
	e.createEvent("refund", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "refund", "stalls-A-1", "stalls-A-2")
	e.pay(u1, r1.ID, "tok_visa").want(t, http.StatusOK)
	bookingID := e.adminReservation(r1.ID).BookingID
	e.do(http.MethodPost, "/v1/admin/bookings/"+bookingID+"/refund", "", nil).wantProblem(t, http.StatusUnauthorized, codeUnauthenticated)
	e.cancelBooking(r1.ID)
	if c, _ := e.charge("refund", r1.ID, 1); c.RefundRef == "" {
		t.Fatal("the provider has no refund")
	}
	e.do(http.MethodPost, "/v1/admin/bookings/"+bookingID+"/refund", testAdminToken, nil).wantProblem(t, http.StatusNotFound, engine.CodeBookingNotFound)
	e.do(http.MethodPost, "/v1/admin/bookings/nope/refund", testAdminToken, nil).wantProblem(t, http.StatusNotFound, engine.CodeBookingNotFound)
	e.waitSeat("refund", "stalls-A-1", "available")
	u2, _ := e.session()
	e.mustHold(u2, "refund", "stalls-A-1", "stalls-A-2")
}

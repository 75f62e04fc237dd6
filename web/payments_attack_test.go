package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors/payment"
)

// Attack: a complimentary (0-cent) category is accepted by the admin API,
// but paying for such a seat with tok_visa never books it: API.md promises
// 200 booked for tok_visa; the simulated provider refuses the 0-cent charge
// as invalid_request, the payment worker retries it as if the provider were
// unreachable, and Pay answers 202 paying (the seat then stays frozen until
// the grace period ends and is released as expired).
func TestAttackFreeSeatPay(t *testing.T) {
	e := newEnv(t)
	e.createEvent("free", func(b map[string]any) {
		b["prices"] = map[string]int64{"Premium": 0, "Standard": 0, "Restricted View": 0, "Wheelchair": 0}
	})
	u1, _ := e.session()
	r1 := e.mustHold(u1, "free", "stalls-A-1")
	res := e.pay(u1, r1.ID, "tok_visa")
	if res.status != http.StatusOK {
		t.Fatalf("pay a 0-cent seat with tok_visa: %d %s, want 200 booked", res.status, res.body)
	}
}

// Attack: a signed webhook for a reservation the server knows but for an
// attempt it does not (yet) know answers 409 not_paying; API.md says an
// event the server does not know (yet) → 404, so that the provider retries.
func TestAttackWebhookUnknownAttemptStatus(t *testing.T) {
	e := newEnv(t)
	e.createEvent("wh", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "wh", "stalls-A-1")
	body := providerEvent("evt_future", payment.EventSucceeded, "pi_x", "wh", r1.ID, 2, r1.TotalCents)
	res := e.webhook(body, time.Now())
	if res.status != http.StatusNotFound {
		t.Errorf("webhook for unknown attempt 2 of a known reservation: %d %s, want 404", res.status, res.body)
	}
	if a := e.adminReservation(r1.ID); a.Status != "held" {
		t.Fatalf("reservation changed: %+v", a)
	}
}

// Attack: a pay whose PaymentStarted is slower to journal than the actor
// request timeout answers 503, but the payment was decided and goes on.
// The idempotency store forgets a 5xx, so the client's retry with the same
// Idempotency-Key runs Pay again and gets 409 payment_in_progress — the
// answer API.md says a retry with the same key never gets.
func TestAttackIdempotentPayRetryAfterTimeout(t *testing.T) {
	e, j := newSlowEnv(t, 150*time.Millisecond)
	e.createEvent("pay-timeout", nil)
	u1, _ := e.session()
	r1 := e.mustHold(u1, "pay-timeout", "stalls-A-1")
	j.delay.Store(int64(400 * time.Millisecond))
	first := e.pay(u1, r1.ID, "tok_delayed", "Idempotency-Key", "pay-k")
	time.Sleep(600 * time.Millisecond)
	j.delay.Store(0)
	retry := e.pay(u1, r1.ID, "tok_delayed", "Idempotency-Key", "pay-k")
	if retry.status == http.StatusConflict {
		t.Fatalf("first pay answered %d; its retry with the same Idempotency-Key answered %d %s", first.status, retry.status, retry.body)
	}
}

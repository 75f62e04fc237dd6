package engine

import (
	"fmt"
	"testing"
	"time"
)

// Attack: the bounded retention of released reservations (ReleasedRetainMax,
// D4) forgets the oldest released reservation even when it still owes
// provider work. A paying reservation whose grace period ended is released
// with its attempt pending (the outbox owes a void — and, if the provider
// took the money meanwhile, a refund). Once 100,000 later releases push it
// out, PaymentTasks no longer lists the void and the provider's late
// "succeeded" (the void's answer, or a webhook) gets reservation_not_found:
// no RefundRequested is journaled, the money is kept without a seat.
func TestAttackRetentionForgetsReservationOwingProviderWork(t *testing.T) {
	ev, _, err := CreateEvent(smallDef(), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const r1 = "r1.ev-1"
	if _, _, err := ev.Hold(at(1), HoldRequest{ReservationID: r1, CustomerID: "u1", SeatIDs: []string{"A-1"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.BeginPayment(at(2), "u1", r1, "tok_delayed"); err != nil {
		t.Fatal(err)
	}
	ev.Tick(at(700)) // grace (600 s) over: released, attempt 1 pending → void owed
	if got := ev.PaymentTasks(r1); len(got) != 1 || got[0].Kind != TaskVoid {
		t.Fatalf("after the grace deadline: tasks %+v, want one void", got)
	}
	// A busy sale: 100,000 holds released after it (expired or cancelled).
	for i := range ReleasedRetainMax {
		id := fmt.Sprintf("r%d-x.ev-1", i)
		if _, _, err := ev.Hold(at(701), HoldRequest{ReservationID: id, CustomerID: "u2", SeatIDs: []string{"B-1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Cancel(at(701), "u2", id); err != nil {
			t.Fatal(err)
		}
	}
	if got := ev.PaymentTasks(r1); len(got) != 1 || got[0].Kind != TaskVoid {
		t.Errorf("the void owed for %s was forgotten with the reservation: tasks %+v", r1, got)
	}
	// The void's answer: the provider had taken the money. It must be
	// refunded (RefundRequested), never dropped.
	recs, err := ev.ConfirmPayment(at(702), r1, 1, "b1.ev-1", PaymentEvidence{Ref: "pi_1"})
	if len(recs) == 0 || recs[len(recs)-1].Type != RecordRefundRequested {
		t.Fatalf("late success for a forgotten reservation: records %v err %v; want RefundRequested (money kept without a seat)", recs, err)
	}
}

// Attack: reservation ids made from an Idempotency-Key (actors.idempotentID:
// a hash of customer, key and event) are the same every time. Once the
// first reservation with such an id was refunded and then dropped by the
// retention bound, the same customer retrying with the same key gets a new
// reservation with the same id, and its first payment attempt has the
// same identity (event, reservation, attempt 1) — the same provider
// idempotency key "boxoffice-<ev>-<res>-1" — as the refunded one. The
// provider answers a repeated key with the first outcome ("succeeded"):
// the seats are booked with no money taken.
func TestAttackForgottenReservationIDReusedForNewCharge(t *testing.T) {
	ev, _, err := CreateEvent(smallDef(), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const r1 = "rdeterministic.ev-1" // what idempotentID gives for (u1, key, ev-1)
	if _, _, err := ev.Hold(at(1), HoldRequest{ReservationID: r1, CustomerID: "u1", SeatIDs: []string{"A-1"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.BeginPayment(at(2), "u1", r1, "tok_visa"); err != nil {
		t.Fatal(err)
	}
	old := ev.PaymentTasks(r1)[0]
	if _, err := ev.ConfirmPayment(at(3), r1, 1, "b1.ev-1", PaymentEvidence{Ref: "pi_1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ev.RefundBooking(at(4), "b1.ev-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.CompleteRefund(at(5), r1, 1, "re_1"); err != nil {
		t.Fatal(err)
	}
	for i := range ReleasedRetainMax {
		id := fmt.Sprintf("r%d-x.ev-1", i)
		if _, _, err := ev.Hold(at(6), HoldRequest{ReservationID: id, CustomerID: "u2", SeatIDs: []string{"B-1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Cancel(at(6), "u2", id); err != nil {
			t.Fatal(err)
		}
	}
	// The customer retries the same Idempotency-Key: same id again.
	if _, _, err := ev.Hold(at(7), HoldRequest{ReservationID: r1, CustomerID: "u1", SeatIDs: []string{"A-1"}}); err == nil {
		_, _, err := ev.BeginPayment(at(8), "u1", r1, "tok_visa")
		if err != nil {
			t.Fatal(err)
		}
		nt := ev.PaymentTasks(r1)[0]
		if nt.EventID == old.EventID && nt.ReservationID == old.ReservationID && nt.ReservationSeq == old.ReservationSeq && nt.Attempt == old.Attempt {
			t.Fatalf("new charge of %s has the identity of the refunded attempt (%s, %s, seq %d, %d): same provider idempotency key, "+
				"the provider replays \"succeeded\" and the seat is booked without payment", r1, nt.EventID, nt.ReservationID, nt.ReservationSeq, nt.Attempt)
		}
	}
}

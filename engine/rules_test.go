package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHoldAllOrNothing(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-2")
	recs, err := h.hold(at(1), "u2", "r2", "A-1", "A-2", "A-3")
	wantCode(t, err, CodeSeatUnavailable)
	wantSeats(t, err, "A-2")
	if len(recs) != 0 {
		t.Fatalf("rejected hold returned %d records", len(recs))
	}
	for _, id := range []string{"A-1", "A-3"} {
		if got := h.status(id); got != SeatAvailable {
			t.Errorf("seat %s is %s after a rejected hold, want available", id, got)
		}
	}
	if _, err := h.ev.Reservation(at(1), "u2", "r2"); CodeOf(err) != CodeReservationNotFound {
		t.Fatalf("rejected hold left reservation r2: %v", err)
	}
	recs = h.mustHold(at(2), "u2", "r2", "A-1", "A-3")
	wantRecords(t, recs, "SeatsHeld r2")
	if got := recs[0].Seats; !slices.Equal(got, []int32{0, 2}) {
		t.Fatalf("SeatsHeld seats %v, want [0 2] in request order", got)
	}
	v := h.view(at(2), "u2", "r2")
	if v.Status != StatusHeld || !slices.Equal(v.Seats, []string{"A-1", "A-3"}) || v.TotalCents != 10000 || v.Currency != "EUR" {
		t.Fatalf("view %+v", v)
	}
	if want := at(62); !v.ExpiresAt.Equal(want) {
		t.Fatalf("expiresAt %v, want %v", v.ExpiresAt, want)
	}
	h.checkReplay()
}

func TestHoldSeatUnavailableListsExactly(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1")             // reserved
	h.mustBook(at(0), "u2", "r2", "A-3")             // booked
	if _, err := h.block(at(0), "A-5"); err != nil { // blocked
		t.Fatal(err)
	}
	h.mustHold(at(0), "u3", "r3", "B-1", "B-2") // paying
	if _, _, err := h.pay(at(0), "u3", "r3"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seats []string
		want  []string
	}{
		{[]string{"A-1"}, []string{"A-1"}},
		{[]string{"A-2", "A-1"}, []string{"A-1"}},
		{[]string{"A-4", "A-3", "A-2", "A-1"}, []string{"A-3", "A-1"}},
		{[]string{"A-5", "A-6"}, []string{"A-5"}},
		{[]string{"B-2", "A-6", "B-1"}, []string{"B-2", "B-1"}},
		{[]string{"A-5", "A-3", "A-1", "B-1"}, []string{"A-5", "A-3", "A-1", "B-1"}},
	} {
		t.Run(strings.Join(tc.seats, ","), func(t *testing.T) {
			seq := h.ev.Seq()
			_, err := h.hold(at(1), "u9", "r9", tc.seats...)
			wantCode(t, err, CodeSeatUnavailable)
			wantSeats(t, err, tc.want...)
			if h.ev.Seq() != seq {
				t.Fatalf("seq moved from %d to %d", seq, h.ev.Seq())
			}
		})
	}
}

func TestHoldSeatNotFound(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1")
	for _, tc := range []struct {
		seats []string
		want  []string
	}{
		{[]string{"Z-1"}, []string{"Z-1"}},
		{[]string{"A-2", "Z-1", "A-3", "a-4"}, []string{"Z-1", "a-4"}},
		{[]string{"", "A-2"}, []string{""}},
		// seat_not_found wins over seat_unavailable.
		{[]string{"A-1", "A-11"}, []string{"A-11"}},
	} {
		t.Run(strings.Join(tc.seats, ","), func(t *testing.T) {
			recs, err := h.hold(at(1), "u2", "r2", tc.seats...)
			wantCode(t, err, CodeSeatNotFound)
			wantSeats(t, err, tc.want...)
			if len(recs) != 0 {
				t.Fatalf("returned %d records", len(recs))
			}
		})
	}
}

// TestCaseC04 is the engine half of C04: a malformed hold request is
// rejected with invalid_request, creates no hold and counts nothing against
// the customer.
func TestCaseC04(t *testing.T) {
	for _, tc := range []struct {
		name  string
		res   string
		cust  string
		seats []string
	}{
		{"duplicate", "r1", "u1", []string{"A-1", "A-1"}},
		{"duplicate-apart", "r1", "u1", []string{"A-1", "A-2", "A-1"}},
		{"duplicate-unknown", "r1", "u1", []string{"Z-9", "Z-9"}},
		{"empty", "r1", "u1", []string{}},
		{"nil", "r1", "u1", nil},
		{"over-max", "r1", "u1", []string{"A-1", "A-2", "A-3", "A-4", "A-5"}},
		{"over-max-unknown", "r1", "u1", []string{"Z-1", "Z-2", "Z-3", "Z-4", "Z-5"}},
		{"10000-ids", "r1", "u1", manyIDs(10000)},
		{"bad-reservation-id", "r 1", "u1", []string{"A-1"}},
		{"empty-reservation-id", "", "u1", []string{"A-1"}},
		{"empty-customer", "r1", "", []string{"A-1"}},
		{"long-customer", "r1", strings.Repeat("u", 257), []string{"A-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSmall(t)
			h.mustHold(at(0), "u1", "r0", "B-1")
			// Expiry of r0 is due at t=60: a rejected request still must
			// not leave a hold of its own.
			recs, err := h.hold(at(1), tc.cust, tc.res, tc.seats...)
			wantCode(t, err, CodeInvalidRequest)
			if len(recs) != 0 {
				t.Fatalf("invalid request returned records %q", recordTypes(recs))
			}
			if got := h.ev.Reservations(at(1), "u1"); len(got) != 1 || got[0].ID != "r0" {
				t.Fatalf("u1's reservations after an invalid request: %+v", got)
			}
			if c := h.ev.Counts(); c.Reserved != 1 {
				t.Fatalf("counts %+v", c)
			}
			// Nothing counted against u1: it can still take its remaining 3.
			h.mustHold(at(2), "u1", "r2", "A-1", "A-2", "A-3")
			_, err = h.hold(at(2), "u1", "r3", "A-4")
			wantCode(t, err, CodeLimitExceeded)
		})
	}
	t.Run("reused-reservation-id", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		_, err := h.hold(at(1), "u2", "r1", "A-2")
		wantCode(t, err, CodeInvalidRequest)
		if _, err := h.cancel(at(1), "u1", "r1"); err != nil {
			t.Fatal(err)
		}
		_, err = h.hold(at(1), "u1", "r1", "A-2")
		wantCode(t, err, CodeInvalidRequest)
	})
}

func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("S-%d", i)
	}
	return ids
}

func TestHoldSaleWindow(t *testing.T) {
	starts := t0.Add(10 * 24 * time.Hour)
	ends := t0.Add(5 * 24 * time.Hour)
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		salesEnd time.Time
		now      time.Time
		want     Code
	}{
		{"long-before", ends, t0.Add(-24 * time.Hour), CodeSalesNotOpen},
		{"just-before", ends, t0.Add(-ms), CodeSalesNotOpen},
		{"at-onsale", ends, t0, ""},
		{"just-before-end", ends, ends.Add(-ms), ""},
		{"at-end", ends, ends, CodeSalesClosed},
		{"after-end", ends, ends.Add(time.Hour), CodeSalesClosed},
		{"after-end-before-start", ends, starts.Add(-time.Hour), CodeSalesClosed},
		{"no-end/before-open", time.Time{}, t0.Add(-ms), CodeSalesNotOpen},
		{"no-end/open", time.Time{}, t0, ""},
		{"no-end/just-before-start", time.Time{}, starts.Add(-ms), ""},
		{"no-end/at-start", time.Time{}, starts, CodeSalesClosed},
		{"no-end/after-start", time.Time{}, starts.Add(time.Minute), CodeSalesClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := smallDef()
			def.StartsAt, def.SalesEndAt = starts, tc.salesEnd
			h := newHarness(t, def)
			recs, err := h.hold(tc.now, "u1", "r1", "A-1")
			wantCode(t, err, tc.want)
			if tc.want != "" && len(recs) != 0 {
				t.Fatalf("rejected hold returned %d records", len(recs))
			}
			want := tc.salesEnd
			if want.IsZero() {
				want = starts
			}
			if got := h.ev.Info().SalesEndAt; !got.Equal(want) {
				t.Fatalf("Info().SalesEndAt = %v, want %v", got, want)
			}
		})
	}
}

// TestCaseC12 is the engine half of C12: held, paying and booked seats count
// against maxSeatsPerCustomer; released holds give the allowance back.
func TestCaseC12(t *testing.T) {
	h := newSmall(t)
	h.mustBook(at(0), "u1", "r1", "A-1") // booked
	h.mustHold(at(1), "u1", "r2", "A-2") // paying
	if _, _, err := h.pay(at(1), "u1", "r2"); err != nil {
		t.Fatal(err)
	}
	h.mustHold(at(2), "u1", "r3", "A-3")
	h.mustHold(at(3), "u1", "r4", "A-4")
	_, err := h.hold(at(4), "u1", "r5", "A-5")
	wantCode(t, err, CodeLimitExceeded)

	// Another customer is not affected.
	h.mustHold(at(4), "u2", "r6", "B-1", "B-2", "B-3", "B-4")
	_, err = h.hold(at(4), "u2", "r7", "B-5")
	wantCode(t, err, CodeLimitExceeded)

	// Cancelling gives one seat back.
	if _, err := h.cancel(at(5), "u1", "r4"); err != nil {
		t.Fatal(err)
	}
	_, err = h.hold(at(5), "u1", "r8", "A-5", "A-6")
	wantCode(t, err, CodeLimitExceeded)
	h.mustHold(at(5), "u1", "r8", "A-5")
	_, err = h.hold(at(6), "u1", "r9", "A-6")
	wantCode(t, err, CodeLimitExceeded)

	// Expiry gives r3 back (held at t=2, expires at t=62) without a Tick.
	_, err = h.hold(at(61.999), "u1", "r9", "A-6")
	wantCode(t, err, CodeLimitExceeded)
	recs := h.mustHold(at(62), "u1", "r9", "A-6")
	wantRecords(t, recs, "HoldReleased r3 expired", "SeatsHeld r9")

	// A payment that fails after the hold's expiry releases and gives back.
	recs, err = h.fail(at(100), "r2", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, "HoldReleased r6 expired", "HoldReleased r8 expired", "PaymentFailed r2", "HoldReleased r2 payment_failed")
	h.mustHold(at(100), "u1", "r10", "A-7", "A-8")
	_, err = h.hold(at(100), "u1", "r11", "A-9")
	wantCode(t, err, CodeLimitExceeded)

	// Booked seats stay counted for good.
	h.tick(at(1000))
	h.mustHold(at(1000), "u1", "r12", "A-2", "A-3", "A-4")
	_, err = h.hold(at(1000), "u1", "r13", "A-9")
	wantCode(t, err, CodeLimitExceeded)
	h.checkReplay()
}

// TestHoldErrorPrecedence checks API.md's order: invalid_request,
// sales_not_open / sales_closed, seat_not_found, limit_exceeded,
// seat_unavailable.
func TestHoldErrorPrecedence(t *testing.T) {
	five := []string{"A-1", "A-2", "A-3", "A-4", "Z-1"}
	for _, tc := range []struct {
		name  string
		now   time.Time
		seats []string
		want  Code
	}{
		{"duplicate-before-open", at(-10), []string{"Z-1", "Z-1"}, CodeInvalidRequest},
		{"too-many-after-close", at(1e7), five, CodeInvalidRequest},
		{"empty-before-open", at(-10), nil, CodeInvalidRequest},
		{"before-open-unknown-seat", at(-10), []string{"Z-1"}, CodeSalesNotOpen},
		{"closed-unknown-seat", at(1e7), []string{"Z-1"}, CodeSalesClosed},
		{"before-open-taken-seat", at(-10), []string{"B-1"}, CodeSalesNotOpen},
		{"unknown-over-limit", at(1), []string{"Z-1", "A-5", "A-6"}, CodeSeatNotFound},
		{"limit-over-taken", at(1), []string{"B-1", "A-5"}, CodeLimitExceeded},
		{"taken", at(1), []string{"B-1"}, CodeSeatUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSmall(t)
			h.mustHold(at(0), "u2", "r0", "B-1")
			h.mustHold(at(0), "u1", "r1", "B-2", "B-3", "B-4")
			_, err := h.hold(tc.now, "u1", "r2", tc.seats...)
			wantCode(t, err, tc.want)
		})
	}
}

func TestCancel(t *testing.T) {
	type setup func(h *harness)
	held := func(h *harness) { h.mustHold(at(0), "u1", "r1", "A-1", "A-2") }
	for _, tc := range []struct {
		name    string
		setup   setup
		cust    string
		now     time.Time
		want    Code
		records []string
	}{
		{"held", held, "u1", at(1), "", []string{"HoldReleased r1 cancelled"}},
		{"cancelled-again", func(h *harness) {
			held(h)
			if _, err := h.cancel(at(1), "u1", "r1"); err != nil {
				h.t.Fatalf("cancel: %v", err)
			}
		}, "u1", at(2), "", nil},
		{"expired", held, "u1", at(60), "", []string{"HoldReleased r1 expired"}},
		{"expired-ticked", func(h *harness) { held(h); h.tick(at(70)) }, "u1", at(80), "", nil},
		{"payment-failed", func(h *harness) {
			held(h)
			_, a, _ := h.pay(at(1), "u1", "r1")
			h.fail(at(100), "r1", a)
		}, "u1", at(101), "", nil},
		{"booked", func(h *harness) { h.mustBook(at(0), "u1", "r1", "A-1") }, "u1", at(1), CodeAlreadyBooked, nil},
		{"booked-after-expiry", func(h *harness) { h.mustBook(at(0), "u1", "r1", "A-1") }, "u1", at(1e5), CodeAlreadyBooked, nil},
		{"paying", func(h *harness) { held(h); h.pay(at(1), "u1", "r1") }, "u1", at(2), CodePaymentInProgress, nil},
		{"paying-past-hold-expiry", func(h *harness) { held(h); h.pay(at(1), "u1", "r1") }, "u1", at(120), CodePaymentInProgress, nil},
		{"paying-past-grace", func(h *harness) { held(h); h.pay(at(1), "u1", "r1") }, "u1", at(601), "", []string{"HoldReleased r1 expired"}},
		{"other-customer", held, "u2", at(1), CodeReservationNotFound, nil},
		{"other-customer-released", func(h *harness) { held(h); h.cancel(at(1), "u1", "r1") }, "u2", at(1), CodeReservationNotFound, nil},
		{"unknown", func(h *harness) {}, "u1", at(1), CodeReservationNotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSmall(t)
			tc.setup(h)
			before := h.ev.Statuses()
			recs, err := h.cancel(tc.now, tc.cust, "r1")
			wantCode(t, err, tc.want)
			wantRecords(t, recs, tc.records...)
			if tc.want != "" && tc.records == nil && !slices.Equal(before, h.ev.Statuses()) {
				t.Fatalf("rejected cancel changed seats")
			}
			if tc.want == "" && tc.cust == "u1" {
				if v, _ := h.ev.Reservation(tc.now, "u1", "r1"); v.Status != StatusReleased {
					t.Fatalf("after cancel: %s", v.Status)
				}
				for _, s := range []string{"A-1", "A-2"} {
					if h.status(s) != SeatAvailable {
						t.Fatalf("seat %s is %s after cancel", s, h.status(s))
					}
				}
			}
			h.checkReplay()
		})
	}
	t.Run("reason-kept", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.tick(at(61))
		recs, err := h.cancel(at(62), "u1", "r1")
		wantCode(t, err, "")
		wantRecords(t, recs)
		if v := h.view(at(62), "u1", "r1"); v.ReleaseReason != ReasonExpired {
			t.Fatalf("cancel after expiry changed the reason to %s", v.ReleaseReason)
		}
	})
}

func TestExpiryTick(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(10), "u1", "r1", "A-1")
	h.mustHold(at(0), "u2", "r2", "A-2")
	h.mustHold(at(5), "u3", "r3", "A-3")
	h.mustHold(at(5), "u4", "r4", "A-4") // same expiry as r3, created later
	if next, ok := h.ev.NextExpiry(); !ok || !next.Equal(at(60)) {
		t.Fatalf("NextExpiry %v %v, want %v", next, ok, at(60))
	}
	wantRecords(t, h.tick(at(59.999)))
	wantRecords(t, h.tick(at(60)), "HoldReleased r2 expired")
	if next, _ := h.ev.NextExpiry(); !next.Equal(at(65)) {
		t.Fatalf("NextExpiry %v, want %v", next, at(65))
	}
	// Expiry records come out by expiry, then by creation order.
	wantRecords(t, h.tick(at(1000)), "HoldReleased r3 expired", "HoldReleased r4 expired", "HoldReleased r1 expired")
	if _, ok := h.ev.NextExpiry(); ok {
		t.Fatalf("NextExpiry with nothing live")
	}
	wantRecords(t, h.tick(at(2000)))
	if c := h.ev.Counts(); c.Available != 20 {
		t.Fatalf("counts %+v", c)
	}
	h.checkReplay()
}

// TestExpiryHeapOrder holds many reservations with scattered expiries and
// checks that Tick releases each exactly when due, in order.
func TestExpiryHeapOrder(t *testing.T) {
	def := smallDef()
	def.MaxSeatsPerCustomer = 1
	h := newHarness(t, def)
	var want []string
	order := []int{7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15}
	for i, o := range order {
		row, n := "A", o+1
		if o >= 10 {
			row, n = "B", o-9
		}
		h.mustHold(at(float64(o)), fmt.Sprintf("u%d", i), fmt.Sprintf("r%02d", o), fmt.Sprintf("%s-%d", row, n))
	}
	// Pay three of them: paying freezes expiry until the grace deadline.
	for _, o := range []int{3, 12, 17} {
		i := slices.Index(order, o)
		if _, _, err := h.pay(at(30), fmt.Sprintf("u%d", i), fmt.Sprintf("r%02d", o)); err != nil {
			t.Fatal(err)
		}
	}
	for o := 0; o < 20; o++ {
		if o != 3 && o != 12 && o != 17 {
			want = append(want, fmt.Sprintf("HoldReleased r%02d expired", o))
		}
	}
	var got []string
	for s := 60.0; s < 100; s += 0.5 {
		got = append(got, recordTypes(h.tick(at(s)))...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("expiries %q, want %q", got, want)
	}
	wantRecords(t, h.tick(at(630)), "HoldReleased r03 expired", "HoldReleased r12 expired", "HoldReleased r17 expired")
	h.checkReplay()
}

// TestCaseC05 is the engine half of C05: with no Tick at all, a hold is
// expired the moment any command or read touches it after expiresAt.
func TestCaseC05(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1", "A-2")
	just := at(60.001)

	// A read does not need the timer.
	v := h.view(just, "u1", "r1")
	if v.Status != StatusReleased || v.ReleaseReason != ReasonExpired {
		t.Fatalf("R1 reads %s/%s just after expiresAt, want released/expired", v.Status, v.ReleaseReason)
	}
	if v := h.view(at(59.999), "u1", "r1"); v.Status != StatusHeld {
		t.Fatalf("R1 reads %s just before expiresAt", v.Status)
	}

	// U2's hold on A1 succeeds; the hold itself journals R1's expiry first.
	recs := h.mustHold(just, "u2", "r2", "A-1")
	wantRecords(t, recs, "HoldReleased r1 expired", "SeatsHeld r2")
	if !slices.Equal(recs[0].Seats, []int32{0, 1}) || recs[0].CustomerID != "u1" {
		t.Fatalf("expiry record %+v", recs[0])
	}
	v = h.view(just, "u1", "r1")
	if v.Status != StatusReleased || v.ReleaseReason != ReasonExpired {
		t.Fatalf("R1 is %s/%s", v.Status, v.ReleaseReason)
	}
	_, _, err := h.pay(just, "u1", "r1")
	wantCode(t, err, CodeReservationExpired)
	if got := h.status("A-2"); got != SeatAvailable {
		t.Fatalf("A-2 is %s, want available", got)
	}
	if got := h.status("A-1"); got != SeatReserved {
		t.Fatalf("A-1 is %s, want reserved by r2", got)
	}
	h.checkReplay()

	// The same without any hold: paying first journals the expiry.
	h2 := newSmall(t)
	h2.mustHold(at(0), "u1", "r1", "A-1", "A-2")
	recs, _, err = h2.pay(at(60), "u1", "r1")
	wantCode(t, err, CodeReservationExpired)
	wantRecords(t, recs, "HoldReleased r1 expired")
}

// TestCaseC03 is the engine half of C03: a hold is never overwritten.
func TestCaseC03(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1")
	_, err := h.hold(at(0.1), "u2", "r2", "A-1")
	wantCode(t, err, CodeSeatUnavailable)
	wantSeats(t, err, "A-1")
	v := h.view(at(0.1), "u1", "r1")
	if v.Status != StatusHeld || !slices.Equal(v.Seats, []string{"A-1"}) {
		t.Fatalf("R1 after U2's attempt: %+v", v)
	}
	_, attempt, err := h.pay(at(1), "u1", "r1")
	if err != nil || attempt != 1 {
		t.Fatalf("pay: attempt %d, %v", attempt, err)
	}
	if _, err := h.confirm(at(2), "r1", attempt, "b1"); err != nil {
		t.Fatal(err)
	}
	if got := h.status("A-1"); got != SeatBooked {
		t.Fatalf("A-1 is %s", got)
	}
	b := h.ev.Bookings()
	if len(b) != 1 || b[0].CustomerID != "u1" || b[0].ReservationID != "r1" || !slices.Equal(b[0].Seats, []string{"A-1"}) {
		t.Fatalf("bookings %+v", b)
	}
}

func TestPayments(t *testing.T) {
	t.Run("begin-freezes-expiry", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		recs, attempt, err := h.pay(at(50), "u1", "r1")
		if err != nil || attempt != 1 {
			t.Fatalf("pay: %d %v", attempt, err)
		}
		wantRecords(t, recs, "PaymentStarted r1")
		if want := at(650).UnixMilli(); recs[0].ExpiresAtUnixMilli != want || recs[0].Attempt != 1 {
			t.Fatalf("PaymentStarted %+v, want expiry %d", recs[0], want)
		}
		v := h.view(at(50), "u1", "r1")
		if v.Status != StatusPaying || !v.ExpiresAt.Equal(at(650)) || v.Attempts != 1 {
			t.Fatalf("view %+v", v)
		}
		wantRecords(t, h.tick(at(89)))
		if v := h.view(at(89), "u1", "r1"); v.Status != StatusPaying {
			t.Fatalf("paying reservation reads %s past its hold expiry", v.Status)
		}
		// C08: confirmation after the hold's own expiry books it.
		recs, err = h.confirm(at(90), "r1", 1, "b1")
		wantCode(t, err, "")
		wantRecords(t, recs, "SeatsBooked r1")
		v = h.view(at(90), "u1", "r1")
		if v.Status != StatusBooked || v.BookingID != "b1" {
			t.Fatalf("view %+v", v)
		}
		if c := h.ev.Counts(); c.Booked != 1 || c.Reserved != 0 {
			t.Fatalf("counts %+v", c)
		}
		// The booking never expires.
		wantRecords(t, h.tick(at(1e6)))
		h.checkReplay()
	})
	t.Run("grace-ends", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(50), "u1", "r1")
		wantRecords(t, h.tick(at(649.999)))
		wantRecords(t, h.tick(at(650)), "HoldReleased r1 expired")
		// The outbox: the released reservation's pending attempt is to be
		// voided at the provider.
		wantTasks(t, h.ev.PaymentTasks("r1"), "void r1 1")
		// A success arriving now took money for seats that are gone: it is
		// to be refunded, once.
		recs, err := h.confirm(at(700), "r1", 1, "b1")
		wantCode(t, err, CodeReservationExpired)
		wantRecords(t, recs, "RefundRequested r1")
		wantTasks(t, h.ev.PaymentTasks("r1"), "refund r1 1")
		recs, err = h.confirm(at(701), "r1", 1, "b1")
		wantCode(t, err, "")
		wantRecords(t, recs)
		wantRecords(t, mustRecs(h.completeRefund(at(702), "r1", 1)), "PaymentRefunded r1")
		wantTasks(t, h.ev.PaymentTasks("r1"))
		wantRecords(t, mustRecs(h.completeRefund(at(703), "r1", 1)))
		h.checkReplay()
	})
	t.Run("void", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(1), "u1", "r1")
		wantTasks(t, h.ev.PaymentTasks("r1"), "charge r1 1")
		// The current attempt is never voided.
		wantRecords(t, mustRecs(h.void(at(2), "r1", 1)))
		h.tick(at(601))
		wantRecords(t, mustRecs(h.void(at(602), "r1", 1)), "PaymentVoided r1")
		wantTasks(t, h.ev.PaymentTasks("r1"))
		// A failure after the void changes nothing; a success is refunded.
		wantRecords(t, mustRecs(h.fail(at(603), "r1", 1)))
		recs, err := h.confirm(at(604), "r1", 1, "b1")
		wantCode(t, err, CodeReservationExpired)
		wantRecords(t, recs, "RefundRequested r1")
		_, err = h.void(at(605), "r1", 2)
		wantCode(t, err, CodeNotPaying)
		h.checkReplay()
	})
	t.Run("operator-refund", func(t *testing.T) {
		h := newSmall(t)
		h.mustBook(at(0), "u1", "r1", "A-1", "A-2")
		bk := h.view(at(0), "u1", "r1").BookingID
		wantRecords(t, mustRecs(h.refundBooking(at(1), bk)), "RefundRequested r1")
		// Until the provider has refunded, the booking stands.
		if h.status("A-1") != SeatBooked || len(h.ev.Bookings()) != 1 {
			t.Fatalf("booking gone before the refund: %s", h.status("A-1"))
		}
		wantTasks(t, h.ev.PaymentTasks("r1"), "refund r1 1")
		wantRecords(t, mustRecs(h.refundBooking(at(2), bk))) // asked again: same task, no record
		wantRecords(t, mustRecs(h.completeRefund(at(3), "r1", 1)), "PaymentRefunded r1")
		if h.status("A-1") != SeatAvailable || len(h.ev.Bookings()) != 0 || h.ev.Counts().Booked != 0 {
			t.Fatalf("after refund: %s %+v", h.status("A-1"), h.ev.Counts())
		}
		v := h.view(at(3), "u1", "r1")
		if v.Status != StatusReleased || v.ReleaseReason != ReasonRefunded || len(v.Payments) != 1 ||
			v.Payments[0].State != PaymentRefunded || v.Payments[0].RefundRef != "re_r1" {
			t.Fatalf("refunded reservation %+v", v)
		}
		_, err := h.refundBooking(at(4), bk)
		wantCode(t, err, CodeBookingNotFound)
		// The seats are on sale again, and the customer's allowance is back.
		h.mustBook(at(5), "u1", "r2", "A-1", "A-2", "A-3", "A-4")
		h.checkReplay()
	})
	t.Run("custom-grace", func(t *testing.T) {
		def := smallDef()
		def.PaymentGraceSeconds = 30
		h := newHarness(t, def)
		h.mustHold(at(0), "u1", "r1", "A-1")
		recs, _, _ := h.pay(at(10), "u1", "r1")
		// The hold had until 60 s; a 30 s grace never shortens it.
		if recs[0].ExpiresAtUnixMilli != at(60).UnixMilli() {
			t.Fatalf("grace deadline %d, want the hold's own expiry", recs[0].ExpiresAtUnixMilli)
		}
		h.mustHold(at(0.5), "u2", "r2", "A-2")
		recs, _, _ = h.pay(at(50), "u2", "r2")
		if recs[0].ExpiresAtUnixMilli != at(80).UnixMilli() {
			t.Fatalf("grace deadline %d, want now + 30 s", recs[0].ExpiresAtUnixMilli)
		}
	})
	t.Run("fail-before-expiry-returns-to-held", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(10), "u1", "r1")
		recs, err := h.fail(at(20), "r1", 1)
		wantCode(t, err, "")
		wantRecords(t, recs, "PaymentFailed r1")
		v := h.view(at(20), "u1", "r1")
		if v.Status != StatusHeld || !v.ExpiresAt.Equal(at(60)) {
			t.Fatalf("after failure %+v, want held until the original expiry", v)
		}
		wantRecords(t, h.tick(at(60)), "HoldReleased r1 expired")
		h.checkReplay()
	})
	t.Run("fail-after-expiry-releases", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(10), "u1", "r1")
		recs, err := h.fail(at(60), "r1", 1)
		wantCode(t, err, "")
		wantRecords(t, recs, "PaymentFailed r1", "HoldReleased r1 payment_failed")
		v := h.view(at(60), "u1", "r1")
		if v.Status != StatusReleased || v.ReleaseReason != ReasonPaymentFailed {
			t.Fatalf("%+v", v)
		}
		_, _, err = h.pay(at(61), "u1", "r1")
		wantCode(t, err, CodeReservationReleased)
		// A success for the failed attempt still took money: refunded.
		recs, err = h.confirm(at(61), "r1", 1, "b1")
		wantCode(t, err, CodeReservationReleased)
		wantRecords(t, recs, "RefundRequested r1")
		h.checkReplay()
	})
	t.Run("second-attempt", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(1), "u1", "r1")
		h.fail(at(2), "r1", 1)
		_, attempt, err := h.pay(at(3), "u1", "r1")
		if err != nil || attempt != 2 {
			t.Fatalf("second attempt %d %v", attempt, err)
		}
		// C10: a stale failure never undoes a success.
		recs, err := h.fail(at(4), "r1", 1)
		wantCode(t, err, "")
		wantRecords(t, recs)
		// A success for the failed attempt took money the second one
		// will take again: the first goes back.
		recs, err = h.confirm(at(4), "r1", 1, "b1")
		wantCode(t, err, CodeNotPaying)
		wantRecords(t, recs, "RefundRequested r1")
		if _, err := h.confirm(at(5), "r1", 2, "b1"); err != nil {
			t.Fatal(err)
		}
		for _, a := range []uint32{1, 2} {
			recs, err := h.fail(at(6), "r1", a)
			wantCode(t, err, "")
			wantRecords(t, recs)
		}
		_, err = h.fail(at(6), "r1", 3)
		wantCode(t, err, CodeNotPaying)
		if v := h.view(at(7), "u1", "r1"); v.Status != StatusBooked {
			t.Fatalf("%s", v.Status)
		}
		// Confirming the booked attempt again is a no-op (C09).
		recs, err = h.confirm(at(3600), "r1", 2, "b1")
		wantCode(t, err, "")
		wantRecords(t, recs)
		recs, err = h.confirm(at(3600), "r1", 2, "b-other")
		wantCode(t, err, "")
		wantRecords(t, recs)
		recs, err = h.confirm(at(3600), "r1", 1, "b1") // its refund is already owed
		wantCode(t, err, "")
		wantRecords(t, recs)
		// Paying a booked reservation again is idempotent.
		recs, attempt, err = h.pay(at(3600), "u1", "r1")
		if err != nil || attempt != 0 || len(recs) != 0 {
			t.Fatalf("pay booked: %v %d %v", recs, attempt, err)
		}
		if len(h.ev.Bookings()) != 1 {
			t.Fatalf("bookings %+v", h.ev.Bookings())
		}
		h.checkReplay()
	})
	t.Run("errors", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		_, _, err := h.pay(at(1), "u2", "r1")
		wantCode(t, err, CodeReservationNotFound)
		_, _, err = h.pay(at(1), "u1", "nope")
		wantCode(t, err, CodeReservationNotFound)
		_, err = h.confirm(at(1), "r1", 1, "b1")
		wantCode(t, err, CodeNotPaying)
		_, err = h.confirm(at(1), "r1", 0, "b1")
		wantCode(t, err, CodeNotPaying)
		_, err = h.confirm(at(1), "nope", 1, "b1")
		wantCode(t, err, CodeReservationNotFound)
		_, err = h.fail(at(1), "nope", 1)
		wantCode(t, err, CodeReservationNotFound)
		recs, err := h.fail(at(1), "r1", 1) // no such attempt
		wantCode(t, err, CodeNotPaying)
		wantRecords(t, recs)
		_, _, err = h.pay(at(1), "u1", "r1", "")
		wantCode(t, err, CodeInvalidRequest)
		h.pay(at(1), "u1", "r1")
		_, _, err = h.pay(at(2), "u1", "r1")
		wantCode(t, err, CodePaymentInProgress)
		_, err = h.confirm(at(2), "r1", 1, "bad id")
		wantCode(t, err, CodeInvalidRequest)
		_, err = h.confirm(at(2), "r1", 1, "")
		wantCode(t, err, CodeInvalidRequest)
		h.mustBook(at(2), "u2", "r2", "A-2")
		_, err = h.confirm(at(2), "r1", 1, "bk-r2")
		wantCode(t, err, CodeInvalidRequest)
		if _, err := h.confirm(at(2), "r1", 1, "b1"); err != nil {
			t.Fatal(err)
		}
		// Cancelled, then paid or confirmed.
		h.mustHold(at(3), "u3", "r3", "A-3")
		h.cancel(at(3), "u3", "r3")
		_, _, err = h.pay(at(4), "u3", "r3")
		wantCode(t, err, CodeReservationReleased)
		_, err = h.confirm(at(4), "r3", 1, "b3")
		wantCode(t, err, CodeNotPaying) // it never had an attempt
		h.checkReplay()
	})
	t.Run("C07-success-after-resale", func(t *testing.T) {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1")
		h.pay(at(10), "u1", "r1")
		h.tick(at(610)) // grace over
		h.mustBook(at(620), "u2", "r2", "A-1")
		recs, err := h.confirm(at(625), "r1", 1, "b1")
		wantCode(t, err, CodeReservationExpired)
		wantRecords(t, recs, "RefundRequested r1")
		b := h.ev.Bookings()
		if len(b) != 1 || b[0].CustomerID != "u2" {
			t.Fatalf("bookings %+v", b)
		}
		wantRecords(t, mustRecs(h.completeRefund(at(626), "r1", 1)), "PaymentRefunded r1")
		if h.status("A-1") != SeatBooked {
			t.Fatalf("refunding r1 touched A-1: %s", h.status("A-1"))
		}
		h.checkReplay()
	})
}

func TestBlockUnblock(t *testing.T) {
	h := newSmall(t)
	recs, err := h.block(at(0), "A-1", "A-2")
	wantCode(t, err, "")
	wantRecords(t, recs, "SeatsBlocked")
	if h.status("A-1") != SeatBlocked || h.ev.Counts().Blocked != 2 {
		t.Fatalf("after block: %s %+v", h.status("A-1"), h.ev.Counts())
	}
	// Idempotent, and only the changed seats are journaled.
	recs, err = h.block(at(1), "A-1", "A-2")
	wantCode(t, err, "")
	wantRecords(t, recs)
	recs, _ = h.block(at(1), "A-2", "A-3")
	wantRecords(t, recs, "SeatsBlocked")
	if !slices.Equal(recs[0].Seats, []int32{2}) {
		t.Fatalf("blocked %v, want [2]", recs[0].Seats)
	}
	// A blocked seat cannot be held.
	_, err = h.hold(at(1), "u1", "r1", "A-3", "A-4")
	wantCode(t, err, CodeSeatUnavailable)
	wantSeats(t, err, "A-3")

	// Reserved and paying seats: seat_held for block and unblock.
	h.mustHold(at(2), "u1", "r1", "A-4", "A-5")
	h.mustHold(at(2), "u2", "r2", "A-6")
	h.pay(at(2), "u2", "r2")
	_, err = h.block(at(3), "A-7", "A-4", "A-6", "A-5")
	wantCode(t, err, CodeSeatHeld)
	wantSeats(t, err, "A-4", "A-6", "A-5")
	if h.status("A-7") != SeatAvailable {
		t.Fatalf("rejected block changed A-7")
	}
	_, err = h.unblock(at(3), "A-1", "A-4")
	wantCode(t, err, CodeSeatHeld)
	wantSeats(t, err, "A-4")
	if h.status("A-1") != SeatBlocked {
		t.Fatalf("rejected unblock changed A-1")
	}
	// seat_held wins over booked.
	h.mustBook(at(3), "u3", "r3", "A-8")
	_, err = h.block(at(3), "A-8", "A-4")
	wantCode(t, err, CodeSeatHeld)
	// A booked seat cannot be blocked.
	_, err = h.block(at(3), "A-9", "A-8")
	wantCode(t, err, CodeSeatUnavailable)
	wantSeats(t, err, "A-8")
	if h.status("A-9") != SeatAvailable {
		t.Fatal("rejected block changed A-9")
	}
	// Unblocking a booked seat changes nothing.
	recs, err = h.unblock(at(3), "A-8")
	wantCode(t, err, "")
	wantRecords(t, recs)

	// Input errors.
	_, err = h.block(at(3))
	wantCode(t, err, CodeInvalidRequest)
	_, err = h.block(at(3), "A-9", "A-9")
	wantCode(t, err, CodeInvalidRequest)
	_, err = h.block(at(3), "Z-9", "Z-9")
	wantCode(t, err, CodeInvalidRequest)
	_, err = h.block(at(3), "A-9", "Z-1", "Z-2")
	wantCode(t, err, CodeSeatNotFound)
	wantSeats(t, err, "Z-1", "Z-2")
	_, err = h.unblock(at(3), "Z-1")
	wantCode(t, err, CodeSeatNotFound)

	// Once the hold lapses, its seats can be blocked in the same command.
	recs, err = h.block(at(62), "A-4", "A-5")
	wantCode(t, err, "")
	wantRecords(t, recs, "HoldReleased r1 expired", "SeatsBlocked")

	recs, err = h.unblock(at(63), "A-1", "A-2", "A-3", "A-4", "A-5", "A-9")
	wantCode(t, err, "")
	wantRecords(t, recs, "SeatsUnblocked")
	if got := len(recs[0].Seats); got != 5 {
		t.Fatalf("unblocked %d seats, want 5", got)
	}
	recs, _ = h.unblock(at(63), "A-1")
	wantRecords(t, recs)
	if c := h.ev.Counts(); c.Blocked != 0 {
		t.Fatalf("counts %+v", c)
	}
	h.mustHold(at(64), "u4", "r4", "A-1", "A-2")
	h.checkReplay()
}

func TestSeatChanges(t *testing.T) {
	seats := []int32{4, 1, 7}
	for _, tc := range []struct {
		typ  RecordType
		want SeatStatus
		none bool
	}{
		{RecordSeatsHeld, SeatReserved, false},
		{RecordHoldReleased, SeatAvailable, false},
		{RecordSeatsBooked, SeatBooked, false},
		{RecordSeatsBlocked, SeatBlocked, false},
		{RecordSeatsUnblocked, SeatAvailable, false},
		{RecordPaymentStarted, 0, true},
		{RecordPaymentFailed, 0, true},
		{RecordEventCreated, 0, true},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			prefix := []SeatChange{{Seat: 99, Status: SeatBooked}}
			rec := Record{Type: tc.typ, Seats: seats}
			got := SeatChanges(slices.Clone(prefix), &rec)
			var want []SeatChange
			want = append(want, prefix...)
			if !tc.none {
				for _, s := range seats {
					want = append(want, SeatChange{Seat: s, Status: tc.want})
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	// Applying the changes of every record of a run reproduces Statuses.
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1", "A-2")
	h.mustBook(at(1), "u2", "r2", "B-1")
	h.block(at(2), "B-5", "B-6")
	h.unblock(at(3), "B-6")
	h.mustHold(at(4), "u3", "r3", "B-6")
	h.tick(at(61))
	statuses := make([]SeatStatus, h.ev.Plan().Capacity())
	var changes []SeatChange
	for i := range h.recs {
		changes = SeatChanges(changes[:0], &h.recs[i])
		for _, c := range changes {
			statuses[c.Seat] = c.Status
		}
	}
	if !slices.Equal(statuses, h.ev.Statuses()) {
		t.Fatalf("seat changes give %v, event has %v", statuses, h.ev.Statuses())
	}
}

func TestBookingsOrder(t *testing.T) {
	h := newSmall(t)
	// r1 is created first but booked last; bookings are oldest (booked) first.
	h.mustHold(at(0), "u1", "r1", "A-1")
	h.pay(at(0), "u1", "r1")
	h.mustBook(at(10), "u2", "r2", "A-2", "A-3")
	h.mustBook(at(20), "u3", "r3", "B-1")
	if _, err := h.confirm(at(30), "r1", 1, "b-late"); err != nil {
		t.Fatal(err)
	}
	h.mustHold(at(40), "u4", "r4", "B-2") // not booked
	got := h.ev.Bookings()
	var ids []string
	for _, b := range got {
		ids = append(ids, b.ID)
	}
	if want := []string{"bk-r2", "bk-r3", "b-late"}; !slices.Equal(ids, want) {
		t.Fatalf("bookings %q, want %q", ids, want)
	}
	b := got[0]
	if b.ReservationID != "r2" || b.CustomerID != "u2" || !slices.Equal(b.Seats, []string{"A-2", "A-3"}) ||
		b.TotalCents != 10000 || !b.BookedAt.Equal(at(10)) {
		t.Fatalf("booking %+v", b)
	}
	// Same order after replay and after a snapshot restore.
	for name, ev := range map[string]*Event{"replay": h.replay(), "restore": restoreOf(t, h)} {
		var ids2 []string
		for _, b := range ev.Bookings() {
			ids2 = append(ids2, b.ID)
		}
		if !slices.Equal(ids2, ids) {
			t.Fatalf("%s: bookings %q, want %q", name, ids2, ids)
		}
	}
}

func restoreOf(t tb, h *harness) *Event {
	t.Helper()
	ev, err := RestoreEvent(h.recs[0], h.ev.MarshalSnapshot())
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return ev
}

func TestReservationsNewestFirst(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1")
	h.mustHold(at(1), "u1", "r2", "A-2")
	h.cancel(at(2), "u1", "r1")
	h.mustHold(at(3), "u1", "r3", "A-1")
	h.mustHold(at(3), "u2", "r4", "A-3")
	var ids []string
	for _, v := range h.ev.Reservations(at(3), "u1") {
		ids = append(ids, v.ID)
	}
	if want := []string{"r3", "r2", "r1"}; !slices.Equal(ids, want) {
		t.Fatalf("reservations %q, want %q", ids, want)
	}
	if got := h.ev.Reservations(at(3), "nobody"); len(got) != 0 {
		t.Fatalf("%+v", got)
	}
	// Reads see lapsed holds as expired.
	for _, v := range h.ev.Reservations(at(63), "u1") {
		if v.Status != StatusReleased {
			t.Fatalf("%s reads %s at t=63", v.ID, v.Status)
		}
	}
	// Operators see any reservation.
	if v, err := h.ev.ReservationByID(at(3), "r4"); err != nil || v.CustomerID != "u2" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := h.ev.ReservationByID(at(3), "nope"); CodeOf(err) != CodeReservationNotFound {
		t.Fatal(err)
	}
}

// TestReleasedRetainMax checks that past ReleasedRetainMax released
// reservations the oldest release is forgotten, and nothing else.
func TestReleasedRetainMax(t *testing.T) {
	def := smallDef()
	def.HoldTTLSeconds = HoldTTLSecondsMax
	ev, created, err := CreateEvent(def, t0)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	seats := []string{"A-1"}
	// One live hold and one booking survive the whole run.
	if _, _, err := ev.Hold(now, HoldRequest{ReservationID: "live", CustomerID: "keeper", SeatIDs: []string{"B-1"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := ReleasedRetainMax + 1
	for i := range n {
		id := "r" + fmt.Sprint(i)
		cust := "u" + fmt.Sprint(i%3)
		if _, _, err := ev.Hold(now, HoldRequest{ReservationID: id, CustomerID: cust, SeatIDs: seats}); err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
		if _, err := ev.Cancel(now, cust, id); err != nil {
			t.Fatalf("cancel %d: %v", i, err)
		}
	}
	t.Logf("%d hold+cancel cycles in %v", n, time.Since(start))
	if err := ev.CheckInvariants(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := len(ev.released); got != ReleasedRetainMax {
		t.Fatalf("%d released retained, want %d", got, ReleasedRetainMax)
	}
	if _, err := ev.Reservation(now, "u0", "r0"); CodeOf(err) != CodeReservationNotFound {
		t.Fatalf("oldest release still readable: %v", err)
	}
	if v, err := ev.Reservation(now, "u1", "r1"); err != nil || v.ReleaseReason != ReasonCancelled {
		t.Fatalf("second release: %+v %v", v, err)
	}
	if v, err := ev.Reservation(now, "keeper", "live"); err != nil || v.Status != StatusHeld {
		t.Fatalf("live hold: %+v %v", v, err)
	}
	if got := len(ev.Reservations(now, "u0")); got != (n+2)/3-1 {
		t.Fatalf("u0 has %d reservations, want %d", got, (n+2)/3-1)
	}
	// The forgotten reservation's id may be used again, and the snapshot
	// round-trips.
	snap := ev.MarshalSnapshot()
	back, err := RestoreEvent(created[0], snap)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.MarshalSnapshot(), snap) {
		t.Fatal("snapshot does not round-trip")
	}
	if _, _, err := ev.Hold(now, HoldRequest{ReservationID: "r0", CustomerID: "u0", SeatIDs: seats}); err != nil {
		t.Fatalf("reuse forgotten id: %v", err)
	}
}

func TestCreateEventValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(d *EventDefinition)
		want   Code
		in     string // substring of the message
	}{
		{"ok", func(d *EventDefinition) {}, "", ""},
		{"bad-id", func(d *EventDefinition) { d.ID = "a b" }, CodeInvalidRequest, "id"},
		{"long-id", func(d *EventDefinition) { d.ID = strings.Repeat("x", 65) }, CodeInvalidRequest, "id"},
		{"no-name", func(d *EventDefinition) { d.Name = " " }, CodeInvalidRequest, "name"},
		{"no-start", func(d *EventDefinition) { d.StartsAt = time.Time{} }, CodeInvalidRequest, "startsAt"},
		{"no-onsale", func(d *EventDefinition) { d.OnSaleAt = time.Time{} }, CodeInvalidRequest, "onSaleAt"},
		{"end-before-open", func(d *EventDefinition) { d.SalesEndAt = d.OnSaleAt }, CodeInvalidRequest, "salesEndAt"},
		{"ttl-zero", func(d *EventDefinition) { d.HoldTTLSeconds = 0 }, CodeInvalidRequest, "holdTtlSeconds"},
		{"ttl-huge", func(d *EventDefinition) { d.HoldTTLSeconds = HoldTTLSecondsMax + 1 }, CodeInvalidRequest, "holdTtlSeconds"},
		{"max-zero", func(d *EventDefinition) { d.MaxSeatsPerCustomer = 0 }, CodeInvalidRequest, "maxSeatsPerCustomer"},
		{"max-huge", func(d *EventDefinition) { d.MaxSeatsPerCustomer = 101 }, CodeInvalidRequest, "maxSeatsPerCustomer"},
		{"maxhold-short", func(d *EventDefinition) { d.MaxHoldSeconds = 30 }, CodeInvalidRequest, "maxHoldSeconds"},
		{"grace-negative", func(d *EventDefinition) { d.PaymentGraceSeconds = -1 }, CodeInvalidRequest, "paymentGraceSeconds"},
		{"currency", func(d *EventDefinition) { d.Currency = "eur" }, CodeInvalidRequest, "currency"},
		{"no-plan", func(d *EventDefinition) { d.SeatingPlan = nil }, CodeInvalidPlan, "seatingPlan"},
		{"bad-plan", func(d *EventDefinition) { d.SeatingPlan = []byte(`{"name":"x"}`) }, CodeInvalidPlan, "no seats"},
		{"unknown-price", func(d *EventDefinition) { d.Prices["Gold"] = 1 }, CodeInvalidRequest, "Gold"},
		{"negative-price", func(d *EventDefinition) { d.Prices["Premium"] = -1 }, CodeInvalidRequest, "Premium"},
		{"missing-price", func(d *EventDefinition) { delete(d.Prices, "Standard") }, CodeInvalidRequest, "Standard"},
		{"huge-price", func(d *EventDefinition) { d.Prices["Premium"] = 1 << 62 }, CodeInvalidRequest, "Premium"},
		{"starts-before-onsale", func(d *EventDefinition) { d.StartsAt = d.OnSaleAt }, CodeInvalidRequest, "startsAt"},
		{"starts-before-onsale-with-end", func(d *EventDefinition) {
			d.StartsAt, d.SalesEndAt = d.OnSaleAt.Add(-time.Hour), d.OnSaleAt.Add(time.Hour)
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := smallDef()
			tc.change(&def)
			ev, recs, err := CreateEvent(def, t0)
			wantCode(t, err, tc.want)
			if tc.want != "" {
				if ev != nil || recs != nil {
					t.Fatalf("rejected definition returned an event")
				}
				if !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("error %q does not name %q", err, tc.in)
				}
				return
			}
			if tc.name != "ok" {
				return
			}
			if len(recs) != 1 || recs[0].Seq != 1 || recs[0].Type != RecordEventCreated {
				t.Fatalf("records %+v", recs)
			}
			info := ev.Info()
			if info.Capacity != 20 || info.Counts.Available != 20 || info.Version != 1 || info.Venue != "Test Hall" ||
				info.MaxHoldSeconds != 180 || info.PaymentGraceSeconds != DefaultPaymentGraceSeconds ||
				len(info.Categories) != 2 || info.Categories[0] != (Category{Name: "Premium", Color: "#102030", PriceCents: 5000}) {
				t.Fatalf("info %+v", info)
			}
			if d := ev.Definition(); d.SeatingPlan != nil || d.ID != "ev-1" || d.Prices["Premium"] != 5000 {
				t.Fatalf("definition keeps its plan or lost its id or prices: %+v", d)
			}
			ev.Definition().Prices["Premium"] = 1 // the caller's copy
			if got := ev.Definition().Prices["Premium"]; got != 5000 {
				t.Fatalf("changing a returned definition changed the event's price to %d", got)
			}
		})
	}
}

// TestCheckInvariantsDetects breaks the event's internals one way at a time
// and expects CheckInvariants to notice: a checker that sees nothing proves
// nothing.
func TestCheckInvariantsDetects(t *testing.T) {
	build := func(t *testing.T) *harness {
		h := newSmall(t)
		h.mustHold(at(0), "u1", "r1", "A-1", "A-2")
		h.mustHold(at(1), "u2", "r2", "A-3")
		h.mustBook(at(2), "u3", "r3", "A-4")
		h.mustHold(at(3), "u1", "r4", "A-5")
		h.cancel(at(4), "u1", "r4")
		h.block(at(5), "B-1")
		return h
	}
	seat := func(h *harness, id string) int32 { i, _ := h.ev.Plan().SeatIndex(id); return i }
	for _, tc := range []struct {
		name   string
		break_ func(h *harness)
	}{
		{"counts", func(h *harness) { h.ev.counts.Available++ }},
		{"status-without-owner", func(h *harness) { h.ev.status[seat(h, "B-5")] = SeatReserved; h.ev.counts = Counts{14, 4, 1, 1} }},
		{"reserved-seat-released", func(h *harness) { h.ev.status[seat(h, "A-1")] = SeatAvailable; h.ev.counts = Counts{16, 2, 1, 1} }},
		{"holder", func(h *harness) { h.ev.holder[seat(h, "A-3")] = h.ev.reservations["r1"] }},
		{"holder-on-free-seat", func(h *harness) { h.ev.holder[seat(h, "B-9")] = h.ev.reservations["r1"] }},
		{"customer-seats", func(h *harness) { h.ev.customers["u1"].seats++ }},
		{"not-in-heap", func(h *harness) { h.ev.expiries.remove(h.ev.reservations["r2"]) }},
		{"heap-order", func(h *harness) { h.ev.expiries.Swap(0, 1) }},
		{"released-list", func(h *harness) { h.ev.released = h.ev.released[:0] }},
		{"booking-index", func(h *harness) { delete(h.ev.bookings, "bk-r3") }},
		{"customer-list", func(h *harness) { h.ev.customers["u1"].reservations = h.ev.customers["u1"].reservations[1:] }},
		{"reason-on-live", func(h *harness) { h.ev.reservations["r1"].reason = ReasonCancelled }},
		{"created-after-seq", func(h *harness) { h.ev.reservations["r4"].createdSeq = h.ev.seq + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := build(t)
			tc.break_(h)
			if err := h.ev.CheckInvariants(time.Time{}); err == nil {
				t.Fatal("CheckInvariants found nothing")
			} else {
				t.Log(err)
			}
		})
	}
	t.Run("lapsed-after-tick", func(t *testing.T) {
		h := build(t)
		if err := h.ev.CheckInvariants(at(59.999)); err != nil {
			t.Fatal(err)
		}
		if err := h.ev.CheckInvariants(at(60)); err == nil {
			t.Fatal("a live reservation past its expiry went unnoticed")
		}
	})
}

// TestCreateEventRecovers: every event CreateEvent accepts can be rebuilt
// from its EventCreated record after the journal codec, with the same read
// model. (A plan ParsePlan accepts but the record's binary plan encoding
// cannot carry would make the event unrecoverable.)
func TestCreateEventRecovers(t *testing.T) {
	edge := strings.NewReplacer(
		`"width": 100`, `"width": 16777216`,
		`"position": {"x": 10, "y": 20}`, `"position": {"x": 16777216, "y": -16777216}`,
		`"position": {"x": 5, "y": 0}`, `"position": {"x": 0, "y": 0}`,
		`"position": {"x": 10.4, "y": 0}`, `"position": {"x": -16777216, "y": 16777216}`,
		`"position": {"x": 5, "y": 30}`, `"position": {"x": -16777216, "y": 16777216}`,
	).Replace(planText)
	for name, plan := range map[string]json.RawMessage{
		"mini":      json.RawMessage(planText),
		"edge":      json.RawMessage(edge),
		"riverside": venueJSON(t, "riverside-concert-hall.json"),
		"stadium":   venueJSON(t, "harbour-stadium.json"),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePlan(plan)
			if err != nil {
				t.Fatal(err)
			}
			prices := map[string]int64{}
			for _, c := range p.Categories {
				prices[c.Name] = 100
			}
			ev, recs, err := CreateEvent(testDef(plan, prices), t0)
			if err != nil {
				t.Fatal(err)
			}
			created, err := DecodePayload(recs[0].Seq, recs[0].Type, recs[0].AppendPayload(nil))
			if err != nil {
				t.Fatal(err)
			}
			back, err := NewEvent(created)
			if err != nil {
				t.Fatalf("NewEvent: %v", err)
			}
			if a, b := fmt.Sprintf("%+v", back.Info()), fmt.Sprintf("%+v", ev.Info()); a != b {
				t.Fatalf("recovered info\n%s\nlive\n%s", a, b)
			}
			if !reflect.DeepEqual(normalPlan(back.Plan()), normalPlan(ev.Plan())) {
				t.Fatal("recovered plan differs")
			}
		})
	}
}

// TestRecordsDoNotAliasState: the caller owns the records it is given; if it
// reuses their Seats slices (sorting them for a seat-map delta, say), the
// event's own state must not change.
func TestRecordsDoNotAliasState(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1", "A-2")
	h.mustHold(at(0), "u2", "r2", "A-3", "A-4")
	h.mustHold(at(0), "u3", "r3", "A-5", "A-6")
	var recs []Record
	r, _ := h.cancel(at(1), "u1", "r1")
	recs = append(recs, r...)
	_, a, _ := h.pay(at(1), "u2", "r2")
	r, _ = h.confirm(at(1), "r2", a, "b2")
	recs = append(recs, r...)
	recs = append(recs, h.tick(at(60))...) // r3 expires
	before := h.ev.MarshalSnapshot()
	for _, rec := range recs {
		for i := range rec.Seats {
			rec.Seats[i] = 19
		}
	}
	if err := h.ev.CheckInvariants(time.Time{}); err != nil {
		t.Fatalf("mutating returned records broke the event: %v", err)
	}
	if !bytes.Equal(before, h.ev.MarshalSnapshot()) {
		t.Fatal("mutating returned records changed the event")
	}
}

// TestValidEventID: ids that URL normalisation would rewrite ("." and
// "..") or that could be mistaken for flags are refused.
func TestValidEventID(t *testing.T) {
	for id, want := range map[string]bool{
		"riverside-concert-hall": true, "a.b": true, "9": true,
		".": false, "..": false, ".hidden": false, "-x": false, "_x": false, "": false, "a/b": false, "a b": false,
	} {
		if got := ValidEventID(id); got != want {
			t.Errorf("ValidEventID(%q) = %v, want %v", id, got, want)
		}
	}
}

// wantTasks checks an event's payment tasks, each as "kind reservation attempt".
func wantTasks(t *testing.T, tasks []PaymentTask, want ...string) {
	t.Helper()
	var got []string
	for _, k := range tasks {
		got = append(got, fmt.Sprintf("%s %s %d", k.Kind, k.ReservationID, k.Attempt))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("payment tasks %q, want %q", got, want)
	}
}

func mustRecs(recs []Record, err error) []Record {
	if err != nil {
		panic(err)
	}
	return recs
}

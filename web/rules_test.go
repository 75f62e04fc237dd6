package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// The selling rules over HTTP: best available, orphan seats, re-holds and
// the hold lifetime, sale windows, and operators' changes (PATCH).

// bestHold asks for the best quantity seats, optionally of a category.
func (e *env) bestHold(token, eventID string, quantity int, category string, headers ...string) response {
	e.t.Helper()
	ba := map[string]any{"quantity": quantity}
	if category != "" {
		ba["category"] = category
	}
	return e.do(http.MethodPost, "/v1/reservations", token, map[string]any{"eventId": eventID, "bestAvailable": ba}, headers...)
}

func (e *env) patchEvent(token, eventID string, body any) response {
	e.t.Helper()
	return e.do(http.MethodPatch, "/v1/admin/events/"+eventID, token, body)
}

// restart replaces the actor system by a new one recovering from the same
// journal, as a process restart would.
func (e *env) restart() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.sys.Close(ctx); err != nil {
		e.t.Fatalf("close actors: %v", err)
	}
	sys, err := actors.Start(ctx, actors.Config{Journal: e.store, Clock: e.clock, Logger: testLogger(e.t), Feed: e.srv.Hub(), Payments: e.provider})
	if err != nil {
		e.t.Fatalf("restart actors: %v", err)
	}
	e.sys = sys
	e.srv.SetSystem(sys)
}

func (e *env) event(id string) engine.EventInfo {
	e.t.Helper()
	res := e.do(http.MethodGet, "/v1/events/"+id, "", nil)
	res.want(e.t, http.StatusOK)
	var info engine.EventInfo
	res.decode(e.t, &info)
	return info
}

func (e *env) reservation(token, id string) reservationView {
	e.t.Helper()
	res := e.do(http.MethodGet, "/v1/reservations/"+id, token, nil)
	res.want(e.t, http.StatusOK)
	var v reservationView
	res.decode(e.t, &v)
	return v
}

// TestCaseC02: no fast path skips the check. C01's race (two buyers, one
// seat, released together) with a TTL of 600 s, and again at t = 55 s with
// a TTL of 60 s while the seat is still held, for a seat of every category,
// by hand-picked seats, a re-hold and best available alike: the seat goes
// to one winner, always. Then pay races DELETE on one reservation: exactly
// one final state, every time.
func TestCaseC02(t *testing.T) {
	e := newEnv(t)
	seats := map[string]string{ // one seat of each Riverside category
		"Standard": "stalls-A-1", "Premium": "stalls-A-9", "Restricted View": "stalls-T-1", "Wheelchair": "stalls-WC-1",
	}
	u0, _ := e.session()
	u1, _ := e.session()
	u2, _ := e.session()
	race := func(calls ...func() response) []response {
		var wg sync.WaitGroup
		barrier := make(chan struct{})
		out := make([]response, len(calls))
		for i, call := range calls {
			wg.Go(func() {
				<-barrier
				out[i] = call()
			})
		}
		close(barrier)
		wg.Wait()
		return out
	}
	oneWinner := func(t *testing.T, what string, rs []response, seat string) {
		t.Helper()
		won := 0
		for _, r := range rs {
			switch r.status {
			case http.StatusCreated:
				won++
				var v reservationView
				r.decode(t, &v)
				if !slices.Equal(v.Seats, []string{seat}) {
					t.Fatalf("%s: the winner holds %v", what, v.Seats)
				}
			case http.StatusConflict:
				p := r.problem(t)
				if p.Code != string(engine.CodeSeatUnavailable) && p.Code != string(engine.CodeNoAdjacentSeats) {
					t.Fatalf("%s: loser got %s", what, r.body)
				}
			default:
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
		}
		if won != 1 {
			t.Fatalf("%s: %d winners", what, won)
		}
	}
	for _, ttl := range []int{600, 60} {
		for cat, seat := range seats {
			id := fmt.Sprintf("c02-%d-%s", ttl, strings.ReplaceAll(strings.ToLower(cat), " ", "-"))
			e.createEvent(id, func(m map[string]any) { m["holdTtlSeconds"] = ttl })
			start := e.clock.Now()
			if ttl == 60 {
				// U0 holds the seat at t = 0; at t = 55 it is still held:
				// neither racer gets it, by any path.
				r0 := e.mustHold(u0, id, seat)
				e.clock.Advance(55 * time.Second)
				rs := race(
					func() response { return e.hold(u1, id, seat) },
					func() response { return e.hold(u2, id, seat) },
					func() response { return e.hold(u0, id, seat) }, // U0's re-hold: its own seat
				)
				if rs[0].status != http.StatusConflict || rs[1].status != http.StatusConflict || rs[2].status != http.StatusCreated {
					t.Fatalf("%s at t=55: %d %d %d (%s)", id, rs[0].status, rs[1].status, rs[2].status, rs[2].body)
				}
				var again reservationView
				rs[2].decode(t, &again)
				if !again.ExpiresAt.After(r0.ExpiresAt) || again.ExpiresAt.After(start.Add(180*time.Second)) {
					t.Fatalf("%s: U0's re-hold expires at %v (first hold %v)", id, again.ExpiresAt, r0.ExpiresAt)
				}
				e.do(http.MethodDelete, "/v1/reservations/"+again.ID, u0, nil).want(t, http.StatusNoContent)
			}
			rs := race(
				func() response { return e.hold(u1, id, seat) },
				func() response { return e.hold(u2, id, seat) },
			)
			oneWinner(t, id, rs, seat)
		}
	}
	// Best available against hand-picked: one seat, one winner.
	for round := range 20 {
		id := fmt.Sprintf("c02-one-%d", round)
		e.createEvent(id, func(m map[string]any) {
			m["seatingPlan"] = onePlan
			m["prices"] = map[string]int64{"Standard": 5000}
		})
		oneWinner(t, id, race(
			func() response { return e.hold(u1, id, "A1") },
			func() response { return e.bestHold(u2, id, 1, "") },
		), "A1")
	}
	// Pay against DELETE on one reservation.
	e.createEvent("c02-pay", nil)
	for round := range 40 {
		seat := fmt.Sprintf("stalls-B-%d", round%20+1)
		if round >= 20 {
			seat = fmt.Sprintf("stalls-C-%d", round%20+1)
		}
		tok, _ := e.session()
		r := e.mustHold(tok, "c02-pay", seat)
		rs := race(
			func() response {
				return e.do(http.MethodPost, "/v1/reservations/"+r.ID+"/pay", tok, map[string]string{"paymentToken": "tok_visa"})
			},
			func() response { return e.do(http.MethodDelete, "/v1/reservations/"+r.ID, tok, nil) },
		)
		pay, del := rs[0], rs[1]
		final := e.reservation(tok, r.ID)
		switch {
		case pay.status == http.StatusOK && del.status == http.StatusConflict:
			code := del.problem(t).Code
			if final.Status != "booked" || (code != string(engine.CodeAlreadyBooked) && code != string(engine.CodePaymentInProgress)) {
				t.Fatalf("round %d: paid, delete %s, final %+v", round, del.body, final)
			}
		case del.status == http.StatusNoContent && pay.status == http.StatusConflict:
			if final.Status != "released" || final.ReleaseReason != "cancelled" || pay.problem(t).Code != string(engine.CodeReservationReleased) {
				t.Fatalf("round %d: cancelled, pay %s, final %+v", round, pay.body, final)
			}
		default:
			t.Fatalf("round %d: pay %d %s, delete %d %s", round, pay.status, pay.body, del.status, del.body)
		}
	}
	var bookings struct {
		Bookings []bookingView `json:"bookings"`
	}
	e.do(http.MethodGet, "/v1/admin/events/c02-pay/bookings", testAdminToken, nil).decode(t, &bookings)
	info := e.event("c02-pay")
	if info.Counts.Booked != len(bookings.Bookings) || info.Counts.Reserved != 0 {
		t.Fatalf("after the races: %d bookings, counts %+v", len(bookings.Bookings), info.Counts)
	}
}

// TestCaseC06: your own hold does not block you. U1 holds A1 (R1), payment
// is declined; U1 asks for A1 again: 201, a replacement made in one step
// (R1 reads released/cancelled), never "taken"; U1 never holds A1 twice;
// renewals stop at maxHoldSeconds from the first hold, after which U1 gets
// the same reservation back, and at the cap the seat goes back on sale.
func TestCaseC06(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c06", func(m map[string]any) { m["maxHoldSeconds"] = 150 }) // TTL 60
	u1, _ := e.session()
	u2, _ := e.session()
	start := e.clock.Now()
	r1 := e.mustHold(u1, "c06", "stalls-A-1")
	e.do(http.MethodPost, "/v1/reservations/"+r1.ID+"/pay", u1, map[string]string{"paymentToken": "tok_chargeDeclined"}).
		wantProblem(t, http.StatusPaymentRequired, engine.CodePaymentDeclined)
	e.clock.Advance(10 * time.Second)
	r2 := e.mustHold(u1, "c06", "stalls-A-1")
	if r2.ID == r1.ID || r2.Status != "held" || !r2.ExpiresAt.Equal(start.Add(70*time.Second)) {
		t.Fatalf("re-hold: %+v", r2)
	}
	if got := e.reservation(u1, r1.ID); got.Status != "released" || got.ReleaseReason != "cancelled" {
		t.Fatalf("R1 after the re-hold: %+v", got)
	}
	e.hold(u2, "c06", "stalls-A-1").wantProblem(t, http.StatusConflict, engine.CodeSeatUnavailable)
	// Renew until the cap: expiries 120 (t=60), 150 (t=100, capped), then
	// the same reservation comes back.
	prev := r2
	for _, step := range []struct{ at, expires time.Duration }{{60, 120}, {100, 150}} {
		e.clock.Set(start.Add(step.at * time.Second))
		r := e.mustHold(u1, "c06", "stalls-A-1")
		if r.ID == prev.ID || !r.ExpiresAt.Equal(start.Add(step.expires*time.Second)) {
			t.Fatalf("renewal at t=%d: %+v", step.at, r)
		}
		prev = r
	}
	e.clock.Set(start.Add(120 * time.Second))
	same := e.mustHold(u1, "c06", "stalls-A-1")
	if same.ID != prev.ID || !same.ExpiresAt.Equal(prev.ExpiresAt) {
		t.Fatalf("re-hold at the cap: %+v, want %s unchanged", same, prev.ID)
	}
	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations?eventId=c06", u1, nil).decode(t, &mine)
	live := 0
	for _, r := range mine.Reservations {
		if r.Status == "held" {
			live++
		}
	}
	if live != 1 || len(mine.Reservations) != 4 { // R1, R2 and two renewals
		t.Fatalf("U1's reservations: %+v", mine.Reservations)
	}
	// At the cap the hold lapses and the seat is sold to whoever asks.
	e.clock.Set(start.Add(150 * time.Second))
	e.waitSeat("c06", "stalls-A-1", "available")
	e.mustHold(u2, "c06", "stalls-A-1")
}

// TestBestAvailableConcurrent: 200 customers ask for the best 2 seats of a
// 300-seat plan at the same moment, over HTTP. Every winner holds two
// adjacent seats nobody else holds; every loser gets 409
// no_adjacent_seats; and afterwards no two adjacent seats are free — no
// loser was refused while a pair was left (nothing is ever released here).
func TestBestAvailableConcurrent(t *testing.T) {
	e := newEnv(t)
	e.createEvent("pairs", func(m map[string]any) {
		m["seatingPlan"] = enginetest.AislePlan(15)
		m["prices"] = map[string]int64{"Standard": 4000}
		m["holdTtlSeconds"] = 600
	})
	const customers = 200
	tokens := make([]string, customers)
	for i := range tokens {
		tokens[i], _ = e.session()
	}
	var wg sync.WaitGroup
	barrier := make(chan struct{})
	results := make([]response, customers)
	for i := range customers {
		wg.Go(func() {
			<-barrier
			results[i] = e.bestHold(tokens[i], "pairs", 2, "")
		})
	}
	close(barrier)
	wg.Wait()
	holder := map[string]int{}
	winners := 0
	for i, r := range results {
		if r.status != http.StatusCreated {
			r.wantProblem(t, http.StatusConflict, engine.CodeNoAdjacentSeats)
			continue
		}
		winners++
		var v reservationView
		r.decode(t, &v)
		if len(v.Seats) != 2 || !enginetest.AisleNeighbours(v.Seats[0], v.Seats[1]) {
			t.Fatalf("customer %d holds %v", i, v.Seats)
		}
		for _, s := range v.Seats {
			if other, dup := holder[s]; dup {
				t.Fatalf("seat %s held by customers %d and %d", s, other, i)
			}
			holder[s] = i
		}
	}
	e.waitSeat("pairs", "A-10", "reserved") // the map has caught up
	seats, _ := e.seatStatuses("pairs")
	for id, st := range seats {
		if _, held := holder[id]; held != (st == "reserved") {
			t.Fatalf("seat %s is %s; held by a winner: %v", id, st, held)
		}
	}
	for r := range 15 {
		for n := 1; n < 20; n++ {
			a, b := fmt.Sprintf("%c-%d", 'A'+r, n), fmt.Sprintf("%c-%d", 'A'+r, n+1)
			if enginetest.AisleNeighbours(a, b) && seats[a] == "available" && seats[b] == "available" {
				t.Fatalf("%d customers refused while %s and %s are both free", customers-winners, a, b)
			}
		}
	}
	if winners == customers || winners < 120 {
		t.Fatalf("%d winners of %d", winners, customers)
	}
	t.Logf("%d pairs held, %d refused", winners, customers-winners)
}

// TestBestAvailableHTTP: the request's shape, its errors in API.md's order,
// Idempotency-Key, and the orphan rule's problem document.
func TestBestAvailableHTTP(t *testing.T) {
	e := newEnv(t)
	e.createEvent("best", func(m map[string]any) { m["orphanSeats"] = "prevent" })
	tok, _ := e.session()
	res := e.bestHold(tok, "best", 2, "Premium")
	res.want(t, http.StatusCreated)
	var v reservationView
	res.decode(t, &v)
	if len(v.Seats) != 2 || v.TotalCents != 2*12000 || v.Status != "held" {
		t.Fatalf("best 2 Premium: %+v", v)
	}
	info := e.event("best")
	if info.OrphanSeats != "prevent" || info.Status != "active" || info.FocalPoint == (engine.FocalPoint{}) {
		t.Fatalf("event view: %+v", info)
	}
	// Replayed with its key: the same reservation, nothing more held.
	other, _ := e.session()
	first := e.bestHold(other, "best", 2, "", "Idempotency-Key", "k1")
	first.want(t, http.StatusCreated)
	again := e.bestHold(other, "best", 2, "", "Idempotency-Key", "k1")
	if again.status != http.StatusCreated || string(again.body) != string(first.body) {
		t.Fatalf("replay: %d %s, first %s", again.status, again.body, first.body)
	}
	for _, tt := range []struct {
		name   string
		body   map[string]any
		status int
		code   engine.Code
	}{
		{"over the per-customer maximum", map[string]any{"quantity": 5}, 400, engine.CodeInvalidRequest},
		{"zero", map[string]any{"quantity": 0}, 400, engine.CodeInvalidRequest},
		{"unknown category", map[string]any{"quantity": 1, "category": "Gold"}, 400, engine.CodeInvalidRequest},
		{"unknown zone", map[string]any{"quantity": 1, "zone": "Balcony"}, 400, engine.CodeInvalidRequest},
		{"unknown field", map[string]any{"quantity": 1, "row": "A"}, 400, engine.CodeInvalidRequest},
		{"limit", map[string]any{"quantity": 3}, 422, engine.CodeLimitExceeded},
		{"none left", map[string]any{"quantity": 2, "category": "Wheelchair", "zone": "Circle"}, 409, engine.CodeNoAdjacentSeats},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.do(http.MethodPost, "/v1/reservations", tok, map[string]any{"eventId": "best", "bestAvailable": tt.body}).
				wantProblem(t, tt.status, tt.code)
		})
	}
	e.do(http.MethodPost, "/v1/reservations", "", map[string]any{"eventId": "best", "bestAvailable": map[string]any{"quantity": 1}}).
		wantProblem(t, 401, codeUnauthenticated)
	e.do(http.MethodPost, "/v1/reservations", tok, map[string]any{"eventId": "nope", "bestAvailable": map[string]any{"quantity": 1}}).
		wantProblem(t, 404, engine.CodeEventNotFound)
	// A hand-picked hold stranding a seat: 409 orphan_seat naming it.
	third, _ := e.session()
	p := e.hold(third, "best", "stalls-B-2").wantProblem(t, http.StatusConflict, engine.CodeOrphanSeat)
	if !slices.Equal(p.OrphanSeats, []string{"stalls-B-1"}) {
		t.Fatalf("orphanSeats = %v", p.OrphanSeats)
	}
	e.mustHold(third, "best", "stalls-B-1", "stalls-B-2")
}

// TestPatchEvent: an operator's change over HTTP — strictly validated,
// effective at once (sale window, limits, orphan rule, focal point),
// journaled (it survives a restart), and cancelling stops all sales while
// bookings stay.
func TestPatchEvent(t *testing.T) {
	e := newEnv(t)
	e.createEvent("gala", nil)
	u1, _ := e.session()
	u2, _ := e.session()
	held := e.mustHold(u1, "gala", "stalls-A-1", "stalls-A-2")
	booked := e.mustHold(u2, "gala", "stalls-C-5")
	e.do(http.MethodPost, "/v1/reservations/"+booked.ID+"/pay", u2, map[string]string{"paymentToken": "tok_visa"}).want(t, 200)

	// Who may patch, and what.
	e.patchEvent("", "gala", map[string]any{"name": "x"}).wantProblem(t, 401, codeUnauthenticated)
	e.patchEvent(u1, "gala", map[string]any{"name": "x"}).wantProblem(t, 403, codeForbidden)
	e.patchEvent(testAdminToken, "nope", map[string]any{"name": "x"}).wantProblem(t, 404, engine.CodeEventNotFound)
	for _, tt := range []struct {
		body  string
		field string
	}{
		{`{"venue":"x"}`, `"venue"`},
		{`{"name":"x","name":"y"}`, `"name"`},
		{`{"Name":"x"}`, `"Name"`},
		{`{"name":null}`, "name"},
		{`{"name":3}`, "name"},
		{`{"holdTtlSeconds":"60"}`, "holdTtlSeconds"},
		{`{"holdTtlSeconds":0}`, "holdTtlSeconds"},
		{`{"maxSeatsPerCustomer":1000}`, "maxSeatsPerCustomer"},
		{`{"maxHoldSeconds":10}`, "maxHoldSeconds"},
		{`{"onSaleAt":"tomorrow"}`, "onSaleAt"},
		{`{"salesEndAt":"2000-01-01T00:00:00Z"}`, "salesEndAt"},
		{`{"orphanSeats":"sometimes"}`, "orphanSeats"},
		{`{"focalPoint":{"x":1}}`, "focalPoint"},
		{`{"focalPoint":{"x":1,"y":2,"z":3}}`, "focalPoint"},
		{`{"focalPoint":{"x":1e30,"y":2}}`, "focalPoint.x"},
		{`{"status":"active"}`, "status"},
		{`{"waitingRoom":{"enabled":true,"admitPerSecond":-5}}`, "waitingRoom.admitPerSecond"},
		{`{"waitingRoom":{"enabled":true,"admitPerSecond":5,"claimSeconds":0.5}}`, "waitingRoom"},
		{`{"customerId":"u"}`, "customerId"},
		{`[]`, "object"},
	} {
		p := e.patchEvent(testAdminToken, "gala", tt.body).wantProblem(t, 400, engine.CodeInvalidRequest)
		if !strings.Contains(p.Detail, tt.field) {
			t.Errorf("PATCH %s: detail %q does not name %s", tt.body, p.Detail, tt.field)
		}
	}

	// Effective at once: close sales early, lower the limit, prevent orphans.
	now := e.clock.Now()
	res := e.patchEvent(testAdminToken, "gala", map[string]any{
		"name": "Gala (moved)", "salesEndAt": now.Add(time.Minute), "maxSeatsPerCustomer": 2,
		"orphanSeats": "prevent", "focalPoint": map[string]any{"x": 100, "y": 1000}, "maxHoldSeconds": 120,
	})
	res.want(t, http.StatusOK)
	var info engine.EventInfo
	res.decode(t, &info)
	if info.Name != "Gala (moved)" || info.MaxSeatsPerCustomer != 2 || info.OrphanSeats != "prevent" ||
		info.FocalPoint != (engine.FocalPoint{X: 100, Y: 1000}) || info.MaxHoldSeconds != 120 || !info.SalesEndAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("PATCH answered %+v", info)
	}
	if got := e.event("gala"); got.Name != info.Name || got.Version != info.Version {
		t.Fatalf("GET after PATCH: %+v", got)
	}
	u3, _ := e.session()
	e.hold(u3, "gala", "stalls-D-1", "stalls-D-2", "stalls-D-3").wantProblem(t, 400, engine.CodeInvalidRequest)
	e.hold(u3, "gala", "stalls-D-2").wantProblem(t, 409, engine.CodeOrphanSeat)
	e.clock.Advance(time.Minute)
	e.hold(u3, "gala", "stalls-D-1").wantProblem(t, 409, engine.CodeSalesClosed)
	e.bestHold(u3, "gala", 1, "").wantProblem(t, 409, engine.CodeSalesClosed)
	// Reopen later; null resets what has a default.
	e.patchEvent(testAdminToken, "gala", map[string]any{"onSaleAt": e.clock.Now().Add(time.Hour), "salesEndAt": nil, "focalPoint": nil}).want(t, 200)
	e.hold(u3, "gala", "stalls-D-1").wantProblem(t, 409, engine.CodeSalesNotOpen)
	e.clock.Advance(time.Hour)
	info = e.event("gala")
	if !info.SalesEndAt.Equal(info.StartsAt) || info.FocalPoint == (engine.FocalPoint{X: 100, Y: 1000}) {
		t.Fatalf("after the resets: %+v", info)
	}
	live := e.mustHold(u3, "gala", "stalls-D-1", "stalls-D-2")
	if got := e.reservation(u1, held.ID); got.Status != "released" || got.ReleaseReason != "expired" {
		t.Fatalf("the first hold after an hour: %+v", got)
	}

	// Journaled: a restart recovers the changed event.
	e.restart()
	recovered, err := e.sys.Event(context.Background(), "gala")
	if err != nil || recovered.Name != "Gala (moved)" || recovered.MaxSeatsPerCustomer != 2 || recovered.OrphanSeats != "prevent" ||
		!recovered.OnSaleAt.Equal(info.OnSaleAt) || recovered.MaxHoldSeconds != 120 {
		t.Fatalf("after restart: %+v, %v", recovered, err)
	}

	// Cancel: live holds released (reason cancelled), the booking stays,
	// every way of holding answers event_cancelled.
	res = e.patchEvent(testAdminToken, "gala", map[string]any{"status": "cancelled"})
	res.want(t, http.StatusOK)
	res.decode(t, &info)
	if info.Status != "cancelled" || info.Counts.Reserved != 0 || info.Counts.Booked != 1 {
		t.Fatalf("cancel answered %+v", info)
	}
	if got := e.reservation(u3, live.ID); got.Status != "released" || got.ReleaseReason != "cancelled" {
		t.Fatalf("held reservation after cancel: %+v", got)
	}
	if got := e.reservation(u2, booked.ID); got.Status != "booked" {
		t.Fatalf("booking after cancel: %+v", got)
	}
	e.waitSeat("gala", "stalls-D-1", "available")
	e.hold(u1, "gala", "stalls-A-1").wantProblem(t, 409, engine.CodeEventCancelled)
	e.bestHold(u1, "gala", 1, "").wantProblem(t, 409, engine.CodeEventCancelled)
	e.patchEvent(testAdminToken, "gala", map[string]any{"status": "cancelled"}).want(t, 200)
	e.restart()
	if got := e.event("gala"); got.Status != "cancelled" {
		t.Fatalf("after another restart: %+v", got)
	}
	e.hold(u1, "gala", "stalls-A-1").wantProblem(t, 409, engine.CodeEventCancelled)
}

// FuzzEventPatch: the PATCH body decoder never panics, refuses with
// invalid_request only, and what it accepts is a patch the API allows: a
// known orphan rule, only "cancelled" as status, resets only of the fields
// that have defaults, never a field both set and reset.
func FuzzEventPatch(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"name":"x","holdTtlSeconds":60}`, `{"salesEndAt":null,"maxHoldSeconds":null,"focalPoint":null}`,
		`{"focalPoint":{"x":1,"y":2}}`, `{"status":"cancelled"}`, `{"orphanSeats":"prevent"}`,
		`{"onSaleAt":"2026-12-01T10:00:00Z","salesEndAt":"2026-12-02T10:00:00+01:00"}`,
		`{"waitingRoom":{"enabled":false}}`, `{"name":null}`, `{"x":1}`, `[]`, `{"name":"a","name":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeEventPatch(body)
		if err != nil {
			if engine.CodeOf(err) != engine.CodeInvalidRequest {
				t.Fatalf("error code %q: %v", engine.CodeOf(err), err)
			}
			return
		}
		switch {
		case p.OrphanSeats != nil && *p.OrphanSeats != engine.OrphanAllow && *p.OrphanSeats != engine.OrphanPrevent:
			t.Fatalf("orphanSeats %q accepted", *p.OrphanSeats)
		case p.Status != nil && *p.Status != engine.EventCancelled:
			t.Fatalf("status %q accepted", *p.Status)
		case p.FocalPoint != nil && slices.Contains(p.Reset, "focalPoint"),
			p.SalesEndAt != nil && slices.Contains(p.Reset, "salesEndAt"),
			p.MaxHoldSeconds != nil && slices.Contains(p.Reset, "maxHoldSeconds"):
			t.Fatalf("a field both set and reset: %+v", p)
		}
		for _, r := range p.Reset {
			if r != "salesEndAt" && r != "maxHoldSeconds" && r != "focalPoint" {
				t.Fatalf("reset of %q", r)
			}
		}
	})
}

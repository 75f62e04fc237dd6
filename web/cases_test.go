package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// onePlan is a pretix plan with one seat, A1.
var onePlan = json.RawMessage(`{"name":"One Seat Room","categories":[{"name":"Standard","color":"#2980b9"}],
 "zones":[{"name":"Room","position":{"x":0,"y":0},"rows":[{"row_number":"A","seats":[
  {"seat_guid":"A1","seat_number":"1","position":{"x":10,"y":10},"category":"Standard"}]}]}]}`)

// TestCaseC01: two buyers, one seat. Only A1 is available; U1 and U2 ask
// for it released together by a barrier, 500 times, each on a fresh event.
// Every round: exactly one 201 and one 409 seat_unavailable, A1 reserved by
// the winner, and the seat map never shows A1 held twice.
func TestCaseC01(t *testing.T) {
	e := newEnv(t)
	u1, _ := e.session()
	u2, _ := e.session()
	for round := range 500 {
		id := fmt.Sprintf("c01-%d", round)
		e.createEvent(id, func(m map[string]any) {
			m["seatingPlan"] = onePlan
			m["prices"] = map[string]int64{"Standard": 5000}
			m["holdTtlSeconds"] = 60
		})
		var wg sync.WaitGroup
		barrier := make(chan struct{})
		results := make([]response, 2)
		for i, tok := range []string{u1, u2} {
			wg.Go(func() {
				<-barrier
				results[i] = e.hold(tok, id, "A1")
			})
		}
		close(barrier)
		wg.Wait()
		statuses := []int{results[0].status, results[1].status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []int{201, 409}) {
			t.Fatalf("round %d: statuses %v: %s | %s", round, statuses, results[0].body, results[1].body)
		}
		winner := slices.IndexFunc(results, func(r response) bool { return r.status == 201 })
		results[1-winner].wantProblem(t, 409, engine.CodeSeatUnavailable)
		var won reservationView
		results[winner].decode(t, &won)
		if !slices.Equal(won.Seats, []string{"A1"}) || won.Status != "held" {
			t.Fatalf("round %d: winner %+v", round, won)
		}
		var ev engine.EventInfo
		e.do(http.MethodGet, "/v1/events/"+id, "", nil).decode(t, &ev)
		if ev.Counts.Reserved > 1 || ev.Counts.Reserved+ev.Counts.Available != 1 {
			t.Fatalf("round %d: seat map counts %+v", round, ev.Counts)
		}
		// The loser's reservations hold nothing; the winner's holds A1.
		loserTok := []string{u1, u2}[1-winner]
		var mine struct{ Reservations []reservationView }
		e.do(http.MethodGet, "/v1/reservations?eventId="+id, loserTok, nil).decode(t, &mine)
		if len(mine.Reservations) != 0 {
			t.Fatalf("round %d: the loser holds %+v", round, mine.Reservations)
		}
	}
}

// TestCaseC03: a hold is never overwritten. U1 holds A1 (R1); 100 ms later
// U2 asks for A1 and gets 409; U1 pays R1 and it books A1.
func TestCaseC03(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c03", nil)
	u1, _ := e.session()
	u2, _ := e.session()
	r1 := e.mustHold(u1, "c03", "stalls-A-1")
	e.clock.Advance(100 * time.Millisecond)
	p := e.hold(u2, "c03", "stalls-A-1").wantProblem(t, 409, engine.CodeSeatUnavailable)
	if !slices.Equal(p.UnavailableSeats, []string{"stalls-A-1"}) {
		t.Fatalf("unavailableSeats = %v", p.UnavailableSeats)
	}
	var got reservationView
	e.do(http.MethodGet, "/v1/reservations/"+r1.ID, u1, nil).decode(t, &got)
	if got.Status != "held" || !slices.Equal(got.Seats, []string{"stalls-A-1"}) {
		t.Fatalf("R1 after U2's attempt: %+v", got)
	}
	var paid reservationView
	e.do(http.MethodPost, "/v1/reservations/"+r1.ID+"/pay", u1, map[string]string{"paymentToken": "tok_visa"}).decode(t, &paid)
	if paid.Status != "booked" || paid.BookingID == "" {
		t.Fatalf("pay R1: %+v", paid)
	}
	e.waitSeat("c03", "stalls-A-1", "booked")
	var bookings struct {
		Bookings []struct {
			Seats []string `json:"seats"`
		} `json:"bookings"`
	}
	e.do(http.MethodGet, "/v1/admin/events/c03/bookings", testAdminToken, nil).decode(t, &bookings)
	if len(bookings.Bookings) != 1 || !slices.Equal(bookings.Bookings[0].Seats, []string{"stalls-A-1"}) {
		t.Fatalf("bookings = %+v", bookings)
	}
}

// TestCaseC12: a limit cannot be split. maxSeatsPerCustomer 4: U1's fifth
// one-seat reservation (some paid) → 422 limit_exceeded; a fresh customer's
// eight concurrent one-seat reservations → exactly four succeed; released
// holds give the allowance back.
func TestCaseC12(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c12", nil) // maxSeatsPerCustomer 4
	u1, _ := e.session()
	var held []reservationView
	for i := 1; i <= 4; i++ {
		r := e.mustHold(u1, "c12", fmt.Sprintf("stalls-B-%d", i))
		held = append(held, r)
		if i%2 == 0 {
			e.do(http.MethodPost, "/v1/reservations/"+r.ID+"/pay", u1, map[string]string{"paymentToken": "tok_visa"}).want(t, 200)
		}
	}
	e.hold(u1, "c12", "stalls-B-5").wantProblem(t, 422, engine.CodeLimitExceeded)
	// Cancelling an unpaid hold gives one seat back; booked seats keep counting.
	e.do(http.MethodDelete, "/v1/reservations/"+held[0].ID, u1, nil).want(t, 204)
	e.mustHold(u1, "c12", "stalls-B-5")
	e.hold(u1, "c12", "stalls-B-6").wantProblem(t, 422, engine.CodeLimitExceeded)

	u2, _ := e.session()
	var wg sync.WaitGroup
	barrier := make(chan struct{})
	results := make([]response, 8)
	for i := range 8 {
		wg.Go(func() {
			<-barrier
			results[i] = e.hold(u2, "c12", fmt.Sprintf("stalls-C-%d", i+1))
		})
	}
	close(barrier)
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch r.status {
		case 201:
			ok++
		case 422:
			r.wantProblem(t, 422, engine.CodeLimitExceeded)
		default:
			t.Fatalf("concurrent hold: %d %s", r.status, r.body)
		}
	}
	if ok != 4 {
		t.Fatalf("%d of 8 concurrent one-seat holds succeeded, want 4", ok)
	}
	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations?eventId=c12", u2, nil).decode(t, &mine)
	seats := 0
	for _, r := range mine.Reservations {
		if r.Status == "held" {
			seats += len(r.Seats)
		}
	}
	if seats != 4 {
		t.Fatalf("U2 holds %d seats, want 4", seats)
	}
}

// TestAcceptanceHoldPayBook is the core issue's acceptance walk over real
// HTTP: session → hold 2 seats → 201 with expiresAt; another customer
// holding one of them → 409 seat_unavailable listing it; pay with tok_visa →
// 200 booked; within 1 s GET seats shows both booked; DELETE on the booked
// reservation → 409 already_booked.
func TestAcceptanceHoldPayBook(t *testing.T) {
	e := newEnv(t)
	e.createEvent("walk", nil)
	u1, _ := e.session()
	u2, _ := e.session()
	res := e.hold(u1, "walk", "stalls-C-7", "stalls-C-8")
	res.want(t, 201)
	var r reservationView
	res.decode(t, &r)
	if r.ExpiresAt.IsZero() || !r.ExpiresAt.After(e.clock.Now()) || r.Status != "held" {
		t.Fatalf("hold: %s", res.body)
	}
	p := e.hold(u2, "walk", "stalls-C-8", "stalls-C-9").wantProblem(t, 409, engine.CodeSeatUnavailable)
	if !slices.Equal(p.UnavailableSeats, []string{"stalls-C-8"}) {
		t.Fatalf("unavailableSeats = %v, want [stalls-C-8]", p.UnavailableSeats)
	}
	var paid reservationView
	e.do(http.MethodPost, "/v1/reservations/"+r.ID+"/pay", u1, map[string]string{"paymentToken": "tok_visa"}).decode(t, &paid)
	if paid.Status != "booked" || paid.BookingID == "" {
		t.Fatalf("pay: %+v", paid)
	}
	deadline := time.Now().Add(time.Second)
	for {
		seats, _ := e.seatStatuses("walk")
		if seats["stalls-C-7"] == "booked" && seats["stalls-C-8"] == "booked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1 s the seat map shows %s and %s", seats["stalls-C-7"], seats["stalls-C-8"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.do(http.MethodDelete, "/v1/reservations/"+r.ID, u1, nil).wantProblem(t, 409, engine.CodeAlreadyBooked)
}

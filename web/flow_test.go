package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// TestReservationFlow walks one customer through API.md: event list, event,
// hold, read, list, decline, pay, bookings; and an operator's views.
func TestReservationFlow(t *testing.T) {
	e := newEnv(t)
	info := e.createEvent("flow", nil)
	if info.Venue != "Riverside Concert Hall" || info.Capacity != 1244 || len(info.Categories) != 4 || info.Counts.Available != 1244 {
		t.Fatalf("created %+v", info)
	}
	e.do(http.MethodPost, "/v1/admin/events", testAdminToken, e.eventBody("flow")).wantProblem(t, 409, engine.CodeEventExists)

	var list struct{ Events []eventSummaryView }
	e.do(http.MethodGet, "/v1/events", "", nil).decode(t, &list)
	if len(list.Events) != 1 || list.Events[0].ID != "flow" || list.Events[0].Available != 1244 || list.Events[0].Venue != "Riverside Concert Hall" {
		t.Fatalf("events = %+v", list)
	}
	e.do(http.MethodGet, "/v1/events/nope", "", nil).wantProblem(t, 404, engine.CodeEventNotFound)

	tok, _ := e.session()
	r := e.mustHold(tok, "flow", "stalls-A-1", "stalls-A-2")
	if r.Status != "held" || r.TotalCents != 13000 || r.Currency != "EUR" || !r.ExpiresAt.Equal(e.clock.Now().Add(60*time.Second)) {
		t.Fatalf("hold = %+v", r)
	}
	// GET /v1/events/{id} shows the hold at once (the hub is fed before the reply).
	var ev engine.EventInfo
	e.do(http.MethodGet, "/v1/events/flow", "", nil).decode(t, &ev)
	if ev.Counts.Reserved != 2 || ev.Counts.Available != 1242 {
		t.Fatalf("counts = %+v", ev.Counts)
	}

	var got reservationView
	e.do(http.MethodGet, "/v1/reservations/"+r.ID, tok, nil).decode(t, &got)
	if got.ID != r.ID || got.Status != "held" {
		t.Fatalf("get = %+v", got)
	}
	e.do(http.MethodPost, "/v1/reservations/"+r.ID+"/pay", tok, map[string]string{"paymentToken": "tok_chargeDeclined"}).
		wantProblem(t, 402, engine.CodePaymentDeclined)
	res := e.do(http.MethodPost, "/v1/reservations/"+r.ID+"/pay", tok, map[string]string{"paymentToken": "tok_visa"})
	res.want(t, 200)
	res.decode(t, &got)
	if got.Status != "booked" || got.BookingID == "" {
		t.Fatalf("paid = %+v", got)
	}
	e.do(http.MethodDelete, "/v1/reservations/"+r.ID, tok, nil).wantProblem(t, 409, engine.CodeAlreadyBooked)

	r2 := e.mustHold(tok, "flow", "stalls-B-1")
	e.do(http.MethodDelete, "/v1/reservations/"+r2.ID, tok, nil).want(t, 204)
	e.do(http.MethodDelete, "/v1/reservations/"+r2.ID, tok, nil).want(t, 204)
	e.do(http.MethodGet, "/v1/reservations/"+r2.ID, tok, nil).decode(t, &got)
	if got.Status != "released" || got.ReleaseReason != "cancelled" {
		t.Fatalf("cancelled = %+v", got)
	}
	e.do(http.MethodPost, "/v1/reservations/"+r2.ID+"/pay", tok, map[string]string{"paymentToken": "tok_visa"}).
		wantProblem(t, 409, engine.CodeReservationReleased)

	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations?eventId=flow", tok, nil).decode(t, &mine)
	if len(mine.Reservations) != 2 || mine.Reservations[0].ID != r2.ID {
		t.Fatalf("reservations = %+v", mine)
	}

	var bookings struct{ Bookings []bookingView }
	e.do(http.MethodGet, "/v1/admin/events/flow/bookings", testAdminToken, nil).decode(t, &bookings)
	if len(bookings.Bookings) != 1 || bookings.Bookings[0].ReservationID != r.ID || bookings.Bookings[0].Currency != "EUR" ||
		!slices.Equal(bookings.Bookings[0].Seats, []string{"stalls-A-1", "stalls-A-2"}) {
		t.Fatalf("bookings = %+v", bookings)
	}
	var admin adminReservationView
	e.do(http.MethodGet, "/v1/admin/reservations/"+r.ID, testAdminToken, nil).decode(t, &admin)
	if admin.CustomerID == "" || len(admin.Attempts) != 2 || admin.Status != "booked" ||
		admin.Attempts[0].State != "failed" || admin.Attempts[1].State != "succeeded" || admin.Attempts[1].PaymentRef == "" ||
		bookings.Bookings[0].PaymentRef != admin.Attempts[1].PaymentRef {
		t.Fatalf("admin view = %+v", admin)
	}
	e.do(http.MethodGet, "/v1/admin/reservations/rnope.flow", testAdminToken, nil).wantProblem(t, 404, engine.CodeReservationNotFound)
	e.waitSeat("flow", "stalls-A-1", "booked")
}

// TestBlockUnblock: operators withhold seats; a held seat cannot be blocked.
func TestBlockUnblock(t *testing.T) {
	e := newEnv(t)
	e.createEvent("blocks", nil)
	tok, _ := e.session()
	e.mustHold(tok, "blocks", "stalls-A-1")
	body := map[string]any{"seatIds": []string{"stalls-A-1", "stalls-A-2"}}
	p := e.do(http.MethodPost, "/v1/admin/events/blocks/block", testAdminToken, body).wantProblem(t, 409, engine.CodeSeatHeld)
	if !slices.Equal(p.SeatIDs, []string{"stalls-A-1"}) {
		t.Errorf("seatIds = %v", p.SeatIDs)
	}
	body = map[string]any{"seatIds": []string{"stalls-A-2", "stalls-A-3"}}
	res := e.do(http.MethodPost, "/v1/admin/events/blocks/block", testAdminToken, body)
	res.want(t, 200)
	if !strings.Contains(string(res.body), `"seatIds":["stalls-A-2","stalls-A-3"]`) {
		t.Errorf("block answer %s", res.body)
	}
	e.hold(tok, "blocks", "stalls-A-2").wantProblem(t, 409, engine.CodeSeatUnavailable)
	e.waitSeat("blocks", "stalls-A-3", "blocked")
	e.do(http.MethodPost, "/v1/admin/events/blocks/unblock", testAdminToken, body).want(t, 200)
	e.mustHold(tok, "blocks", "stalls-A-2")
	p = e.do(http.MethodPost, "/v1/admin/events/blocks/block", testAdminToken, map[string]any{"seatIds": []string{"nope"}}).
		wantProblem(t, 404, engine.CodeSeatNotFound)
	if !slices.Equal(p.UnknownSeats, []string{"nope"}) {
		t.Errorf("unknownSeats = %v", p.UnknownSeats)
	}
	e.do(http.MethodPost, "/v1/admin/events/nope/block", testAdminToken, body).wantProblem(t, 404, engine.CodeEventNotFound)
	e.do(http.MethodPost, "/v1/admin/events/blocks/block", testAdminToken, `{"seatIds":[]}`).wantProblem(t, 400, engine.CodeInvalidRequest)
}

// TestPrecedence: when several errors apply, the first of API.md's list wins.
func TestPrecedence(t *testing.T) {
	e := newEnv(t)
	e.createEvent("open", nil)
	e.createEvent("later", func(m map[string]any) { m["onSaleAt"] = e.clock.Now().Add(time.Hour) })
	tok, _ := e.session()
	other, _ := e.session()
	e.mustHold(other, "open", "stalls-A-1")
	e.mustHold(tok, "open", "stalls-B-1", "stalls-B-2", "stalls-B-3")
	big := make([]string, 10_000)
	for i := range big {
		big[i] = fmt.Sprintf("stalls-Z-%d", i)
	}
	five := []string{"nope-1", "nope-2", "nope-3", "nope-4", "nope-5"}

	tests := []struct {
		name   string
		token  string
		body   any
		status int
		code   engine.Code
	}{
		{"413 before 401", "", map[string]any{"eventId": "nope", "seatIds": big}, 413, codeBodyTooLarge},
		{"400 malformed before 401", "", `{"eventId":"nope","seatIds":["a","a"]}`, 400, engine.CodeInvalidRequest},
		{"400 customerId before 401", "", map[string]any{"eventId": "nope", "seatIds": []string{"a"}, "customerId": "x"}, 400, engine.CodeInvalidRequest},
		{"401 before 404 event", "", map[string]any{"eventId": "nope", "seatIds": []string{"a"}}, 401, codeUnauthenticated},
		{"404 event before 400 too many", tok, map[string]any{"eventId": "nope", "seatIds": five}, 404, engine.CodeEventNotFound},
		{"400 too many before 409 sales", tok, map[string]any{"eventId": "later", "seatIds": five}, 400, engine.CodeInvalidRequest},
		{"409 sales before 404 seat", tok, map[string]any{"eventId": "later", "seatIds": []string{"nope"}}, 409, engine.CodeSalesNotOpen},
		{"404 seat before 422 limit", tok, map[string]any{"eventId": "open", "seatIds": []string{"nope", "stalls-C-1"}}, 404, engine.CodeSeatNotFound},
		{"422 limit before 409 unavailable", tok, map[string]any{"eventId": "open", "seatIds": []string{"stalls-A-1", "stalls-C-1"}}, 422, engine.CodeLimitExceeded},
		{"409 unavailable", tok, map[string]any{"eventId": "open", "seatIds": []string{"stalls-A-1"}}, 409, engine.CodeSeatUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(http.MethodPost, "/v1/reservations", tt.token, tt.body).wantProblem(t, tt.status, tt.code)
		})
	}
	p := e.hold(tok, "open", "stalls-A-1").wantProblem(t, 409, engine.CodeSeatUnavailable)
	if !slices.Equal(p.UnavailableSeats, []string{"stalls-A-1"}) {
		t.Errorf("unavailableSeats = %v", p.UnavailableSeats)
	}
	p = e.hold(tok, "open", "zz-1").wantProblem(t, 404, engine.CodeSeatNotFound)
	if !slices.Equal(p.UnknownSeats, []string{"zz-1"}) {
		t.Errorf("unknownSeats = %v", p.UnknownSeats)
	}
	// A best-available quantity over maxSeatsPerCustomer (4) is a 400 too.
	e.do(http.MethodPost, "/v1/reservations", tok, map[string]any{"eventId": "open", "bestAvailable": map[string]any{"quantity": 5}}).
		wantProblem(t, 400, engine.CodeInvalidRequest)
}

// TestCaseC04: duplicate ids, an empty list, more ids than the per-customer
// maximum, and a 10,000-id body: rejected, no hold created, nothing counted
// against the customer.
func TestCaseC04(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c04", nil) // maxSeatsPerCustomer 4
	tok, _ := e.session()
	big := make([]string, 10_000)
	for i := range big {
		big[i] = fmt.Sprintf("stalls-A-%d", i+1)
	}
	e.hold(tok, "c04", "stalls-A-1", "stalls-A-1").wantProblem(t, 400, engine.CodeInvalidRequest)
	e.hold(tok, "c04").wantProblem(t, 400, engine.CodeInvalidRequest)
	e.hold(tok, "c04", "stalls-A-1", "stalls-A-2", "stalls-A-3", "stalls-A-4", "stalls-A-5").wantProblem(t, 400, engine.CodeInvalidRequest)
	e.hold(tok, "c04", big...).wantProblem(t, 413, codeBodyTooLarge)

	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations", tok, nil).decode(t, &mine)
	if len(mine.Reservations) != 0 {
		t.Fatalf("reservations after rejected holds: %+v", mine.Reservations)
	}
	var ev engine.EventInfo
	e.do(http.MethodGet, "/v1/events/c04", "", nil).decode(t, &ev)
	if ev.Counts.Available != ev.Capacity {
		t.Fatalf("counts = %+v", ev.Counts)
	}
	// The whole allowance is still there.
	e.mustHold(tok, "c04", "stalls-A-1", "stalls-A-2", "stalls-A-3", "stalls-A-4")
}

// TestCaseC05: a hold past its expiresAt is released for everyone at once,
// whether or not the expiry timer has run, and the seat map follows.
func TestCaseC05(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c05", func(m map[string]any) { m["holdTtlSeconds"] = 2 })
	u1, _ := e.session()
	u2, _ := e.session()
	r1 := e.mustHold(u1, "c05", "stalls-A-1", "stalls-A-2")
	e.clock.Advance(2*time.Second + time.Millisecond)

	e.mustHold(u2, "c05", "stalls-A-1")
	var got reservationView
	e.do(http.MethodGet, "/v1/reservations/"+r1.ID, u1, nil).decode(t, &got)
	if got.Status != "released" || got.ReleaseReason != "expired" {
		t.Fatalf("R1 = %+v", got)
	}
	e.do(http.MethodPost, "/v1/reservations/"+r1.ID+"/pay", u1, map[string]string{"paymentToken": "tok_visa"}).
		wantProblem(t, 410, engine.CodeReservationExpired)
	e.waitSeat("c05", "stalls-A-2", "available")
	e.waitSeat("c05", "stalls-A-1", "reserved")
}

// TestCaseC16: another customer's reservation is invisible (404 for GET,
// pay and DELETE, R1 unchanged) and a body naming a customer is refused.
func TestCaseC16(t *testing.T) {
	e := newEnv(t)
	e.createEvent("c16", nil)
	u1, c1 := e.session()
	u2, _ := e.session()
	r1 := e.mustHold(u1, "c16", "stalls-A-1")
	e.do(http.MethodGet, "/v1/reservations/"+r1.ID, u2, nil).wantProblem(t, 404, engine.CodeReservationNotFound)
	e.do(http.MethodPost, "/v1/reservations/"+r1.ID+"/pay", u2, map[string]string{"paymentToken": "tok_visa"}).
		wantProblem(t, 404, engine.CodeReservationNotFound)
	e.do(http.MethodDelete, "/v1/reservations/"+r1.ID, u2, nil).wantProblem(t, 404, engine.CodeReservationNotFound)
	e.do(http.MethodPost, "/v1/reservations", u2, map[string]any{"eventId": "c16", "seatIds": []string{"stalls-A-2"}, "customerId": c1}).
		wantProblem(t, 400, engine.CodeInvalidRequest)
	var got reservationView
	e.do(http.MethodGet, "/v1/reservations/"+r1.ID, u1, nil).decode(t, &got)
	if got.Status != "held" || !slices.Equal(got.Seats, []string{"stalls-A-1"}) {
		t.Fatalf("R1 changed: %+v", got)
	}
	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations", u2, nil).decode(t, &mine)
	if len(mine.Reservations) != 0 {
		t.Fatalf("U2 sees %+v", mine.Reservations)
	}
}

// TestAdminCreateEvent: body limits by caller, precedence, plan errors.
func TestAdminCreateEvent(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.session()
	full := e.eventBody("limits") // ~224 KB with the Riverside plan
	e.do(http.MethodPost, "/v1/admin/events", "", full).wantProblem(t, 413, codeBodyTooLarge)
	e.do(http.MethodPost, "/v1/admin/events", tok, full).wantProblem(t, 413, codeBodyTooLarge)
	small := `{"name":"x","startsAt":"2030-01-01T00:00:00Z","onSaleAt":"2029-01-01T00:00:00Z","holdTtlSeconds":60,"maxSeatsPerCustomer":4,"currency":"EUR","prices":{},"seatingPlan":{"name":"x"}}`
	e.do(http.MethodPost, "/v1/admin/events", "", small).wantProblem(t, 401, codeUnauthenticated)
	e.do(http.MethodPost, "/v1/admin/events", tok, small).wantProblem(t, 403, codeForbidden)
	e.do(http.MethodPost, "/v1/admin/events", "", `{"name":`).wantProblem(t, 400, engine.CodeInvalidRequest)

	huge := `{"name":"` + strings.Repeat("x", adminBodyBytesMax) + `"}`
	e.do(http.MethodPost, "/v1/admin/events", testAdminToken, huge).wantProblem(t, 413, codeBodyTooLarge)

	badPlan := e.eventBody("bad-plan")
	badPlan["seatingPlan"] = json.RawMessage(strings.Replace(string(riversidePlan), `"seat_guid": "stalls-A-2"`, `"seat_guid": "stalls-A-1"`, 1))
	p := e.do(http.MethodPost, "/v1/admin/events", testAdminToken, badPlan).wantProblem(t, 400, engine.CodeInvalidPlan)
	if !strings.Contains(p.Detail, "stalls-A-1") {
		t.Errorf("detail %q does not name the seat", p.Detail)
	}
	noPrice := e.eventBody("no-price")
	noPrice["prices"] = map[string]int64{"Premium": 1}
	e.do(http.MethodPost, "/v1/admin/events", testAdminToken, noPrice).wantProblem(t, 400, engine.CodeInvalidRequest)
	room := e.eventBody("room")
	room["waitingRoom"] = map[string]any{"enabled": true, "admitPerSecond": 0}
	p = e.do(http.MethodPost, "/v1/admin/events", testAdminToken, room).wantProblem(t, 400, engine.CodeInvalidRequest)
	if !strings.Contains(p.Detail, "waitingRoom.admitPerSecond") {
		t.Errorf("detail %q does not name waitingRoom.admitPerSecond", p.Detail)
	}

	noID := e.eventBody("")
	delete(noID, "id")
	res := e.do(http.MethodPost, "/v1/admin/events", testAdminToken, noID)
	res.want(t, 201)
	var info engine.EventInfo
	res.decode(t, &info)
	if !strings.HasPrefix(info.ID, "test-night-at-riverside-concert-hall-") || res.header.Get("Location") != "/v1/events/"+info.ID {
		t.Errorf("generated id %q, Location %q", info.ID, res.header.Get("Location"))
	}
	e.do(http.MethodGet, "/v1/events/"+info.ID, "", nil).want(t, 200)
}

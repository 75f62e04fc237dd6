package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// The waiting room over HTTP (API.md, Waiting room; CASES.md C13, C14).
// Time is the env's ManualClock: the event actor ticks its room once a
// simulated second, so tests advance the clock a second at a time.

type visitor struct {
	token, customer, ticket string
	last                    ticketView
}

// createRoomEvent creates an event on the Riverside plan with its waiting
// room on, on sale since a minute ago.
func (e *env) createRoomEvent(id string, room map[string]any) {
	e.t.Helper()
	room["enabled"] = true
	e.createEvent(id, func(b map[string]any) { b["waitingRoom"] = room })
}

func (e *env) join(eventID string, v *visitor) {
	e.t.Helper()
	if v.token == "" {
		v.token, v.customer = e.session()
	}
	res := e.do(http.MethodPost, "/v1/events/"+eventID+"/queue", v.token, nil)
	res.want(e.t, http.StatusCreated)
	res.decode(e.t, &v.last)
	v.ticket = v.last.Ticket
}

func (e *env) poll(eventID string, v *visitor) ticketView {
	e.t.Helper()
	res := e.do(http.MethodGet, "/v1/events/"+eventID+"/queue/"+v.ticket, v.token, nil)
	res.want(e.t, http.StatusOK)
	v.last = ticketView{}
	res.decode(e.t, &v.last)
	return v.last
}

// tick advances the clock one second and waits until the event actor has
// ticked its room (its answer to a later request comes after the tick).
func (e *env) tick(eventID string) {
	e.t.Helper()
	e.clock.Advance(time.Second)
	e.event(eventID) // queued behind the tick the clock just sent
}

func position(v ticketView) int {
	if v.Position == nil {
		return 0
	}
	return *v.Position
}

// TestCaseC14: A, B, C, D join (1–4); B leaves; E joins. A=1, C=2, D=3,
// E=4 — unique, in join order; C joining again keeps its place.
func TestCaseC14(t *testing.T) {
	e := newEnv(t)
	e.createRoomEvent("c14", map[string]any{"admitPerSecond": 0.001})
	e.tick("c14") // the draw (of nobody): later arrivals queue in arrival order
	vs := map[string]*visitor{}
	for _, name := range []string{"A", "B", "C", "D"} {
		vs[name] = &visitor{}
		e.join("c14", vs[name])
	}
	for i, name := range []string{"A", "B", "C", "D"} {
		if p := e.poll("c14", vs[name]); p.Status != "waiting" || position(p) != i+1 {
			t.Fatalf("%s: %+v, want waiting at %d", name, p, i+1)
		}
	}
	e.do(http.MethodDelete, "/v1/events/c14/queue/"+vs["B"].ticket, vs["B"].token, nil).want(t, http.StatusNoContent)
	e.do(http.MethodDelete, "/v1/events/c14/queue/"+vs["B"].ticket, vs["B"].token, nil).want(t, http.StatusNoContent)
	vs["E"] = &visitor{}
	e.join("c14", vs["E"])
	for name, want := range map[string]int{"A": 1, "C": 2, "D": 3, "E": 4} {
		if p := e.poll("c14", vs[name]); position(p) != want {
			t.Errorf("%s at %d, want %d", name, position(p), want)
		}
	}
	if p := e.poll("c14", vs["B"]); p.Status != "expired" || p.Reason != "left" {
		t.Errorf("B reads %s (%s), want expired (left)", p.Status, p.Reason)
	}
	cTicket := vs["C"].ticket
	e.join("c14", vs["C"])
	if vs["C"].ticket != cTicket || position(vs["C"].last) != 2 {
		t.Fatalf("C joining again: ticket %s at %d, want %s at 2", vs["C"].ticket, position(vs["C"].last), cTicket)
	}
	// Another customer cannot read or delete C's ticket.
	other, _ := e.session()
	e.do(http.MethodGet, "/v1/events/c14/queue/"+cTicket, other, nil).wantProblem(t, http.StatusNotFound, engine.CodeTicketNotFound)
	e.do(http.MethodDelete, "/v1/events/c14/queue/"+cTicket, other, nil).wantProblem(t, http.StatusNotFound, engine.CodeTicketNotFound)
	// An event without a room has no queue.
	e.createEvent("no-room", nil)
	e.do(http.MethodPost, "/v1/events/no-room/queue", other, nil).wantProblem(t, http.StatusNotFound, engine.CodeTicketNotFound)
}

// TestCaseC13: ten may shop at a time; 30 join; 1–10 are admitted;
// 11–20 stop polling before their turn; 1–10 finish. 21–30 are admitted
// within the claim deadline plus one tick; unclaimed admissions are taken
// back.
func TestCaseC13(t *testing.T) {
	e := newEnv(t)
	e.createRoomEvent("c13", map[string]any{"admitPerSecond": 100, "maxActive": 10, "claimSeconds": 30})
	e.tick("c13")
	vs := make([]*visitor, 30)
	for i := range vs {
		vs[i] = &visitor{}
		e.join("c13", vs[i])
	}
	e.tick("c13")
	for i, v := range vs {
		p := e.poll("c13", v)
		if admitted := p.Status == "admitted"; admitted != (i < 10) {
			t.Fatalf("visitor %d: %s after the first tick", i+1, p.Status)
		}
	}
	// Holding needs the admission token; 1–10 each buy a seat and are done.
	seats := e.seatIDs("c13")
	e.hold(vs[10].token, "c13", seats[40]).wantProblem(t, http.StatusForbidden, engine.CodeAdmissionRequired)
	for i, v := range vs[:10] {
		res := e.do(http.MethodPost, "/v1/reservations", v.token, map[string]any{"eventId": "c13", "seatIds": []string{seats[i]}},
			"Admission-Token", v.last.AdmissionToken)
		res.want(t, http.StatusCreated)
		var r reservationView
		res.decode(t, &r)
		e.pay(v.token, r.ID, "tok_visa").want(t, http.StatusOK)
	}
	start := e.clock.Now()
	var claimBy time.Time
	for s := 0; s < 45; s++ {
		e.tick("c13")
		for _, v := range vs[20:] { // 21–30 keep polling; 11–20 stopped
			e.poll("c13", v)
		}
		if claimBy.IsZero() {
			for _, v := range vs[10:20] {
				if p := e.poll("c13", v); p.ClaimBy != nil && claimBy.IsZero() {
					claimBy = *p.ClaimBy
				}
			}
		}
		all := true
		for _, v := range vs[20:] {
			all = all && v.last.Status == "admitted"
		}
		if all {
			if !claimBy.IsZero() && e.clock.Now().After(claimBy.Add(time.Second)) {
				t.Fatalf("21–30 admitted at %s, after the claim deadline %s plus one tick", e.clock.Now(), claimBy)
			}
			t.Logf("21–30 admitted %s after 1–10 finished", e.clock.Now().Sub(start))
			return
		}
	}
	t.Fatalf("21–30 not all admitted after 45 s: %+v", vs[20].last)
}

// TestWaitingRoomSoldOut: once the last seat is booked, every waiting
// visitor reads sold_out at the next poll, and nobody else is admitted.
func TestWaitingRoomSoldOut(t *testing.T) {
	e := newEnv(t)
	e.createRoomEvent("so", map[string]any{"admitPerSecond": 1000})
	e.tick("so")
	seats := e.seatIDs("so")
	// Block all but four seats, so that one buyer sells the event out.
	admin := e.do(http.MethodPost, "/v1/admin/events/so/block", testAdminToken, map[string]any{"seatIds": seats[4:]})
	admin.want(t, http.StatusOK)
	vs := make([]*visitor, 12)
	for i := range vs {
		vs[i] = &visitor{}
		e.join("so", vs[i])
	}
	e.tick("so")
	var buyer *visitor
	for _, v := range vs {
		if e.poll("so", v).Status == "admitted" {
			buyer = v
			break
		}
	}
	if buyer == nil {
		t.Fatal("nobody admitted")
	}
	res := e.do(http.MethodPost, "/v1/reservations", buyer.token, map[string]any{"eventId": "so", "seatIds": seats[:4]},
		"Admission-Token", buyer.last.AdmissionToken)
	res.want(t, http.StatusCreated)
	var r reservationView
	res.decode(t, &r)
	e.pay(buyer.token, r.ID, "tok_visa").want(t, http.StatusOK)
	e.tick("so")
	for i, v := range vs {
		if v == buyer {
			continue
		}
		if p := e.poll("so", v); p.Status != "sold_out" && !(p.Status == "admitted" && p.AdmissionToken != "") {
			t.Errorf("visitor %d reads %s after the sell-out", i, p.Status)
		}
	}
	// And nobody waiting is admitted later.
	waiting := 0
	for _, v := range vs {
		if v.last.Status == "sold_out" {
			waiting++
		}
	}
	for range 3 {
		e.tick("so")
	}
	for _, v := range vs {
		if v.last.Status == "sold_out" {
			if p := e.poll("so", v); p.Status != "sold_out" {
				t.Errorf("a sold-out visitor now reads %s", p.Status)
			}
		}
	}
	if waiting == 0 {
		t.Fatal("no visitor was waiting when the event sold out")
	}
}

// TestWaitingRoomRestartAndTokens: after a restart every customer has the
// same ticket and a position no larger than before, and an admission token
// issued before it is honoured. Forged, foreign and expired tokens are
// refused; a token's budget bounds the seats.
func TestWaitingRoomRestartAndTokens(t *testing.T) {
	e := newEnv(t)
	e.createRoomEvent("rs", map[string]any{"admitPerSecond": 1, "maxActive": 2, "claimSeconds": 60, "admissionTtlSeconds": 120})
	e.tick("rs")
	vs := make([]*visitor, 8)
	for i := range vs {
		vs[i] = &visitor{}
		e.join("rs", vs[i])
	}
	e.tick("rs")
	before := map[string]ticketView{}
	var admitted *visitor
	for _, v := range vs {
		p := e.poll("rs", v)
		before[v.ticket] = p
		if p.Status == "admitted" && admitted == nil {
			admitted = v
		}
	}
	if admitted == nil {
		t.Fatal("nobody admitted")
	}
	e.restart()
	for _, v := range vs {
		p := e.poll("rs", v)
		b := before[v.ticket]
		if p.Ticket != v.ticket || (b.Status == "waiting" && (p.Status == "waiting" && position(p) > position(b))) {
			t.Errorf("after the restart %s: %+v, before %+v", v.ticket, p, b)
		}
	}
	seats := e.seatIDs("rs")
	token := before[admitted.ticket].AdmissionToken
	hold := func(v *visitor, tok string, ids ...string) response {
		return e.do(http.MethodPost, "/v1/reservations", v.token, map[string]any{"eventId": "rs", "seatIds": ids}, "Admission-Token", tok)
	}
	hold(admitted, token+"x", seats[0]).wantProblem(t, http.StatusForbidden, engine.CodeAdmissionRequired)
	hold(vs[7], token, seats[0]).wantProblem(t, http.StatusForbidden, engine.CodeAdmissionRequired) // another customer's token
	hold(admitted, token, seats[:5]...).wantProblem(t, http.StatusBadRequest, engine.CodeInvalidRequest)
	hold(admitted, token, seats[0]).want(t, http.StatusCreated) // issued before the restart
	hold(admitted, token, seats[1], seats[2], seats[3]).want(t, http.StatusCreated)
	hold(admitted, token, seats[4]).wantProblem(t, http.StatusUnprocessableEntity, engine.CodeAdmissionBudgetExceeded)
	// Past its expiry: admission_required, reason expired.
	e.clock.Advance(121 * time.Second)
	p := hold(admitted, token, seats[5]).wantProblem(t, http.StatusForbidden, engine.CodeAdmissionRequired)
	if p.Reason != "expired" {
		t.Fatalf("expired token: reason %q", p.Reason)
	}
}

// seatIDs lists an event's seat ids in plan order.
func (e *env) seatIDs(eventID string) []string {
	e.t.Helper()
	var m struct{ Seats []struct{ ID string } }
	e.do(http.MethodGet, "/v1/events/"+eventID+"/seats", "", nil).decode(e.t, &m)
	ids := make([]string, len(m.Seats))
	for i, s := range m.Seats {
		ids[i] = s.ID
	}
	return ids
}

// TestWaitingRoomPatch: operators change the room during the sale: a
// higher maxActive admits more at the next tick; an event without a room
// gets one by PATCH.
func TestWaitingRoomPatch(t *testing.T) {
	e := newEnv(t)
	e.createRoomEvent("pt", map[string]any{"admitPerSecond": 100, "maxActive": 1})
	e.tick("pt")
	vs := make([]*visitor, 5)
	for i := range vs {
		vs[i] = &visitor{}
		e.join("pt", vs[i])
	}
	admitted := func() int {
		n := 0
		for _, v := range vs {
			if e.poll("pt", v).Status == "admitted" {
				n++
			}
		}
		return n
	}
	e.tick("pt")
	if n := admitted(); n != 1 {
		t.Fatalf("%d admitted with maxActive 1", n)
	}
	e.patchEvent(testAdminToken, "pt", map[string]any{"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": 100, "maxActive": 3}}).want(t, http.StatusOK)
	e.tick("pt")
	if n := admitted(); n != 3 {
		t.Fatalf("%d admitted after raising maxActive to 3", n)
	}
	// A room added to a selling event gates its holds from then on.
	e.createEvent("later", nil)
	u, _ := e.session()
	seats := e.seatIDs("later")
	e.hold(u, "later", seats[0]).want(t, http.StatusCreated)
	e.patchEvent(testAdminToken, "later", map[string]any{"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": 1}}).want(t, http.StatusOK)
	e.hold(u, "later", seats[1]).wantProblem(t, http.StatusForbidden, engine.CodeAdmissionRequired)
}

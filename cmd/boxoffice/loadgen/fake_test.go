package loadgen

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeServer speaks the parts of API.md the generator uses, for what the
// real server (tested end to end in cmd/boxoffice/load_test.go) cannot show
// yet or on purpose: a waiting room (not built yet), a deliberately slow
// server, a server without a waiting room behind an event that claims
// one. It keeps one event of rows×10 seats, two categories (row 0 is
// "Front", the rest "Back"), no expiry and no per-customer limit.
type fakeServer struct {
	t     *testing.T
	delay time.Duration // every buyer request takes this long
	room  *fakeRoom     // nil: no waiting room
	// claimRoomOnly: the event page says there is a room, but the queue
	// endpoints do not exist (a server from before the waiting room).
	claimRoomOnly bool

	mu        sync.Mutex
	ids       []string
	status    map[string]string
	version   uint64
	changes   []map[string]string // changes[v-1]: the change of version v
	res       map[string]*fakeReservation
	bookings  []Booking
	customers int
	// Checks the tests read.
	holdsWithoutAdmission int
	earlyPolls            int
	leaves                int
}

type fakeRoom struct {
	pollAfter      time.Duration
	admitAfterPoll int // polls before a visitor is admitted
	tickets        map[string]*fakeTicket
}

type fakeTicket struct {
	customer string
	polls    int
	next     time.Time // no poll before this
	token    string
}

type fakeReservation struct {
	customer, status string
	seats            []string
}

const fakeEvent = "fake-hall"

func newFakeServer(t *testing.T, rows int) (*fakeServer, string) {
	f := &fakeServer{t: t, status: map[string]string{}, res: map[string]*fakeReservation{}}
	for r := range rows {
		for n := range 10 {
			id := fmt.Sprintf("r%d-%d", r, n)
			f.ids = append(f.ids, id)
			f.status[id] = "available"
		}
	}
	srv := httptest.NewServer(f.routes())
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeServer) category(id string) string {
	if strings.HasPrefix(id, "r0-") {
		return "Front"
	}
	return "Back"
}

func (f *fakeServer) problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "code": code, "title": code})
}

func (f *fakeServer) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// set changes seats as one new version; f.mu is held.
func (f *fakeServer) set(st string, seats ...string) {
	ch := map[string]string{}
	for _, s := range seats {
		f.status[s] = st
		ch[s] = st
	}
	f.version++
	f.changes = append(f.changes, ch)
}

func (f *fakeServer) counts() (available, reserved, booked int) {
	for _, st := range f.status {
		switch st {
		case "available":
			available++
		case "reserved":
			reserved++
		case "booked":
			booked++
		}
	}
	return
}

func (f *fakeServer) routes() http.Handler {
	mux := http.NewServeMux()
	slow := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(f.delay)
			h(w, r)
		}
	}
	mux.HandleFunc("GET /v1/events/{id}", slow(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		av, re, bo := f.counts()
		ev := map[string]any{
			"id": fakeEvent, "name": "Fake night", "venue": "Fake Hall", "capacity": len(f.ids),
			"onSaleAt": time.Now().Add(-time.Hour), "holdTtlSeconds": 600, "maxSeatsPerCustomer": 8,
			"categories": []map[string]any{{"name": "Back", "priceCents": 1000}, {"name": "Front", "priceCents": 5000}},
			"counts":     map[string]int{"available": av, "reserved": re, "booked": bo},
		}
		if f.room != nil || f.claimRoomOnly {
			ev["waitingRoom"] = map[string]any{"enabled": true}
		}
		f.json(w, 200, ev)
	}))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("GET /v1/events/{id}/seats", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var seats []map[string]any
		for i, id := range f.ids {
			row, num, _ := strings.Cut(strings.TrimPrefix(id, "r"), "-")
			seats = append(seats, map[string]any{"id": id, "zone": "Hall", "row": row, "number": num,
				"x": float64(i % 10), "y": float64(i / 10), "category": f.category(id), "status": f.status[id]})
		}
		f.json(w, 200, map[string]any{"eventId": fakeEvent, "version": f.version, "seats": seats})
	})
	mux.HandleFunc("GET /v1/events/{id}/live", f.live)
	mux.HandleFunc("POST /v1/sessions", slow(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.customers++
		n := f.customers
		f.mu.Unlock()
		f.json(w, 201, map[string]any{"token": fmt.Sprintf("cust-%d", n), "customerId": fmt.Sprintf("c%d", n)})
	}))
	mux.HandleFunc("POST /v1/events/{id}/queue", slow(f.join))
	mux.HandleFunc("GET /v1/events/{id}/queue/{ticket}", slow(f.poll))
	mux.HandleFunc("DELETE /v1/events/{id}/queue/{ticket}", slow(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.room == nil {
			f.problem(w, 404, "not_found")
			return
		}
		if tk, ok := f.room.tickets[r.PathValue("ticket")]; ok && tk.customer == bearer(r) {
			f.leaves++
		}
		w.WriteHeader(204)
	}))
	mux.HandleFunc("POST /v1/reservations", slow(f.hold))
	mux.HandleFunc("POST /v1/reservations/{id}/pay", slow(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		res, ok := f.res[r.PathValue("id")]
		if !ok || res.customer != bearer(r) {
			f.problem(w, 404, "reservation_not_found")
			return
		}
		if res.status != "booked" {
			res.status = "booked"
			f.set("booked", res.seats...)
			f.bookings = append(f.bookings, Booking{ID: "bk-" + r.PathValue("id"), ReservationID: r.PathValue("id"), Seats: res.seats})
		}
		f.json(w, 200, map[string]any{"id": r.PathValue("id"), "status": "booked", "seats": res.seats, "bookingId": "bk-" + r.PathValue("id")})
	}))
	mux.HandleFunc("DELETE /v1/reservations/{id}", slow(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if res, ok := f.res[r.PathValue("id")]; ok && res.status == "held" {
			res.status = "released"
			f.set("available", res.seats...)
		}
		w.WriteHeader(204)
	}))
	mux.HandleFunc("GET /v1/admin/events/{id}/bookings", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.json(w, 200, map[string]any{"bookings": f.bookings})
	})
	return mux
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (f *fakeServer) hold(w http.ResponseWriter, r *http.Request) {
	var req holdRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.problem(w, 400, "invalid_request")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.room != nil {
		tok := r.Header.Get("Admission-Token")
		ok := false
		for _, tk := range f.room.tickets {
			if tk.token != "" && tk.token == tok && tk.customer == bearer(r) {
				ok = true
			}
		}
		if !ok {
			f.holdsWithoutAdmission++
			f.problem(w, 403, "admission_required")
			return
		}
	}
	var seats []string
	if req.BestAvailable != nil {
		for _, id := range f.ids {
			if f.status[id] == "available" && (req.BestAvailable.Category == "" || f.category(id) == req.BestAvailable.Category) {
				seats = append(seats, id)
				if len(seats) == req.BestAvailable.Quantity {
					break
				}
			}
		}
		if len(seats) < req.BestAvailable.Quantity {
			f.problem(w, 409, "no_adjacent_seats")
			return
		}
	} else {
		for _, id := range req.SeatIDs {
			if f.status[id] != "available" {
				f.problem(w, 409, "seat_unavailable")
				return
			}
		}
		seats = req.SeatIDs
	}
	id := fmt.Sprintf("res-%d", len(f.res)+1)
	f.res[id] = &fakeReservation{customer: bearer(r), status: "held", seats: slices.Clone(seats)}
	f.set("reserved", seats...)
	f.json(w, 201, map[string]any{"id": id, "eventId": fakeEvent, "status": "held", "seats": seats})
}

func (f *fakeServer) ticketView(id string, tk *fakeTicket) map[string]any {
	av, re, _ := f.counts()
	v := map[string]any{"ticket": id, "position": len(f.room.tickets), "etaSeconds": 1, "pollAfterSeconds": f.room.pollAfter.Seconds()}
	switch {
	case av == 0 && re == 0:
		v["status"] = "sold_out"
	case tk.polls >= f.room.admitAfterPoll:
		tk.token = "adm-" + id
		v["status"], v["admissionToken"] = "admitted", tk.token
	default:
		v["status"] = "waiting"
	}
	tk.next = time.Now().Add(f.room.pollAfter)
	return v
}

func (f *fakeServer) join(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.room == nil {
		f.problem(w, 404, "not_found")
		return
	}
	for id, tk := range f.room.tickets {
		if tk.customer == bearer(r) {
			f.json(w, 201, f.ticketView(id, tk))
			return
		}
	}
	id := fmt.Sprintf("t%d", len(f.room.tickets)+1)
	tk := &fakeTicket{customer: bearer(r)}
	f.room.tickets[id] = tk
	f.json(w, 201, f.ticketView(id, tk))
}

func (f *fakeServer) poll(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.room == nil {
		f.problem(w, 404, "not_found")
		return
	}
	tk, ok := f.room.tickets[r.PathValue("ticket")]
	if !ok || tk.customer != bearer(r) {
		f.problem(w, 404, "ticket_not_found")
		return
	}
	if time.Now().Before(tk.next) {
		f.earlyPolls++
	}
	tk.polls++
	f.json(w, 200, f.ticketView(r.PathValue("ticket"), tk))
}

// live sends a snapshot, then a delta every 20 ms while anything changed.
func (f *fakeServer) live(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	gone := make(chan struct{})
	go func() { // notice the client going away
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	defer func() { conn.Close(); <-gone }()
	f.mu.Lock()
	snap := map[string]any{"type": "snapshot", "version": f.version, "seats": maps.Clone(f.status)}
	sent := f.version
	f.mu.Unlock()
	if conn.WriteJSON(snap) != nil {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return
		case <-tick.C:
		}
		f.mu.Lock()
		if f.version == sent {
			f.mu.Unlock()
			continue
		}
		ch := map[string]string{}
		for _, c := range f.changes[sent:f.version] {
			for k, v := range c {
				ch[k] = v
			}
		}
		msg := map[string]any{"type": "delta", "from": sent, "version": f.version, "changes": ch}
		sent = f.version
		f.mu.Unlock()
		if conn.WriteJSON(msg) != nil {
			return
		}
	}
}

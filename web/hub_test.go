package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
)

func testPlan(t *testing.T) *engine.Plan {
	t.Helper()
	p, err := engine.ParsePlan(riversidePlan)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHub: Reset, Apply in version order, stale and bad changes ignored,
// counts kept, unavailable events hidden.
func TestHub(t *testing.T) {
	plan := testPlan(t)
	h := NewHub(nil)
	statuses := make([]engine.SeatStatus, plan.Capacity())
	statuses[0] = engine.SeatBooked
	h.Reset("e1", 5, plan, engine.EventInfo{ID: "e1", Name: "E1", Capacity: plan.Capacity()}, statuses)
	statuses[1] = engine.SeatBooked // the hub keeps its own copy

	h.Apply("e1", 6, []engine.SeatChange{{Seat: 1, Status: engine.SeatReserved}, {Seat: 2, Status: engine.SeatBlocked}})
	h.Apply("e1", 6, []engine.SeatChange{{Seat: 3, Status: engine.SeatReserved}}) // stale: ignored
	h.Apply("e1", 9, []engine.SeatChange{{Seat: -1}, {Seat: 1 << 30}, {Seat: 1}}) // bad seats ignored, seat 1 back
	h.Apply("nope", 9, nil)

	info, ok, err := h.event("e1")
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	want := engine.Counts{Available: plan.Capacity() - 2, Booked: 1, Blocked: 1}
	if info.Counts != want || info.Version != 9 {
		t.Fatalf("counts %+v version %d, want %+v 9", info.Counts, info.Version, want)
	}
	if h.staleApplies.Load() != 1 || h.badSeats.Load() != 2 {
		t.Errorf("stale %d bad %d", h.staleApplies.Load(), h.badSeats.Load())
	}
	body, current, ok, err := h.seats("e1")
	if !ok || err != nil || body.version != 9 || current != 9 {
		t.Fatalf("seats: %v %v %d %d", ok, err, body.version, current)
	}
	var m struct {
		EventID string
		Version uint64
		Seats   []struct {
			ID, Zone, Row, Number, Category, Status string
			X, Y                                    int
		}
	}
	var plain bytes.Buffer
	if err := body.writeJSON(&plain); err != nil {
		t.Fatal(err)
	}
	if plain.Len() != body.size {
		t.Fatalf("uncompressed %d bytes, size says %d", plain.Len(), body.size)
	}
	if err := json.Unmarshal(plain.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	s0 := plan.Seats[0]
	if m.EventID != "e1" || m.Version != 9 || len(m.Seats) != plan.Capacity() ||
		m.Seats[0].ID != s0.ID || m.Seats[0].Status != "booked" || m.Seats[2].Status != "blocked" || m.Seats[1].Status != "available" ||
		m.Seats[0].Row != plan.Rows[s0.Row].Name || m.Seats[0].Zone != plan.Zones[plan.Rows[s0.Row].Zone] ||
		m.Seats[0].Category != plan.Categories[s0.Category].Name || m.Seats[0].X != int(s0.X) || m.Seats[0].Number != s0.Number {
		t.Fatalf("seat map %+v ... first seat %+v", m.EventID, m.Seats[0])
	}
	zr, err := gzip.NewReader(bytes.NewReader(body.gzip))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain.Bytes()) {
		t.Fatal("gzip body differs")
	}
	if again, _, _, _ := h.seats("e1"); again != body {
		t.Error("unchanged seat map encoded twice")
	}

	h.Unavailable("e1", errors.New("corrupt"))
	h.Unavailable("e2", errors.New("corrupt"))
	if _, ok, err := h.event("e2"); !ok || engine.CodeOf(err) != "event_unavailable" {
		t.Errorf("e2: %v %v", ok, err)
	}
	if _, _, _, err := h.seats("e1"); engine.CodeOf(err) != "event_unavailable" {
		t.Errorf("e1 seats: %v", err)
	}
	if list := h.eventList(); len(list) != 0 || h.unavailableCount() != 2 {
		t.Errorf("list %v, unavailable %d", list, h.unavailableCount())
	}
}

// TestSeatsETag: the seat map carries its version as ETag; If-None-Match
// with it answers 304 until a durable change moves the version.
func TestSeatsETag(t *testing.T) {
	e := newEnv(t)
	e.createEvent("etag", nil)
	res := e.do(http.MethodGet, "/v1/events/etag/seats", "", nil)
	res.want(t, 200)
	tag := res.header.Get("ETag")
	if tag != `"1"` {
		t.Fatalf("ETag = %q, want \"1\"", tag)
	}
	e.do(http.MethodGet, "/v1/events/etag/seats", "", nil, "If-None-Match", tag).want(t, 304)
	e.do(http.MethodGet, "/v1/events/etag/seats", "", nil, "If-None-Match", `"0", W/`+tag).want(t, 304)

	gz := e.do(http.MethodGet, "/v1/events/etag/seats", "", nil, "Accept-Encoding", "gzip")
	if gz.header.Get("Content-Encoding") != "gzip" || len(gz.body) >= len(res.body)/4 {
		t.Errorf("gzip: %q, %d bytes of %d", gz.header.Get("Content-Encoding"), len(gz.body), len(res.body))
	}

	tok, _ := e.session()
	e.mustHold(tok, "etag", "stalls-A-1")
	e.waitSeat("etag", "stalls-A-1", "reserved")
	_, newTag := e.seatStatuses("etag")
	if newTag == tag || newTag == "" {
		t.Fatalf("ETag after a hold = %q (before %q)", newTag, tag)
	}
	e.do(http.MethodGet, "/v1/events/etag/seats", "", nil, "If-None-Match", tag).want(t, 200)
	e.do(http.MethodGet, "/v1/events/etag/seats", "", nil, "If-None-Match", newTag).want(t, 304)
	e.do(http.MethodGet, "/v1/events/nope/seats", "", nil).wantProblem(t, 404, engine.CodeEventNotFound)
}

// stadiumEncoding returns the stadium's plan encoding and an all-available
// status array.
func stadiumEncoding(b *testing.B) (*planEncoding, []engine.SeatStatus) {
	data, err := os.ReadFile("../testdata/venues/harbour-stadium.json")
	if err != nil {
		b.Fatal(err)
	}
	plan, err := engine.ParsePlan(data)
	if err != nil {
		b.Fatal(err)
	}
	return newPlanEncoding(plan), make([]engine.SeatStatus, plan.Capacity())
}

// BenchmarkSeatMapEncode measures one encoding of the 48,568-seat stadium map.
func BenchmarkSeatMapEncode(b *testing.B) {
	enc, statuses := stadiumEncoding(b)
	var out []byte
	for b.Loop() {
		out = enc.appendSeatMap(out[:0], "harbour-stadium", 1, statuses)
	}
	b.ReportMetric(float64(len(out)), "bytes/map")
}

// BenchmarkSeatMapRender measures what the hub does per new version it
// serves: encode the stadium map and gzip it.
func BenchmarkSeatMapRender(b *testing.B) {
	enc, statuses := stadiumEncoding(b)
	var out, gz []byte
	for b.Loop() {
		out = enc.appendSeatMap(out[:0], "harbour-stadium", 1, statuses)
		gz = compress(out, int64(len(gz)))
	}
	b.ReportMetric(float64(len(gz)), "gzip-bytes/map")
}

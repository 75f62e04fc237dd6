package web

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// TestIdempotencyKey: the same key and body replay the first answer, another
// body is refused, concurrent repeats make one hold, and keys are per
// customer.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.createEvent("idem", nil)
	u1, _ := e.session()
	u2, _ := e.session()
	body := `{"eventId":"idem","seatIds":["stalls-A-1"]}`

	first := e.do(http.MethodPost, "/v1/reservations", u1, body, "Idempotency-Key", "k1")
	first.want(t, 201)
	again := e.do(http.MethodPost, "/v1/reservations", u1, body, "Idempotency-Key", "k1")
	again.want(t, 201)
	if string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" ||
		again.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
	}
	e.do(http.MethodPost, "/v1/reservations", u1, `{"eventId":"idem","seatIds":["stalls-A-2"]}`, "Idempotency-Key", "k1").
		wantProblem(t, 422, codeIdempotencyKeyReused)
	// Another customer's key space is separate: U2 asking for the same seat is a real (losing) hold.
	e.do(http.MethodPost, "/v1/reservations", u2, body, "Idempotency-Key", "k1").wantProblem(t, 409, engine.CodeSeatUnavailable)
	// A rejection is an answer too, and is replayed.
	e.do(http.MethodPost, "/v1/reservations", u2, body, "Idempotency-Key", "k1").wantProblem(t, 409, engine.CodeSeatUnavailable)

	// Concurrent repeats: one hold, the same answer for all.
	const n = 8
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() {
			results[i] = e.do(http.MethodPost, "/v1/reservations", u2, `{"eventId":"idem","seatIds":["stalls-B-1"]}`, "Idempotency-Key", "k2")
		})
	}
	wg.Wait()
	for _, r := range results {
		r.want(t, 201)
		if string(r.body) != string(results[0].body) {
			t.Fatalf("concurrent answers differ:\n%s\n%s", results[0].body, r.body)
		}
	}
	var mine struct{ Reservations []reservationView }
	e.do(http.MethodGet, "/v1/reservations", u2, nil).decode(t, &mine)
	if len(mine.Reservations) != 1 {
		t.Fatalf("U2 has %d reservations, want 1", len(mine.Reservations))
	}

	// Pay: a declined payment replays as declined; a new key pays.
	var r reservationView
	first.decode(t, &r)
	pay := "/v1/reservations/" + r.ID + "/pay"
	e.do(http.MethodPost, pay, u1, `{"paymentToken":"tok_chargeDeclined"}`, "Idempotency-Key", "p1").wantProblem(t, 402, engine.CodePaymentDeclined)
	e.do(http.MethodPost, pay, u1, `{"paymentToken":"tok_chargeDeclined"}`, "Idempotency-Key", "p1").wantProblem(t, 402, engine.CodePaymentDeclined)
	e.do(http.MethodPost, pay, u1, `{"paymentToken":"tok_visa"}`, "Idempotency-Key", "p1").wantProblem(t, 422, codeIdempotencyKeyReused)
	paid := e.do(http.MethodPost, pay, u1, `{"paymentToken":"tok_visa"}`, "Idempotency-Key", "p2")
	paid.want(t, 200)
	replayed := e.do(http.MethodPost, pay, u1, `{"paymentToken":"tok_visa"}`, "Idempotency-Key", "p2")
	if replayed.status != 200 || string(replayed.body) != string(paid.body) {
		t.Fatalf("pay replay: %d %s", replayed.status, replayed.body)
	}
	// The same key on another route is a reuse.
	e.do(http.MethodPost, "/v1/reservations", u1, `{"eventId":"idem","seatIds":["stalls-C-1"]}`, "Idempotency-Key", "p2").
		wantProblem(t, 422, codeIdempotencyKeyReused)
}

// TestIdempotencyStoreBounds: entries lapse after the TTL, the oldest go
// first past the bound, and 5xx answers are not kept.
func TestIdempotencyStoreBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newIdempotencyStore(func() time.Time { return now })
	fp := sha256.Sum256([]byte("a"))
	e, owner := s.claim("k", fp)
	if !owner {
		t.Fatal("first claim not owner")
	}
	ok := newCapturedResponse()
	ok.WriteHeader(201)
	s.finish(e, ok)
	if e2, owner := s.claim("k", fp); owner || e2.resp != ok {
		t.Fatal("kept response not found")
	}
	now = now.Add(idempotencyTTL)
	if _, owner := s.claim("k", fp); !owner {
		t.Fatal("entry outlived its TTL")
	}
	e, _ = s.claim("fail", fp)
	bad := newCapturedResponse()
	bad.WriteHeader(503)
	s.finish(e, bad)
	if _, owner := s.claim("fail", fp); !owner {
		t.Fatal("a 503 answer was kept")
	}
	for i := range idempotencyEntriesMax + 10 {
		s.claim(fmt.Sprint(i), fp)
	}
	if n := len(s.entries); n > idempotencyEntriesMax || s.order.Len() != n {
		t.Fatalf("%d entries (list %d), bound %d", n, s.order.Len(), idempotencyEntriesMax)
	}
	if _, owner := s.claim("0", fp); !owner {
		t.Fatal("the oldest entry was not evicted")
	}
}

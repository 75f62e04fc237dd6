package web

// Attack tests: adversarial and failure-path checks pinned down while
// trying to break the server (see the attack report).

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// slowJournal delays Append by delay (when set), like an fsync stall.
type slowJournal struct {
	*persistence.Store
	delay atomic.Int64 // nanoseconds
}

func (j *slowJournal) Append(eventID string, expectedSeq uint64, recs []engine.Record) error {
	if d := time.Duration(j.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	return j.Store.Append(eventID, expectedSeq, recs)
}

// newSlowEnv is newEnv with a journal whose appends can be slowed and an
// actor request timeout of requestTimeout.
func newSlowEnv(t *testing.T, requestTimeout time.Duration) (*env, *slowJournal) {
	t.Helper()
	var j *slowJournal
	e := newEnvWith(t, func(c *actors.Config) {
		j = &slowJournal{Store: c.Journal.(*persistence.Store)}
		c.Journal, c.RequestTimeout = j, requestTimeout
	})
	return e, j
}

// TestAttackIdempotentHoldRetryAfterTimeout: a hold whose journal write is
// slower than the actor request timeout answers 503 timeout, but the hold is
// decided and becomes durable a moment later. The idempotency store treats
// every 5xx as "nothing was decided" and forgets the key, so the client's
// retry with the same Idempotency-Key and the same body runs the hold again
// and is refused for its own seats (409 seat_unavailable): the customer now
// holds seats under a reservation id it was never told, and the retry that
// Idempotency-Key exists for fails. Expected: the retry answers 201 with the
// reservation the first attempt created (or, at the least, the customer is
// never left with a live reservation the retry did not report).
func TestAttackIdempotentHoldRetryAfterTimeout(t *testing.T) {
	e, j := newSlowEnv(t, 150*time.Millisecond)
	e.createEvent("idem-timeout", nil)
	token, _ := e.session()
	body := map[string]any{"eventId": "idem-timeout", "seatIds": []string{"stalls-A-1", "stalls-A-2"}}

	j.delay.Store(int64(500 * time.Millisecond))
	first := e.do(http.MethodPost, "/v1/reservations", token, body, "Idempotency-Key", "k-timeout")
	time.Sleep(700 * time.Millisecond) // the slow append completes
	j.delay.Store(0)
	t.Logf("first attempt: %d %s", first.status, first.body)

	// With a 150 ms request timeout a loaded machine (-race, other
	// packages' tests) can time out the retry too: the client retries on
	// 503, as Idempotency-Key is for, and so does the check.
	untilAnswered := func(method, path string, body any, header ...string) response {
		var r response
		for range 20 {
			if r = e.do(method, path, token, body, header...); r.status != http.StatusServiceUnavailable {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return r
	}
	retry := untilAnswered(http.MethodPost, "/v1/reservations", body, "Idempotency-Key", "k-timeout")
	t.Logf("retry with the same key: %d %s", retry.status, retry.body)

	list := untilAnswered(http.MethodGet, "/v1/reservations?eventId=idem-timeout", nil)
	list.want(t, http.StatusOK)
	var l struct {
		Reservations []reservationView `json:"reservations"`
	}
	list.decode(t, &l)
	var live []string
	for _, r := range l.Reservations {
		if r.Status == "held" || r.Status == "paying" || r.Status == "booked" {
			live = append(live, r.ID)
		}
	}
	if retry.status != http.StatusCreated {
		t.Fatalf("retry with the same Idempotency-Key answered %d (%s) while the customer holds live reservations %v created by the first attempt (which answered %d)",
			retry.status, retry.body, live, first.status)
	}
	var v reservationView
	retry.decode(t, &v)
	if len(live) != 1 || live[0] != v.ID {
		t.Fatalf("retry returned reservation %s; the customer's live reservations are %v", v.ID, live)
	}
}

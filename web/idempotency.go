package web

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// Idempotency-Key bounds. The store lives in memory: a restart forgets the
// keys, so a retry across a restart runs again (and meets the engine's own
// guards: a seat cannot be held twice, a booked reservation pays idempotently).
// A durable store belongs with the journal once the cluster mode needs it.
const (
	idempotencyKeyBytesMax = 255
	idempotencyEntriesMax  = 100_000
	idempotencyTTL         = 24 * time.Hour
)

// idempotencyStore remembers the first response to each (customer, key).
// Entries leave it after idempotencyTTL or, oldest first, when it holds
// idempotencyEntriesMax.
type idempotencyStore struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *idempotencyEntry
	order   list.List                // oldest first
	// failed holds the keys whose run ended without a kept response (5xx):
	// their decision may have been taken after the answer, so a retry is
	// told that it is one (retry in idempotent's handle). Bounded like
	// entries; forgetting one only loses that hint.
	failed map[string]time.Time
}

type idempotencyEntry struct {
	key         string
	fingerprint [sha256.Size]byte // request method, route and body
	createdAt   time.Time
	done        chan struct{}     // closed when resp is final
	resp        *capturedResponse // nil after done: not kept, run the request again
}

func newIdempotencyStore(now func() time.Time) *idempotencyStore {
	return &idempotencyStore{now: now, entries: make(map[string]*list.Element), failed: make(map[string]time.Time)}
}

// claim returns the entry for key, creating it (owner true) when there is none.
func (s *idempotencyStore) claim(key string, fingerprint [sha256.Size]byte) (e *idempotencyEntry, owner bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.order.Len() > 0 {
		oldest := s.order.Front().Value.(*idempotencyEntry)
		if s.order.Len() < idempotencyEntriesMax && now.Sub(oldest.createdAt) < idempotencyTTL {
			break
		}
		s.removeLocked(oldest)
	}
	if el, ok := s.entries[key]; ok {
		return el.Value.(*idempotencyEntry), false
	}
	e = &idempotencyEntry{key: key, fingerprint: fingerprint, createdAt: now, done: make(chan struct{})}
	s.entries[key] = s.order.PushBack(e)
	return e, true
}

// finish publishes the owner's response. Responses that say "try again"
// (429, 5xx: nothing was decided) are not kept, so a retry runs again.
func (s *idempotencyStore) finish(e *idempotencyEntry, resp *capturedResponse) {
	if resp != nil && (resp.status == http.StatusTooManyRequests || resp.status >= 500) {
		resp = nil
	}
	s.mu.Lock()
	e.resp = resp
	if resp == nil {
		s.removeLocked(e)
		if len(s.failed) >= idempotencyEntriesMax {
			clear(s.failed)
		}
		s.failed[e.key] = s.now()
	}
	s.mu.Unlock()
	close(e.done)
}

// failedBefore reports whether an earlier run with key ended without a kept
// response (within idempotencyTTL).
func (s *idempotencyStore) failedBefore(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.failed[key]
	return ok && s.now().Sub(at) < idempotencyTTL
}

func (s *idempotencyStore) removeLocked(e *idempotencyEntry) {
	if el, ok := s.entries[e.key]; ok && el.Value == e {
		s.order.Remove(el)
		delete(s.entries, e.key)
	}
}

// idempotent runs handle at most once per (customer, Idempotency-Key) with
// the same request, replaying its first response to repeats (API.md). A
// repeat with another body is a 422 idempotency_key_reused; a repeat while
// the first is still running waits for it.
//
// handle's retry is true when an earlier run with this key ended without a
// kept response (a 5xx, such as a timeout whose decision was taken later):
// the handler may then meet the effect of that run and should answer as
// its first answer would have.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, customerID, route string, body []byte, handle func(w http.ResponseWriter, retry bool)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		handle(w, false)
		return
	}
	if len(key) > idempotencyKeyBytesMax {
		s.writeError(w, r, errorf(engine.CodeInvalidRequest, "Idempotency-Key is over %d bytes", idempotencyKeyBytesMax))
		return
	}
	h := sha256.New()
	h.Write([]byte(r.Method + " " + route + "\n"))
	h.Write(body)
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	storeKey := strconv.Itoa(len(customerID)) + ":" + customerID + key

	// A first attempt that ends without a kept response (5xx) frees the key;
	// each waiter then tries once more to run the request itself.
	for range 3 {
		e, owner := s.idempotency.claim(storeKey, fp)
		if !owner {
			if e.fingerprint != fp {
				s.writeError(w, r, errorf(codeIdempotencyKeyReused, "this Idempotency-Key was used with a different request"))
				return
			}
			select {
			case <-e.done:
			case <-r.Context().Done():
				s.writeError(w, r, r.Context().Err())
				return
			}
			if e.resp != nil {
				e.resp.replay(w, true)
				return
			}
			continue
		}
		rec := newCapturedResponse()
		func() {
			defer func() {
				if rec.status == 0 {
					rec.status = http.StatusInternalServerError
				}
				s.idempotency.finish(e, rec)
			}()
			handle(rec, s.idempotency.failedBefore(storeKey))
		}()
		rec.replay(w, false)
		return
	}
	s.writeError(w, r, errorf(actors.CodeOverloaded, "the first request with this Idempotency-Key keeps failing; retry later"))
}

// capturedResponse records a handler's response so it can be sent now and
// replayed later.
type capturedResponse struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func newCapturedResponse() *capturedResponse {
	return &capturedResponse{header: make(http.Header)}
}

func (c *capturedResponse) Header() http.Header { return c.header }

func (c *capturedResponse) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capturedResponse) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(p)
}

// replay writes the captured response; replayed marks a repeat.
func (c *capturedResponse) replay(w http.ResponseWriter, replayed bool) {
	h := w.Header()
	for k, v := range c.header {
		h[k] = append([]string(nil), v...)
	}
	if replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(c.status)
	_, _ = w.Write(c.body.Bytes())
}

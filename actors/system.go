package actors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// Codes of errors the actors add to the engine's (API.md: all 503).
const (
	CodeEventUnavailable   engine.Code = "event_unavailable"
	CodeStorageUnavailable engine.Code = "storage_unavailable"
	CodeOverloaded         engine.Code = "overloaded"
	CodeTimeout            engine.Code = "timeout"
	// CodeIdempotencyKeyReused (422): an Idempotency-Key sent again with
	// other seats.
	CodeIdempotencyKeyReused engine.Code = "idempotency_key_reused"
)

// Journal is what the event actors need of the write-ahead log. Append takes
// the expected next sequence number, so a stale owner can be fenced out
// (cluster mode will put a replicated journal behind the same interface).
// *persistence.Store implements it.
type Journal interface {
	// Append makes recs durable (one synced commit) or returns an error;
	// recs[0].Seq must be expectedSeq, the event's last seq + 1.
	Append(eventID string, expectedSeq uint64, recs []engine.Record) error
	// SaveSnapshot stores the state as of seq and may drop records before it.
	// It runs concurrently with Appends to the same event and must not
	// delay them.
	SaveSnapshot(eventID string, seq uint64, state []byte) error
	// Load returns the EventCreated record, the latest snapshot and the tail.
	Load(eventID string) (persistence.Recovered, error)
	// LastSeq is the last durable seq of an event, 0 when it has none.
	LastSeq(eventID string) (uint64, error)
	// Events lists every event with a journal.
	Events() ([]string, error)
}

// SeatFeed receives each event's seat map: once whole after creation or
// recovery (Reset), then each durable batch of changes (Apply) in log order.
// Implementations must not block: they run on the event actor.
type SeatFeed interface {
	Reset(eventID string, version uint64, plan *engine.Plan, info engine.EventInfo, statuses []engine.SeatStatus)
	Apply(eventID string, version uint64, changes []engine.SeatChange)
	Unavailable(eventID string, err error)
}

// Config configures a System. Zero values take the defaults given.
type Config struct {
	Journal              Journal       // required
	Clock                Clock         // default RealClock()
	Logger               *slog.Logger  // default slog.Default(); also protoactor's logger
	Feed                 SeatFeed      // optional
	SnapshotEveryRecords int           // default 20,000 records
	BatchRecordsMax      int           // default 8,192 records per synced commit
	RequestTimeout       time.Duration // default 5 s: a caller waits at most this long
	InflightRequestsMax  int           // default 65,536 per event: past it, 503 overloaded
	// Payments is the payment provider (actors/payment); required.
	Payments payment.Provider
	// PaymentWait bounds how long Pay and RefundBooking wait for the
	// provider before answering with the reservation still paying (or its
	// refund pending); default 5 s (and never more than RequestTimeout).
	PaymentWait time.Duration
}

// System is the set of event actors and the directory that finds them. Its
// methods are safe for concurrent use; each call is one request to one event
// actor (Reservations over all events asks each).
type System struct {
	cfg    Config
	clock  Clock
	logger *slog.Logger
	as     *actor.ActorSystem
	root   *actor.RootContext

	mu     sync.Mutex
	events map[string]*eventRef
	closed bool

	batches atomic.Uint64
	records atomic.Uint64

	payments *payWorker
}

type eventRef struct {
	pid      *actor.PID
	disp     *workerDispatcher
	inflight atomic.Int64
}

// Start creates the actor system and recovers every event in the journal,
// returning once each event actor has replayed its journal (an event whose
// journal is corrupt is left unavailable, not fatal).
func Start(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Journal == nil {
		return nil, errors.New("actors: a journal is required")
	}
	if cfg.Payments == nil {
		return nil, errors.New("actors: a payment provider is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotEveryRecords <= 0 {
		cfg.SnapshotEveryRecords = 20_000
	}
	if cfg.BatchRecordsMax <= 0 {
		cfg.BatchRecordsMax = 8192
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.InflightRequestsMax <= 0 {
		cfg.InflightRequestsMax = 65_536
	}
	logger := cfg.Logger
	as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("lib", "protoactor")
	}))
	s := &System{cfg: cfg, clock: cfg.Clock, logger: logger, as: as, root: as.Root, events: make(map[string]*eventRef)}
	s.payments = newPayWorker(s, cfg.Payments)
	ids, err := cfg.Journal.Events()
	if err != nil {
		s.payments.stop()
		as.Shutdown()
		return nil, fmt.Errorf("actors: list events: %w", err)
	}
	// Under the lock: a recovering actor may hand a payment to the worker,
	// whose outcome request looks the event up (lookup) while we spawn.
	s.mu.Lock()
	for _, id := range ids {
		s.spawn(id, nil, nil)
	}
	s.mu.Unlock()
	for _, id := range ids {
		// Wait for recovery; an unavailable event answers with an error, which is fine here.
		_, _ = s.request(ctx, id, &infoRequest{})
	}
	return s, nil
}

func (s *System) spawn(id string, created *engine.Event, recs []engine.Record) *eventRef {
	disp := newWorkerDispatcher(300)
	props := actor.PropsFromProducer(func() actor.Actor {
		a := &eventActor{sys: s, id: id, created: created, createdRecords: recs}
		created, recs = nil, nil // a restart recovers from the journal instead
		return a
	}, actor.WithDispatcher(disp))
	ref := &eventRef{disp: disp}
	pid, err := s.root.SpawnNamed(props, "event/"+id)
	if err != nil {
		pid = s.root.Spawn(props)
	}
	ref.pid = pid
	s.events[id] = ref
	return ref
}

// Close waits until everything decided is durable, then stops every event
// actor and the actor system. Requests after Close fail.
func (s *System) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	refs := make(map[string]*eventRef, len(s.events))
	for id, r := range s.events {
		refs[id] = r
	}
	s.mu.Unlock()
	// Provider calls in progress end first (the journal still owes them:
	// the next start asks again), so no outcome races the drain.
	s.payments.stop()
	var errs []error
	for id, r := range refs {
		if _, err := s.ask(ctx, r, &drainRequest{}); err != nil && engine.CodeOf(err) != CodeEventUnavailable {
			errs = append(errs, fmt.Errorf("drain event %s: %w", id, err))
		}
		if err := s.root.StopFuture(r.pid).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop event %s: %w", id, err))
		}
		r.disp.stop()
	}
	s.as.Shutdown()
	return errors.Join(errs...)
}

// Stats reports group-commit counters: synced batches and the records in them.
func (s *System) Stats() (batches, records uint64) { return s.batches.Load(), s.records.Load() }

func (s *System) noteBatch(n int) {
	s.batches.Add(1)
	s.records.Add(uint64(n))
}

func (s *System) lookup(eventID string) (*eventRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, engine.Errorf(CodeStorageUnavailable, "the server is shutting down")
	}
	r := s.events[eventID]
	if r == nil {
		// The directory starts an event's actor on demand when the journal
		// has the event (it recovers in Started; this request queues
		// behind that).
		last, err := uint64(0), error(nil)
		if engine.ValidEventID(eventID) {
			last, err = s.cfg.Journal.LastSeq(eventID)
		}
		if err != nil || last == 0 {
			return nil, engine.Errorf(engine.CodeEventNotFound, "no event %q", eventID)
		}
		r = s.spawn(eventID, nil, nil)
	}
	return r, nil
}

// request sends msg to the event's actor and waits for its reply.
func (s *System) request(ctx context.Context, eventID string, msg any) (*reply, error) {
	r, err := s.lookup(eventID)
	if err != nil {
		return nil, err
	}
	return s.ask(ctx, r, msg)
}

func (s *System) ask(ctx context.Context, r *eventRef, msg any) (*reply, error) {
	if n := r.inflight.Add(1); n > int64(s.cfg.InflightRequestsMax) {
		r.inflight.Add(-1)
		return nil, engine.Errorf(CodeOverloaded, "too many requests for this event; retry shortly")
	}
	defer r.inflight.Add(-1)
	return s.askUncapped(ctx, r, msg)
}

// requestInternal is request for the system's own messages (payment
// outcomes, provider webhooks): not subject to the in-flight cap, which
// bounds customers.
func (s *System) requestInternal(ctx context.Context, eventID string, msg any) (*reply, error) {
	r, err := s.lookup(eventID)
	if err != nil {
		return nil, err
	}
	return s.askUncapped(ctx, r, msg)
}

func (s *System) askUncapped(ctx context.Context, r *eventRef, msg any) (*reply, error) {
	timeout := s.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, engine.Errorf(CodeTimeout, "the request timed out")
	}
	ch := make(chan *reply, 1)
	s.root.Send(r.pid, &request{body: msg, reply: ch})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var rep *reply
	select {
	case rep = <-ch:
	case <-timer.C:
		return nil, engine.Errorf(CodeTimeout, "the event did not answer within %s", timeout)
	case <-ctx.Done():
		return nil, engine.Errorf(CodeTimeout, "the request was abandoned: %v", ctx.Err())
	}
	if rep.err != nil {
		return rep, rep.err
	}
	return rep, nil
}

// CreateEvent validates def and creates the event, answering once its
// EventCreated record is durable. Errors: event_exists, invalid_request,
// invalid_plan (from the engine), storage_unavailable.
func (s *System) CreateEvent(ctx context.Context, def engine.EventDefinition) (engine.EventInfo, error) {
	ev, recs, err := engine.CreateEvent(def, s.clock.Now())
	if err != nil {
		return engine.EventInfo{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return engine.EventInfo{}, engine.Errorf(CodeStorageUnavailable, "the server is shutting down")
	}
	if s.events[def.ID] != nil {
		s.mu.Unlock()
		return engine.EventInfo{}, engine.Errorf(engine.CodeEventExists, "event %q already exists", def.ID)
	}
	r := s.spawn(def.ID, ev, recs)
	s.mu.Unlock()
	rep, err := s.ask(ctx, r, &infoRequest{})
	if err != nil {
		return engine.EventInfo{}, err
	}
	return rep.info, nil
}

// EventIDs lists every event, sorted.
func (s *System) EventIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.events))
	for id := range s.events {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Event returns an event's read model. Errors: event_not_found,
// event_unavailable.
func (s *System) Event(ctx context.Context, eventID string) (engine.EventInfo, error) {
	rep, err := s.request(ctx, eventID, &infoRequest{})
	if err != nil {
		return engine.EventInfo{}, err
	}
	return rep.info, nil
}

// Hold reserves seatIDs of an event for customerID, all or none, answering
// once the hold is durable. Asking again for seats the customer holds
// replaces their reservation in one step, or returns it unchanged once its
// hold lifetime cap is reached (engine.Event.Hold). Errors: those of
// engine.Event.Hold, plus event_not_found, event_unavailable,
// storage_unavailable, overloaded, timeout.
func (s *System) Hold(ctx context.Context, eventID, customerID string, seatIDs []string) (engine.ReservationView, error) {
	rep, err := s.request(ctx, eventID, &holdRequest{customerID: customerID, reservationID: newID("r", eventID), seatIDs: seatIDs})
	if err != nil {
		return engine.ReservationView{}, err
	}
	return rep.reservation, nil
}

// HoldIdempotent is Hold for a request carrying an Idempotency-Key: the
// reservation id derives from the customer, the key and the event, so a
// retry — also after a timeout whose hold became durable later, and after a
// restart — finds the reservation its first attempt made and returns it
// instead of holding again. The same key with other seats:
// idempotency_key_reused.
func (s *System) HoldIdempotent(ctx context.Context, eventID, customerID, idempotencyKey string, seatIDs []string) (engine.ReservationView, error) {
	id := idempotentID(customerID, idempotencyKey, eventID)
	rep, err := s.request(ctx, eventID, &holdRequest{customerID: customerID, reservationID: id, seatIDs: seatIDs, idempotent: true})
	if err != nil {
		return engine.ReservationView{}, err
	}
	return rep.reservation, nil
}

// HoldBest lets the event choose and hold the best block of want.Quantity
// adjacent seats for customerID (engine.Event.HoldBest), in one step in the
// event actor: two customers asking at the same moment get different
// seats. idempotencyKey "" means none; with one, a retry finds the
// reservation of its first attempt (as HoldIdempotent), and the same key
// with another quantity is idempotency_key_reused. Errors: those of
// engine.Event.HoldBest (no_adjacent_seats when no block of that size is
// left), plus those of Hold.
func (s *System) HoldBest(ctx context.Context, eventID, customerID, idempotencyKey string, want engine.BestAvailable) (engine.ReservationView, error) {
	req := &holdBestRequest{customerID: customerID, reservationID: newID("r", eventID), want: want}
	if idempotencyKey != "" {
		req.reservationID, req.idempotent = idempotentID(customerID, idempotencyKey, eventID), true
	}
	rep, err := s.request(ctx, eventID, req)
	if err != nil {
		return engine.ReservationView{}, err
	}
	return rep.reservation, nil
}

// UpdateEvent applies an operator's change to an event (engine.Event.Update)
// and returns the event as it is then, once the change is durable; the seat
// feed gets the changed read model first. Cancelling releases every held
// reservation. Errors: invalid_request naming the field, event_not_found,
// and the 503s of Hold.
func (s *System) UpdateEvent(ctx context.Context, eventID string, patch engine.EventPatch) (engine.EventInfo, error) {
	rep, err := s.request(ctx, eventID, &updateRequest{patch: patch})
	if err != nil {
		return engine.EventInfo{}, err
	}
	return rep.info, nil
}

// eventOf extracts the event id from a reservation or booking id
// ("<prefix><random>.<eventId>").
func eventOf(id string) (string, error) {
	i := strings.IndexByte(id, '.')
	if i < 0 || !engine.ValidEventID(id[i+1:]) {
		return "", engine.Errorf(engine.CodeReservationNotFound, "no reservation %q", id)
	}
	return id[i+1:], nil
}

func notFoundAs(err error, code engine.Code, id string) error {
	if engine.CodeOf(err) == engine.CodeEventNotFound {
		return engine.Errorf(code, "no reservation %q", id)
	}
	return err
}

// Reservation returns customerID's reservation. Another customer's, or an
// unknown id: reservation_not_found.
func (s *System) Reservation(ctx context.Context, customerID, reservationID string) (engine.ReservationView, error) {
	eventID, err := eventOf(reservationID)
	if err != nil {
		return engine.ReservationView{}, err
	}
	rep, err := s.request(ctx, eventID, &reservationRequest{customerID: customerID, reservationID: reservationID})
	if err != nil {
		return engine.ReservationView{}, notFoundAs(err, engine.CodeReservationNotFound, reservationID)
	}
	return rep.reservation, nil
}

// AdminReservation returns any reservation, for operators.
func (s *System) AdminReservation(ctx context.Context, reservationID string) (engine.ReservationView, error) {
	eventID, err := eventOf(reservationID)
	if err != nil {
		return engine.ReservationView{}, err
	}
	rep, err := s.request(ctx, eventID, &reservationRequest{reservationID: reservationID})
	if err != nil {
		return engine.ReservationView{}, notFoundAs(err, engine.CodeReservationNotFound, reservationID)
	}
	return rep.reservation, nil
}

// Reservations returns customerID's reservations of one event, or of every
// event when eventID is "", newest first.
func (s *System) Reservations(ctx context.Context, customerID, eventID string) ([]engine.ReservationView, error) {
	ids := []string{eventID}
	if eventID == "" {
		ids = s.EventIDs()
	}
	var out []engine.ReservationView
	for _, id := range ids {
		rep, err := s.request(ctx, id, &reservationsRequest{customerID: customerID})
		if err != nil {
			if eventID == "" && engine.CodeOf(err) == CodeEventUnavailable {
				continue
			}
			return nil, err
		}
		out = append(out, rep.reservations...)
	}
	slices.SortStableFunc(out, func(a, b engine.ReservationView) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// Cancel releases customerID's held reservation (idempotent). Errors:
// reservation_not_found, already_booked, payment_in_progress.
func (s *System) Cancel(ctx context.Context, customerID, reservationID string) error {
	eventID, err := eventOf(reservationID)
	if err != nil {
		return err
	}
	_, err = s.request(ctx, eventID, &cancelRequest{customerID: customerID, reservationID: reservationID})
	return notFoundAs(err, engine.CodeReservationNotFound, reservationID)
}

// Pay charges paymentToken for customerID's held reservation and books it.
// The reservation moves to paying (PaymentStarted, journaled with the
// token) before the provider is asked, by the payment worker outside the
// event actor; the outcome is then journaled as booked or failed. Pay
// answers with that outcome, or — when the provider answers later (a
// webhook) or not within the payment wait — with the reservation paying.
// Errors: reservation_not_found, reservation_expired, reservation_released,
// payment_in_progress, payment_declined (the reservation stays held until
// it expires), invalid_request (a token the provider can never charge),
// event_cancelled, and the 503s of Hold.
func (s *System) Pay(ctx context.Context, customerID, reservationID, paymentToken string) (engine.ReservationView, error) {
	eventID, err := eventOf(reservationID)
	if err != nil {
		return engine.ReservationView{}, err
	}
	if err := s.cfg.Payments.CheckToken(paymentToken); err != nil {
		return engine.ReservationView{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.paymentWait())
	defer cancel()
	rep, err := s.request(wctx, eventID, &beginPaymentRequest{customerID: customerID, reservationID: reservationID, token: paymentToken})
	if engine.CodeOf(err) == CodeTimeout && rep == nil && ctx.Err() == nil {
		// The payment goes on; tell the payer where it stands.
		v, err := s.Reservation(ctx, customerID, reservationID)
		if err == nil && v.Status != engine.StatusPaying {
			err = payOutcomeError(v)
		}
		return v, err
	}
	if err != nil {
		if rep != nil && rep.reservation.ID != "" {
			return rep.reservation, notFoundAs(err, engine.CodeReservationNotFound, reservationID)
		}
		return engine.ReservationView{}, notFoundAs(err, engine.CodeReservationNotFound, reservationID)
	}
	return rep.reservation, nil
}

// Block withholds seats from sale. Errors: seat_not_found, seat_held,
// seat_unavailable (booked), invalid_request.
func (s *System) Block(ctx context.Context, eventID string, seatIDs []string) error {
	_, err := s.request(ctx, eventID, &blockRequest{seatIDs: seatIDs, block: true})
	return err
}

// Unblock returns blocked seats to sale. Errors: seat_not_found, seat_held.
func (s *System) Unblock(ctx context.Context, eventID string, seatIDs []string) error {
	_, err := s.request(ctx, eventID, &blockRequest{seatIDs: seatIDs, block: false})
	return err
}

// Bookings returns every booking of an event, oldest first.
func (s *System) Bookings(ctx context.Context, eventID string) ([]engine.Booking, error) {
	rep, err := s.request(ctx, eventID, &bookingsRequest{})
	if err != nil {
		return nil, err
	}
	return rep.bookings, nil
}

// idempotentID is the reservation id of a hold with an Idempotency-Key: the
// same for every retry of it, and routable to its event like newID's.
func idempotentID(customerID, idempotencyKey, eventID string) string {
	sum := sha256.Sum256([]byte(customerID + "\x00" + idempotencyKey + "\x00" + eventID))
	return "r" + idEncoding.EncodeToString(sum[:10]) + "." + eventID
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns "<prefix><16 random base32 chars>.<eventId>": unguessable,
// and routable to its event without an index.
func newID(prefix, eventID string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + idEncoding.EncodeToString(b[:]) + "." + eventID
}

func typeName(v any) string { return reflect.TypeOf(v).String() }

package actors

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// eventActor owns one engine.Event. It decides every command in memory, one
// at a time, hands batches of records to its committer without waiting, and
// answers callers and publishes seat changes only once their batch is durable,
// in log order (DESIGN.md rules 1–2).
type eventActor struct {
	sys *System
	id  string

	// created is set when the actor was spawned to create the event: its
	// state and the EventCreated record, journaled on Started.
	created        *engine.Event
	createdRecords []engine.Record

	ev          *engine.Event
	unavailable error // recovery failed: the event is not served
	storageErr  error // the journal cannot be written: nothing is acknowledged

	// batches[0] is in flight when inflight is set; later ones collect.
	batches           []*batch
	inflight          bool
	flushQueued       bool // a flushNow message is on its way: hold the next batch
	deferRounds       int  // flushNow rounds so far
	decidedSinceDefer int  // requests decided since the last flushNow was sent
	lastSnapshotSeq   uint64
	snapshotSeq       uint64 // seq of the snapshot riding on the batch in flight, or 0
	// snapshotBuf holds the event's one snapshot buffer while no snapshot
	// is being written (see startCommitter).
	snapshotBuf chan []byte

	// durableSeq is the last seq known durable. seatSeq and customerSeq
	// hold, per seat and per customer, the seq of the last record that
	// touched it (0: durable before this incarnation), so that a refusal can
	// be answered as soon as the state it depends on is durable.
	durableSeq  uint64
	seatSeq     []uint64
	customerSeq map[string]uint64

	commits       chan commitJob
	committerDone chan struct{}

	// pendingResets are whole seat maps to publish once the record they
	// follow is durable (persist, then publish): a new event's after its
	// EventCreated record, a changed event's (its read model changed) after
	// its EventUpdated record. Oldest first.
	pendingResets []*resetArgs

	timerAt     time.Time
	cancelTimer func()
	roomTimer   func() // cancels the waiting room's pending tick; nil when none is pending

	// Payments (payment.go). payTasks is the provider work handed to the
	// worker and not yet answered; payers the callers of Pay (and of an
	// operator's refund) waiting on an attempt; retryDelay the backoff per
	// reservation after failed provider calls; dispatchAt the reservations
	// whose provider work waits for a record to become durable (the seq).
	self        *actor.PID
	payTasks    map[payKey]struct{}
	payers      map[attemptKey][]payer
	retryDelay  map[string]time.Duration
	retryTimers map[string]func() // cancels the pending retryPayment timer
	dispatchAt  map[string]uint64
}

// deferFlushAtRecords: after a batch of at least this many records (the
// event is busy) the next batch is handed over behind the queued requests.
const deferFlushAtRecords = 16

// deferFlushRoundsMax bounds how many times a busy actor lets newly queued
// requests into the next batch before handing it over.
const deferFlushRoundsMax = 3

// flushNow asks the actor to hand over its next batch (see onCommitted).
type flushNow struct{}

// snapshotWritten tells the actor that its snapshot buffer is back.
type snapshotWritten struct{}

// onSnapshotWritten takes the snapshot a batch had to skip while the
// previous one was being written, if no batch came since to take it: when
// a sale stops right then, the journal would otherwise keep up to twice
// SnapshotEveryRecords records after its snapshot until the next command.
// Only when everything decided is durable: the snapshot is of durable state.
func (a *eventActor) onSnapshotWritten() {
	if a.ev == nil || a.storageErr != nil || a.unavailable != nil || a.inflight || len(a.batches) > 0 || a.durableSeq != a.ev.Seq() {
		return
	}
	if snap, seq := a.snapshotDue(); snap != nil {
		a.commits <- commitJob{eventID: a.id, snapshot: snap, snapshotSeq: seq} // nothing in flight: never blocks
		a.lastSnapshotSeq = seq
	}
}

// snapshotDue encodes the event's snapshot as of its last seq into the
// snapshot buffer when SnapshotEveryRecords records have passed since the
// last one and the buffer is free (no snapshot being written); nil otherwise.
func (a *eventActor) snapshotDue() ([]byte, uint64) {
	seq := a.ev.Seq()
	if seq-a.lastSnapshotSeq < uint64(a.sys.cfg.SnapshotEveryRecords) {
		return nil, 0
	}
	select {
	case buf := <-a.snapshotBuf:
		return a.ev.AppendSnapshot(buf[:0]), seq
	default:
		return nil, 0
	}
}

// customerSeqSweepAt is the size of customerSeq past which a commit sweeps
// it of durable entries.
const customerSeqSweepAt = 4096

type resetArgs struct {
	version  uint64
	info     engine.EventInfo
	statuses []engine.SeatStatus
}

type batch struct {
	records []engine.Record
	changes []engine.SeatChange
	replies []pendingReply
}

type pendingReply struct {
	to  chan<- *reply
	msg *reply
}

type commitJob struct {
	eventID     string
	firstSeq    uint64
	records     []engine.Record
	snapshot    []byte
	snapshotSeq uint64
}

// Receive is the actor's message loop.
func (a *eventActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		a.payTasks, a.payers = make(map[payKey]struct{}), make(map[attemptKey][]payer)
		a.retryDelay, a.dispatchAt = make(map[string]time.Duration), make(map[string]uint64)
		a.retryTimers = make(map[string]func())
		a.startCommitter(ctx)
		a.recover(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.failAll(errRestarting)
		a.stopCommitter()
		if a.cancelTimer != nil {
			a.cancelTimer()
		}
		if a.roomTimer != nil {
			a.roomTimer()
			a.roomTimer = nil
		}
		a.cancelRetries()
	case *actor.Stopped, actor.SystemMessage, actor.AutoReceiveMessage:
		// lifecycle messages with nothing to do
	case *committed:
		a.onCommitted(ctx, m)
	case snapshotWritten:
		a.onSnapshotWritten()
	case flushNow:
		// Keep letting queued requests in while they keep coming, for a
		// few rounds: each round costs microseconds, a commit cycle ~1 ms.
		if a.deferRounds < deferFlushRoundsMax && a.decidedSinceDefer >= deferFlushAtRecords/2 {
			a.deferRounds++
			a.decidedSinceDefer = 0
			a.sys.root.Send(ctx.Self(), flushNow{})
			return
		}
		a.flushQueued, a.deferRounds, a.decidedSinceDefer = false, 0, 0
		a.flush()
	case *expiryDue:
		if !m.at.Equal(a.timerAt) {
			return // superseded by an earlier timer
		}
		a.timerAt = time.Time{}
		if a.ev != nil && a.storageErr == nil {
			a.enqueue(a.ev.Tick(a.sys.clock.Now()))
			a.flush()
		}
		a.armTimer(ctx)
	case *retryRecovery:
		if a.storageErr != nil || a.unavailable != nil {
			a.recover(ctx)
		}
	case roomTick:
		a.onRoomTick(ctx)
	case *retryPayment:
		delete(a.retryTimers, m.reservationID)
		if a.ev != nil && a.storageErr == nil {
			a.dispatchPayments(m.reservationID, m.delay)
		}
	case *request:
		a.handle(ctx, m.reply, m.body)
	default:
		a.sys.logger.Warn("event actor: unexpected message", "event", a.id, "type", typeName(m))
	}
}

// handle decides one request. Every request is answered: at once when nothing
// is pending, else with the newest batch.
func (a *eventActor) handle(ctx actor.Context, to chan<- *reply, msg any) {
	rep := &reply{}
	switch {
	case a.unavailable != nil:
		rep.err = engine.Errorf(CodeEventUnavailable, "event %q is unavailable: its journal failed verification", a.id)
		a.answer(to, rep)
		return
	case a.storageErr != nil:
		rep.err = engine.Errorf(CodeStorageUnavailable, "the journal of event %q cannot be written right now; retry later", a.id)
		a.answer(to, rep)
		return
	}
	now := a.sys.clock.Now()
	var recs []engine.Record
	switch m := msg.(type) {
	case *holdRequest:
		if m.idempotent {
			if v, err := a.ev.Reservation(now, m.customerID, m.reservationID); err == nil {
				if sameSeats(v.Seats, m.seatIDs) {
					rep.reservation = v
				} else {
					rep.err = engine.Errorf(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request")
				}
				break
			}
		}
		var id string
		recs, id, rep.err = a.ev.Hold(now, engine.HoldRequest{ReservationID: m.reservationID, CustomerID: m.customerID, SeatIDs: m.seatIDs})
		if rep.err == nil {
			// The new reservation, or the customer's own one a re-hold
			// returned unchanged.
			rep.reservation, _ = a.ev.Reservation(now, m.customerID, id)
		} else if len(recs) == 0 && engine.CodeOf(rep.err) == engine.CodeSeatUnavailable {
			a.answerAfter(to, rep, a.holdDependency(m))
			a.armTimer(ctx)
			return
		}
	case *holdBestRequest:
		if m.idempotent {
			if v, err := a.ev.Reservation(now, m.customerID, m.reservationID); err == nil {
				if len(v.Seats) == m.want.Quantity {
					rep.reservation = v
				} else {
					rep.err = engine.Errorf(CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request")
				}
				break
			}
		}
		recs, rep.err = a.ev.HoldBest(now, engine.HoldBestRequest{ReservationID: m.reservationID, CustomerID: m.customerID, BestAvailable: m.want})
		if rep.err == nil {
			rep.reservation, _ = a.ev.Reservation(now, m.customerID, m.reservationID)
		}
	case *updateRequest:
		recs, rep.err = a.ev.Update(now, m.patch)
		rep.info = a.ev.Info()
		if slices.ContainsFunc(recs, func(r engine.Record) bool { return r.Type == engine.RecordEventUpdated }) {
			// The hub serves the read model (name, sale window, …): it
			// gets the whole event again once the change is durable.
			a.pendingResets = append(a.pendingResets, &resetArgs{a.ev.Seq(), rep.info, a.ev.Statuses()})
		}
	case *cancelRequest:
		recs, rep.err = a.ev.Cancel(now, m.customerID, m.reservationID)
	case *beginPaymentRequest:
		recs, rep.attempt, rep.err = a.ev.BeginPayment(now, m.customerID, m.reservationID, m.token)
		if rep.err == nil {
			rep.reservation, _ = a.ev.Reservation(now, m.customerID, m.reservationID)
		}
		if rep.err == nil && rep.attempt > 0 {
			// Answered with the attempt's outcome (answerPayers).
			k := attemptKey{m.reservationID, rep.attempt}
			a.payers[k] = append(a.payers[k], payer{to: to})
			a.enqueue(recs)
			a.decidedSinceDefer++
			a.flush()
			a.armTimer(ctx)
			return
		}
	case *paymentOutcome:
		rep = a.onPaymentOutcome(now, m)
	case *webhookRequest:
		rep = a.onWebhook(now, m)
	case *refundBookingRequest:
		var t engine.PaymentTask
		recs, t, rep.err = a.ev.RefundBooking(now, m.bookingID)
		if rep.err == nil {
			k := attemptKey{t.ReservationID, t.Attempt}
			a.payers[k] = append(a.payers[k], payer{to: to, refund: true})
			a.enqueue(recs)
			a.flush()
			a.armTimer(ctx)
			return
		}
	case *blockRequest:
		if m.block {
			recs, rep.err = a.ev.Block(now, m.seatIDs)
		} else {
			recs, rep.err = a.ev.Unblock(now, m.seatIDs)
		}
	case *reservationRequest:
		if m.customerID == "" {
			rep.reservation, rep.err = a.ev.ReservationByID(now, m.reservationID)
		} else {
			rep.reservation, rep.err = a.ev.Reservation(now, m.customerID, m.reservationID)
		}
	case *reservationsRequest:
		rep.reservations = a.ev.Reservations(now, m.customerID)
	case *bookingsRequest:
		rep.bookings = a.ev.Bookings()
	case *infoRequest, *drainRequest:
		rep.info = a.ev.Info()
	default:
		var ok bool
		if recs, ok = a.handleRoom(now, msg, rep); !ok {
			// A programming error: answer it rather than leave the caller waiting.
			rep.err = fmt.Errorf("actors: event actor got an unknown request %s", typeName(msg))
		}
	}
	a.enqueue(recs)
	a.answer(to, rep)
	a.decidedSinceDefer++
	a.flush()
	a.armTimer(ctx)
	a.armRoomTimer(ctx)
}

// enqueue adds the records of one command to the collecting batch, or to a
// new one when they would take it past BatchRecordsMax. A command's records
// stay in one batch — one atomic commit — so that a re-hold's release and
// new hold, or a cancellation's releases, are durable together or not at
// all; only a command with more records than one journal append takes
// (persistence.AppendRecordsMax: a mass expiry or cancellation, whose
// records each stand alone) is cut.
func (a *eventActor) enqueue(recs []engine.Record) {
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), persistence.AppendRecordsMax)]
		recs = recs[len(chunk):]
		var b *batch
		if n := len(a.batches); n > 0 && !(n == 1 && a.inflight) && len(a.batches[n-1].records)+len(chunk) <= a.sys.cfg.BatchRecordsMax {
			b = a.batches[n-1]
		} else {
			b = &batch{}
			a.batches = append(a.batches, b)
		}
		a.addToBatch(b, chunk)
	}
}

func (a *eventActor) addToBatch(b *batch, recs []engine.Record) {
	for i := range recs {
		r := &recs[i]
		b.records = append(b.records, *r)
		b.changes = engine.SeatChanges(b.changes, r)
		for _, s := range r.Seats {
			a.seatSeq[s] = r.Seq
		}
		if r.CustomerID != "" {
			a.customerSeq[r.CustomerID] = r.Seq
		}
	}
}

// holdDependency is the seq of the last record a refused hold's answer
// depends on: the last change to any seat it asked for or to its customer.
// Before that record is durable a crash could make the refusal wrong; after
// it, the refusal is explained by the durable history whatever else is
// pending (DECISIONS.md D6).
func (a *eventActor) holdDependency(m *holdRequest) uint64 {
	dep := a.customerSeq[m.customerID]
	for _, id := range m.seatIDs {
		if i, ok := a.ev.Plan().SeatIndex(id); ok {
			dep = max(dep, a.seatSeq[i])
		}
	}
	return dep
}

// answerAfter replies once record dep is durable: at once if it is, else
// with the batch that contains it.
func (a *eventActor) answerAfter(to chan<- *reply, rep *reply, dep uint64) {
	if dep <= a.durableSeq {
		deliver(to, rep)
		return
	}
	for _, b := range a.batches {
		if b.records[len(b.records)-1].Seq >= dep {
			b.replies = append(b.replies, pendingReply{to: to, msg: rep})
			return
		}
	}
	a.answer(to, rep) // not reached: dep is always in a batch; be safe
}

// answer replies at once when nothing is pending, else when the newest batch
// (the one pending when the answer was decided) is durable.
func (a *eventActor) answer(to chan<- *reply, rep *reply) {
	if n := len(a.batches); n > 0 {
		a.batches[n-1].replies = append(a.batches[n-1].replies, pendingReply{to: to, msg: rep})
		return
	}
	deliver(to, rep)
}

// deliver hands rep to its caller. Each request has one reply and a channel
// of capacity 1, so this never blocks; should a restart try to answer a
// caller twice, the second answer is dropped rather than block the actor.
func deliver(to chan<- *reply, rep *reply) {
	select {
	case to <- rep:
	default:
	}
}

// flush hands the oldest batch to the committer unless one is in flight.
func (a *eventActor) flush() {
	if a.inflight || a.flushQueued || len(a.batches) == 0 {
		return
	}
	b := a.batches[0]
	job := commitJob{eventID: a.id, firstSeq: b.records[0].Seq, records: b.records}
	last := b.records[len(b.records)-1].Seq
	if len(a.batches) == 1 && last == a.ev.Seq() {
		// While the previous snapshot is still being written a later batch,
		// or onSnapshotWritten, takes it.
		job.snapshot, job.snapshotSeq = a.snapshotDue()
	}
	a.snapshotSeq = job.snapshotSeq
	a.inflight = true
	a.commits <- job // capacity 1 and one job in flight: never blocks
}

func (a *eventActor) onCommitted(ctx actor.Context, m *committed) {
	if !a.inflight || len(a.batches) == 0 {
		return // a report from before a recovery
	}
	b := a.batches[0]
	a.inflight = false
	if m.err != nil {
		a.batches[0] = nil
		a.batches = a.batches[1:]
		a.sys.logger.Error("journal append failed; the event stops acknowledging and recovers from the journal",
			"event", a.id, "seq", b.records[0].Seq, "err", m.err)
		for _, r := range b.replies {
			r.msg.err = a.storageError()
			deliver(r.to, r.msg)
		}
		a.failAll(a.storageError())
		a.storageErr = m.err
		a.recover(ctx)
		return
	}
	a.durableSeq = m.lastSeq
	if len(a.customerSeq) > customerSeqSweepAt {
		// Entries at or below the durable seq say nothing more than a
		// missing entry does; dropping them keeps the map bounded by the
		// customers active in the batches in flight.
		for c, seq := range a.customerSeq {
			if seq <= m.lastSeq {
				delete(a.customerSeq, c)
			}
		}
	}
	for len(a.pendingResets) > 0 && m.lastSeq >= a.pendingResets[0].version {
		a.publishReset(a.pendingResets[0])
		a.pendingResets = a.pendingResets[1:]
	}
	if a.snapshotSeq != 0 {
		a.lastSnapshotSeq, a.snapshotSeq = a.snapshotSeq, 0
	}
	// b stays first in line until it is published and answered: should the
	// feed panic, the restart answers its callers (failAll) rather than
	// leaving them to time out.
	if a.sys.cfg.Feed != nil && len(b.changes) > 0 {
		a.sys.cfg.Feed.Apply(a.id, m.lastSeq, b.changes)
	}
	for _, r := range b.replies {
		deliver(r.to, r.msg)
	}
	a.batches[0] = nil
	a.batches = a.batches[1:]
	a.dispatchAfterCommit(b.records)
	// Under load, hand over the next batch only after the requests already
	// queued in the mailbox are decided: they join it instead of waiting a
	// whole commit cycle. The flushNow message queues behind them.
	if len(a.batches) > 0 && len(b.records) >= deferFlushAtRecords {
		a.flushQueued = true
		a.sys.root.Send(ctx.Self(), flushNow{})
		return
	}
	a.flush()
}

func (a *eventActor) publishReset(r *resetArgs) {
	if a.sys.cfg.Feed != nil {
		a.sys.cfg.Feed.Reset(a.id, r.version, a.ev.Plan(), r.info, r.statuses)
	}
}

func (a *eventActor) storageError() error {
	return engine.Errorf(CodeStorageUnavailable, "the journal of event %q cannot be written right now; nothing was acknowledged", a.id)
}

var errRestarting = engine.Errorf(CodeStorageUnavailable, "the event actor restarted; nothing was acknowledged")

// failAll answers every waiting caller with err and drops the undurable
// batches. Their records were never acknowledged.
func (a *eventActor) failAll(err error) {
	for _, b := range a.batches {
		for _, r := range b.replies {
			r.msg.err = err
			r.msg.reservation = engine.ReservationView{}
			deliver(r.to, r.msg)
		}
	}
	a.batches = nil
	a.inflight = false
	for k, waiters := range a.payers {
		for _, w := range waiters {
			deliver(w.to, &reply{err: err})
		}
		delete(a.payers, k)
	}
}

// recover rebuilds the event from its journal: the EventCreated record, the
// latest snapshot, then the tail. Holds that lapsed while the process was
// down are expired and journaled. On a corrupt journal the event becomes
// unavailable; on a storage error it retries after a second.
func (a *eventActor) recover(ctx actor.Context) {
	start := time.Now()
	if a.storageErr != nil {
		// A failed store is closed and opened again first (a Pebble handle
		// that reported a fatal error persists nothing more); every actor
		// of the store asks, the first one does it.
		if r, ok := a.sys.cfg.Journal.(reopener); ok {
			if err := r.Reopen(); err != nil {
				a.recoveryFailed(ctx, err)
				return
			}
		}
	}
	a.ev, a.unavailable, a.storageErr, a.pendingResets = nil, nil, nil, nil
	last, err := a.sys.cfg.Journal.LastSeq(a.id)
	if err != nil {
		a.recoveryFailed(ctx, err)
		return
	}
	var fresh []engine.Record
	if last == 0 && a.created != nil {
		a.ev, fresh = a.created, a.createdRecords
		a.created, a.createdRecords = nil, nil
	} else {
		ev, err := a.load()
		if err != nil {
			a.recoveryFailed(ctx, err)
			return
		}
		a.ev = ev
	}
	a.lastSnapshotSeq = a.ev.Seq()
	a.durableSeq = last
	a.seatSeq = make([]uint64, a.ev.Plan().Capacity())
	a.customerSeq = make(map[string]uint64)
	if fresh == nil {
		a.publishReset(&resetArgs{a.ev.Seq(), a.ev.Info(), a.ev.Statuses()})
	} else {
		a.pendingResets = []*resetArgs{{a.ev.Seq(), a.ev.Info(), a.ev.Statuses()}}
	}
	a.enqueue(fresh)
	a.flush()
	a.enqueue(a.ev.Tick(a.sys.clock.Now()))
	a.enqueue(a.ev.RoomResume(a.sys.clock.Now()))
	a.flush()
	// The outbox: provider work the journal still owes (payments in flight
	// at the crash, voids, refunds). The same idempotency keys make repeated
	// calls the first ones.
	clear(a.payTasks)
	for _, t := range a.ev.AllPaymentTasks() {
		a.dispatchPayments(t.ReservationID, 0)
	}
	a.timerAt = time.Time{}
	a.armTimer(ctx)
	if a.roomTimer != nil {
		a.roomTimer()
		a.roomTimer = nil
	}
	a.armRoomTimer(ctx)
	a.sys.logger.Info("event recovered", "event", a.id, "seq", a.ev.Seq(), "seats", a.ev.Plan().Capacity(),
		"elapsed", time.Since(start).Round(time.Microsecond))
}

func (a *eventActor) load() (*engine.Event, error) {
	rec, err := a.sys.cfg.Journal.Load(a.id)
	if err != nil {
		return nil, err
	}
	return rec.Replay(a.id)
}

func (a *eventActor) recoveryFailed(ctx actor.Context, err error) {
	a.ev = nil
	if isCorruption(err) {
		a.unavailable = err
		a.sys.logger.Error("event journal failed verification; the event is not served", "event", a.id, "err", err)
		if a.sys.cfg.Feed != nil {
			a.sys.cfg.Feed.Unavailable(a.id, err)
		}
		return
	}
	a.storageErr = err
	a.sys.logger.Error("event recovery failed; retrying", "event", a.id, "err", err)
	a.sys.clock.SendAfter(a.sys.root, time.Second, ctx.Self(), &retryRecovery{})
}

// sameSeats reports whether a and b hold the same seat ids, in any order.
func sameSeats(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range b {
		if !slices.Contains(a, id) {
			return false
		}
	}
	return true
}

func isCorruption(err error) bool {
	var ce *persistence.CorruptionError
	if errors.As(err, &ce) {
		return true
	}
	return engine.CodeOf(err) == engine.CodeCorruptRecord || engine.CodeOf(err) == engine.CodeInvalidPlan
}

// reopener is a Journal that can be reopened after a storage failure
// (*persistence.Store).
type reopener interface{ Reopen() error }

// armTimer keeps one timer, for the earliest expiry of a live reservation.
func (a *eventActor) armTimer(ctx actor.Context) {
	if a.ev == nil {
		return
	}
	next, ok := a.ev.NextExpiry()
	if !ok || (!a.timerAt.IsZero() && !next.Before(a.timerAt)) {
		return
	}
	if a.cancelTimer != nil {
		a.cancelTimer()
	}
	a.timerAt = next
	d := next.Sub(a.sys.clock.Now())
	a.cancelTimer = a.sys.clock.SendAfter(a.sys.root, max(d, 0), ctx.Self(), &expiryDue{at: next})
}

// startCommitter starts the goroutine that makes this actor's batches
// durable, one at a time; it exits when commits is closed. A snapshot riding
// on a batch is written by a second goroutine once the batch is durable, so
// neither that batch's callers nor the next batch wait for several
// megabytes to be committed (the journal lets Appends run alongside).
//
// One snapshot is in flight at a time: the event's snapshot buffer goes
// from snapshotBuf to the batch (flush), to the snapshot writer and back.
// Reusing it keeps the actor's pause short — a stadium's snapshot is ~10 MB,
// and growing a fresh buffer into new pages (with the garbage collector's
// assist charged to the actor for the allocation) cost 80–170 ms against
// 9–12 ms for writing into the warm one. The buffer stays as large as the
// event's largest snapshot.
func (a *eventActor) startCommitter(ctx actor.Context) {
	a.commits = make(chan commitJob, 1)
	a.committerDone = make(chan struct{})
	a.snapshotBuf = make(chan []byte, 1)
	a.snapshotBuf <- nil
	self := ctx.Self()
	go func(jobs <-chan commitJob, bufs chan []byte, done chan<- struct{}) {
		defer close(done)
		giveBack := func(buf []byte) {
			select {
			case bufs <- buf:
			default:
			}
		}
		snapshots := make(chan commitJob, 1)
		snapshotterDone := make(chan struct{})
		go func() {
			defer close(snapshotterDone)
			for job := range snapshots {
				if err := a.sys.cfg.Journal.SaveSnapshot(job.eventID, job.snapshotSeq, job.snapshot); err != nil {
					// The journal is intact; a missing snapshot only lengthens recovery.
					a.sys.logger.Warn("snapshot failed", "event", job.eventID, "seq", job.snapshotSeq, "err", err)
				}
				giveBack(job.snapshot)
				a.sys.root.Send(self, snapshotWritten{})
			}
		}()
		defer func() { close(snapshots); <-snapshotterDone }()
		for job := range jobs {
			if len(job.records) == 0 { // a snapshot alone (onSnapshotWritten)
				snapshots <- job
				continue
			}
			err := a.sys.cfg.Journal.Append(job.eventID, job.firstSeq, job.records)
			if err == nil {
				a.sys.noteBatch(len(job.records))
			}
			a.sys.root.Send(self, &committed{lastSeq: job.records[len(job.records)-1].Seq, err: err})
			if job.snapshot == nil {
				continue
			}
			if err != nil {
				giveBack(job.snapshot)
				continue
			}
			snapshots <- job // one snapshot in flight at most: never blocks
		}
	}(a.commits, a.snapshotBuf, a.committerDone)
}

func (a *eventActor) stopCommitter() {
	if a.commits == nil {
		return
	}
	close(a.commits)
	<-a.committerDone
	a.commits = nil
}

package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// Payments never run in the event actor (DESIGN.md, Payments). The actor
// journals the intent (PaymentStarted, RefundRequested: the outbox), and once
// that is durable hands the provider call to the payment worker, a pool of
// goroutines. The worker's answer comes back to the actor as a request
// (paymentOutcome), decided like any other; so do the provider's webhooks
// (PaymentWebhook). After a crash, recovery hands every attempt the journal
// still owes provider work (engine.Event.AllPaymentTasks) to the worker
// again: the same idempotency key makes a repeated charge or refund the
// first one.

// Payment worker defaults.
const (
	paymentWorkers      = 16
	paymentQueueMax     = 4096
	paymentCallTimeout  = 30 * time.Second
	paymentRetryMin     = 500 * time.Millisecond
	paymentRetryMax     = 30 * time.Second
	paymentOutcomeWait  = 60 * time.Second // the worker waits this long for the actor to take an outcome
	defaultPaymentWait  = 5 * time.Second
	paymentDispatchWait = 100 * time.Millisecond // retry a dispatch when the queue is full
)

// payKey names one attempt's outstanding provider work.
type payKey struct {
	reservationID string
	attempt       uint32
	kind          engine.PaymentTaskKind
}

func keyOf(t engine.PaymentTask) payKey {
	return payKey{t.ReservationID, t.Attempt, t.Kind}
}

// payer is a caller waiting on a payment attempt: of Pay, or of an
// operator's refund (who is told the reservation as it is, not a payment
// outcome).
type payer struct {
	to     chan<- *reply
	refund bool
}

// attemptKey names one payment attempt, for the callers waiting on it.
type attemptKey struct {
	reservationID string
	attempt       uint32
}

// payJob is one provider call for the worker.
type payJob struct {
	task engine.PaymentTask
}

// payWorker runs provider calls off the event actors.
type payWorker struct {
	sys      *System
	provider payment.Provider
	jobs     chan payJob
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newPayWorker(s *System, p payment.Provider) *payWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &payWorker{sys: s, provider: p, jobs: make(chan payJob, paymentQueueMax), ctx: ctx, cancel: cancel}
	for range paymentWorkers {
		w.wg.Go(w.run)
	}
	return w
}

// stop abandons queued work (the journal still owes it: recovery hands it
// out again) and waits for calls in progress to end.
func (w *payWorker) stop() {
	w.cancel()
	w.wg.Wait()
}

// offer queues a job without blocking; false when the queue is full or the
// worker stopped.
func (w *payWorker) offer(j payJob) bool {
	if w.ctx.Err() != nil {
		return false
	}
	select {
	case w.jobs <- j:
		return true
	default:
		return false
	}
}

func (w *payWorker) run() {
	for {
		select {
		case <-w.ctx.Done():
			return
		case j := <-w.jobs:
			w.do(j)
		}
	}
}

// do makes one provider call and reports its outcome to the event actor.
func (w *payWorker) do(j payJob) {
	t := j.task
	req := payment.ChargeRequest{
		EventID: t.EventID, ReservationID: t.ReservationID, ReservationSeq: t.ReservationSeq, Attempt: t.Attempt,
		AmountCents: t.AmountCents, Currency: t.Currency, Token: t.Token, Ref: t.Ref,
	}
	ctx, cancel := context.WithTimeout(w.ctx, paymentCallTimeout)
	out := &paymentOutcome{task: t}
	switch {
	case t.AmountCents == 0:
		// Free seats: no money to take, void or give back, and providers
		// refuse zero-amount charges.
		out.result = payment.Result{Status: payment.StatusSucceeded}
		if t.Kind == engine.TaskVoid {
			out.result.Status = payment.StatusCanceled
		}
	case t.Kind == engine.TaskCharge:
		out.result, out.err = w.provider.Charge(ctx, req)
	case t.Kind == engine.TaskVoid:
		out.result, out.err = w.provider.Void(ctx, req)
	case t.Kind == engine.TaskRefund:
		out.refund, out.err = w.provider.Refund(ctx, req)
	}
	cancel()
	if engine.CodeOf(out.err) == engine.CodeInvalidRequest && t.Kind != engine.TaskRefund {
		// The provider refuses the request itself (not a transient
		// failure): asking again cannot help. A charge it refuses took no
		// money (failed); an authorisation it will not void never existed.
		w.sys.logger.Error("payment provider refused the request", "provider", w.provider.Name(),
			"task", t.Kind.String(), "reservation", t.ReservationID, "attempt", t.Attempt, "err", out.err)
		out.result, out.err = payment.Result{Status: payment.StatusFailed, DeclineCode: "invalid_request"}, nil
		if t.Kind == engine.TaskVoid {
			out.result.Status = payment.StatusCanceled
		}
	}
	if w.ctx.Err() != nil {
		return // shutting down: the journal still owes it
	}
	if out.err != nil {
		w.sys.logger.Warn("payment provider call failed; retrying", "provider", w.provider.Name(),
			"task", t.Kind.String(), "reservation", t.ReservationID, "attempt", t.Attempt, "err", out.err)
	}
	// The outcome is not a customer's request: it bypasses the in-flight
	// cap (a burst of payers must not crowd out the answers they wait for).
	ctx, cancel = context.WithTimeout(w.ctx, paymentOutcomeWait)
	defer cancel()
	if _, err := w.sys.requestInternal(ctx, t.EventID, out); err != nil && w.ctx.Err() == nil && !isDecided(err) {
		// The actor is recovering (a storage failure): its recovery hands
		// the work out again.
		w.sys.logger.Warn("payment outcome not taken by the event; it is asked again at its recovery",
			"event", t.EventID, "reservation", t.ReservationID, "attempt", t.Attempt, "err", err)
	}
}

// isDecided reports whether err is an engine decision (the outcome was
// taken) rather than a failure to deliver it.
func isDecided(err error) bool {
	var e *engine.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeTimeout, CodeStorageUnavailable, CodeOverloaded, CodeEventUnavailable:
		return false
	}
	return true
}

// retryPayment asks the actor to hand out a reservation's payment work
// again after a failed provider call or a full queue.
type retryPayment struct {
	reservationID string
	delay         time.Duration
}

// dispatchPayments hands the provider work the reservation's attempts wait
// for to the worker, unless it is already out. Only durable intent is handed
// out (the outbox rule: the provider is asked only once the record that
// owes the work is journaled): while the customer's last record is still
// on its way to the journal, the reservation waits in dispatchAt.
func (a *eventActor) dispatchPayments(reservationID string, retryDelay time.Duration) {
	for _, t := range a.ev.PaymentTasks(reservationID) {
		k := keyOf(t)
		if _, out := a.payTasks[k]; out {
			continue
		}
		if dep := a.customerSeq[t.CustomerID]; dep > a.durableSeq {
			a.dispatchAt[reservationID] = max(a.dispatchAt[reservationID], dep)
			continue
		}
		if a.sys.payments.offer(payJob{task: t}) {
			a.payTasks[k] = struct{}{}
			continue
		}
		a.scheduleRetry(reservationID, max(retryDelay, paymentDispatchWait))
	}
}

// scheduleRetry asks for the reservation's payment work again after d (one
// timer per reservation; the actor cancels them when it stops).
func (a *eventActor) scheduleRetry(reservationID string, d time.Duration) {
	if a.self == nil || a.sys.payments.ctx.Err() != nil {
		return
	}
	if cancel := a.retryTimers[reservationID]; cancel != nil {
		cancel()
	}
	a.retryTimers[reservationID] = a.sys.clock.SendAfter(a.sys.root, d, a.self, &retryPayment{reservationID: reservationID, delay: d})
}

func (a *eventActor) cancelRetries() {
	for id, cancel := range a.retryTimers {
		cancel()
		delete(a.retryTimers, id)
	}
}

// dispatchAfterCommit hands out the provider work a durable batch created
// or changed — new attempts (charge), released reservations with a pending
// attempt (void), late successes and operators' refunds (refund) — and the
// work that was waiting for this batch.
func (a *eventActor) dispatchAfterCommit(recs []engine.Record) {
	for i := range recs {
		switch recs[i].Type {
		case engine.RecordPaymentStarted, engine.RecordHoldReleased, engine.RecordRefundRequested:
			a.dispatchPayments(recs[i].ReservationID, 0)
		}
	}
	for id, seq := range a.dispatchAt {
		if seq <= a.durableSeq {
			delete(a.dispatchAt, id)
			a.dispatchPayments(id, 0)
		}
	}
}

// decideOutcome applies a provider's answer — from the worker or a webhook —
// to the event. It returns the records and the error a payer is told.
func (a *eventActor) decideOutcome(now time.Time, t engine.PaymentTask, r payment.Result, ref payment.Refund, eventID string) ([]engine.Record, error) {
	ev := engine.PaymentEvidence{Ref: r.Ref, ProviderEventID: eventID}
	if t.Kind == engine.TaskRefund {
		return a.ev.CompleteRefund(now, t.ReservationID, t.Attempt, ref.Ref)
	}
	switch r.Status {
	case payment.StatusSucceeded:
		return a.ev.ConfirmPayment(now, t.ReservationID, t.Attempt, newID("b", a.id), ev)
	case payment.StatusFailed:
		recs, err := a.ev.FailPayment(now, t.ReservationID, t.Attempt, ev)
		if err == nil {
			err = declined(r.DeclineCode)
		}
		return recs, err
	case payment.StatusCanceled:
		if t.Kind == engine.TaskVoid {
			return a.ev.VoidPayment(now, t.ReservationID, t.Attempt)
		}
		recs, err := a.ev.FailPayment(now, t.ReservationID, t.Attempt, ev)
		if err == nil {
			err = declined("canceled")
		}
		return recs, err
	}
	return nil, nil // processing: the provider answers later
}

func declined(code string) error {
	if code == "" {
		code = "declined"
	}
	return engine.Errorf(engine.CodePaymentDeclined, "the payment was declined: %s", code)
}

// onPaymentOutcome takes the worker's answer for one task, enqueues the
// records it decides, and answers the payers waiting on the attempt.
func (a *eventActor) onPaymentOutcome(now time.Time, m *paymentOutcome) *reply {
	t := m.task
	delete(a.payTasks, keyOf(t))
	rep := &reply{}
	if m.err != nil {
		// The provider could not be asked; the journal still owes the work.
		a.retryDelay[t.ReservationID] = min(max(2*a.retryDelay[t.ReservationID], paymentRetryMin), paymentRetryMax)
		a.scheduleRetry(t.ReservationID, a.retryDelay[t.ReservationID])
		a.answerPayers(attemptKey{t.ReservationID, t.Attempt}, now, nil, true)
		return rep
	}
	delete(a.retryDelay, t.ReservationID)
	if t.Kind == engine.TaskVoid && m.result.Status == payment.StatusProcessing {
		// Not cancellable yet: ask again later.
		a.scheduleRetry(t.ReservationID, paymentRetryMin)
		return rep
	}
	recs, err := a.decideOutcome(now, t, m.result, m.refund, "")
	a.enqueue(recs)
	rep.err = err
	a.answerPayers(attemptKey{t.ReservationID, t.Attempt}, now, err, t.Kind == engine.TaskCharge && m.result.Status == payment.StatusProcessing)
	return rep
}

// onWebhook takes a verified provider event about one attempt, as
// onPaymentOutcome.
func (a *eventActor) onWebhook(now time.Time, m *webhookRequest) *reply {
	w := m.event
	rep := &reply{}
	if w.Status == payment.StatusProcessing {
		return rep
	}
	t := engine.PaymentTask{Kind: engine.TaskCharge, ReservationID: w.ReservationID, Attempt: w.Attempt}
	if w.Status == payment.StatusCanceled {
		t.Kind = engine.TaskVoid // a cancelled attempt: voided if no longer current, else failed
		if v, err := a.ev.ReservationByID(now, w.ReservationID); err == nil && v.Status == engine.StatusPaying && v.Attempts == w.Attempt {
			t.Kind = engine.TaskCharge
		}
	}
	recs, err := a.decideOutcome(now, t, payment.Result{Status: w.Status, Ref: w.Ref, DeclineCode: w.DeclineCode}, payment.Refund{}, w.ID)
	a.enqueue(recs)
	switch engine.CodeOf(err) {
	case engine.CodeReservationNotFound, engine.CodeNotPaying:
		if len(recs) == 0 || recs[len(recs)-1].Type != engine.RecordRefundRequested {
			rep.err = err // unknown to us (yet): the provider retries
		}
	}
	a.answerPayers(attemptKey{w.ReservationID, w.Attempt}, now, err, false)
	return rep
}

// answerPayers answers the callers of Pay waiting on an attempt, once the
// records just decided are durable: with the reservation as it is and the
// error their payment ended in; processing means the provider answers
// later (the reservation reads paying).
func (a *eventActor) answerPayers(k attemptKey, now time.Time, err error, processing bool) {
	waiters := a.payers[k]
	if len(waiters) == 0 {
		return
	}
	delete(a.payers, k)
	v, _ := a.ev.ReservationByID(now, k.reservationID)
	if processing {
		err = nil
	}
	payErr := err
	if payErr == nil {
		payErr = payOutcomeError(v)
	}
	if engine.CodeOf(err) == engine.CodePaymentDeclined && v.Status == engine.StatusReleased {
		// Declined after the hold lapsed: the seats are gone too.
		err = engine.Errorf(engine.CodePaymentDeclined, "%s; the hold had lapsed, so the reservation is released", err.(*engine.Error).Message)
	}
	for _, w := range waiters {
		if w.refund {
			a.answer(w.to, &reply{reservation: v, err: err})
		} else {
			a.answer(w.to, &reply{reservation: v, err: payErr})
		}
	}
}

// PaymentWebhook applies a verified provider event (payment.VerifyWebhook)
// to the attempt it names. Repeats of an event change nothing. Errors:
// reservation_not_found (an attempt this server does not know (yet): the
// provider should retry), and the 503s of Hold.
func (s *System) PaymentWebhook(ctx context.Context, ev payment.WebhookEvent) error {
	if ev.EventID == "" {
		return engine.Errorf(engine.CodeReservationNotFound, "the provider event names no event")
	}
	_, err := s.requestInternal(ctx, ev.EventID, &webhookRequest{event: ev})
	switch engine.CodeOf(err) {
	case engine.CodeEventNotFound, engine.CodeNotPaying:
		// Not known here (yet): 404, so that the provider retries.
		return engine.Errorf(engine.CodeReservationNotFound, "no payment attempt %d of reservation %q here", ev.Attempt, ev.ReservationID)
	}
	return err
}

// RefundBooking refunds a booking with the provider (journaled first), then
// returns its seats to sale, and returns the reservation as it is then:
// released with reason refunded, or — when the provider has not answered
// within the payment wait — still booked with its refund pending (it
// completes in the background). Refunding again while pending is the same
// refund. Errors: booking_not_found, and the 503s of Hold.
func (s *System) RefundBooking(ctx context.Context, bookingID string) (engine.ReservationView, error) {
	eventID, err := eventOf(bookingID)
	if err != nil {
		return engine.ReservationView{}, engine.Errorf(engine.CodeBookingNotFound, "no booking %q", bookingID)
	}
	ctx, cancel := context.WithTimeout(ctx, s.paymentWait())
	defer cancel()
	rep, err := s.request(ctx, eventID, &refundBookingRequest{bookingID: bookingID})
	switch {
	case engine.CodeOf(err) == engine.CodeEventNotFound:
		return engine.ReservationView{}, engine.Errorf(engine.CodeBookingNotFound, "no booking %q", bookingID)
	case engine.CodeOf(err) == CodeTimeout && rep == nil && ctx.Err() != nil:
		return s.readAfterWait(eventID, bookingID)
	case rep == nil:
		return engine.ReservationView{}, err
	}
	return rep.reservation, err
}

// readAfterWait reads a reservation by booking after the wait for the
// provider ran out.
func (s *System) readAfterWait(eventID, bookingID string) (engine.ReservationView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	rep, err := s.request(ctx, eventID, &bookingsRequest{})
	if err != nil {
		return engine.ReservationView{}, err
	}
	for _, b := range rep.bookings {
		if b.ID == bookingID {
			return s.AdminReservation(ctx, b.ReservationID)
		}
	}
	return engine.ReservationView{}, engine.Errorf(engine.CodeBookingNotFound, "no booking %q", bookingID)
}

func (s *System) paymentWait() time.Duration {
	if s.cfg.PaymentWait > 0 {
		return s.cfg.PaymentWait
	}
	return defaultPaymentWait
}

// payOutcomeError is what a payer is told, beyond the outcome's own error,
// about the reservation a payment left: booked or paying is an answer (200,
// 202); released means the seats are gone (the attempt was voided, or the
// hold lapsed); held means the payment did not go through.
func payOutcomeError(v engine.ReservationView) error {
	switch v.Status {
	case engine.StatusReleased:
		if v.ReleaseReason == engine.ReasonExpired {
			return engine.Errorf(engine.CodeReservationExpired, "reservation %q expired before the payment completed; nothing was charged", v.ID)
		}
		return engine.Errorf(engine.CodeReservationReleased, "reservation %q was released (%s)", v.ID, v.ReleaseReason)
	case engine.StatusHeld:
		return engine.Errorf(engine.CodePaymentDeclined, "the payment did not go through; the reservation is held until %s", v.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

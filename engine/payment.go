package engine

import (
	"container/heap"
	"slices"
	"time"
)

// PaymentState is the state of one payment attempt as the journal knows it.
//
//	pending ──(provider: succeeded, reservation paying with it)──▶ succeeded ──(operator refund)──▶ refund_pending ──▶ refunded
//	pending ──(provider: succeeded, reservation no longer payable)──▶ refund_pending ──▶ refunded
//	pending ──(provider: failed or cancelled)──▶ failed
//	pending ──(reservation released meanwhile; authorisation voided)──▶ voided
//
// pending is the outbox: the attempt was journaled before the provider was
// asked, so after a crash every pending attempt is asked again (with the
// same idempotency key) or voided. A success reported for a failed or voided
// attempt still took money: it goes to refund_pending, never silently kept.
type PaymentState uint8

// Payment attempt states; numeric values appear in snapshots.
const (
	PaymentPending       PaymentState = 0
	PaymentSucceeded     PaymentState = 1
	PaymentFailed        PaymentState = 2
	PaymentVoided        PaymentState = 3
	PaymentRefundPending PaymentState = 4
	PaymentRefunded      PaymentState = 5
	paymentStateMax                   = PaymentRefunded
)

var paymentStateNames = [...]string{"pending", "succeeded", "failed", "voided", "refund_pending", "refunded"}

func (s PaymentState) String() string {
	if int(s) < len(paymentStateNames) {
		return paymentStateNames[s]
	}
	return "unknown"
}

// payment is one journaled attempt of a reservation.
type payment struct {
	attempt   uint32
	state     PaymentState
	startedAt int64 // Unix ms
	token     string
	ref       string   // the provider's id of the charge, once known
	refundRef string   // the provider's id of the refund, once refunded
	events    []string // provider event ids recorded for this attempt
}

func (p *payment) seen(providerEventID string) bool {
	return providerEventID != "" && slices.Contains(p.events, providerEventID)
}

// paymentTokenBytesMax bounds a payment token (Stripe ids are far shorter).
const paymentTokenBytesMax = 255

// PaymentEvidence is how the caller learned a provider's answer: the
// provider's id of the charge, and the id of the webhook event that carried
// it (empty when the answer came from a call).
type PaymentEvidence struct {
	Ref             string
	ProviderEventID string
}

// PaymentTaskKind is the provider work an attempt waits for.
type PaymentTaskKind uint8

// Payment task kinds.
const (
	// TaskCharge: ask the provider for the charge (again) with the
	// attempt's idempotency key; the reservation is paying with it.
	TaskCharge PaymentTaskKind = iota + 1
	// TaskVoid: the reservation can no longer be paid with the attempt:
	// void its authorisation (or refund it, if the money was taken).
	TaskVoid
	// TaskRefund: give the attempt's money back.
	TaskRefund
)

func (k PaymentTaskKind) String() string {
	switch k {
	case TaskCharge:
		return "charge"
	case TaskVoid:
		return "void"
	case TaskRefund:
		return "refund"
	}
	return "unknown"
}

// PaymentTask is provider work the journal says is owed: the outbox entry of
// one attempt.
type PaymentTask struct {
	Kind           PaymentTaskKind
	EventID        string
	ReservationID  string
	ReservationSeq uint64 // seq of the reservation's SeatsHeld record (unique per event, unlike a reused id)
	CustomerID     string
	Attempt        uint32
	AmountCents    int64
	Currency       string
	Token          string // the payment token of the attempt
	Ref            string // the provider's id of the charge, when known
}

// PaymentAttemptView is one payment attempt as operators read it.
type PaymentAttemptView struct {
	Attempt   uint32
	State     PaymentState
	StartedAt time.Time
	Ref       string   // the provider's charge id, once known
	RefundRef string   // the provider's refund id, once refunded
	Events    []string // provider event ids recorded
}

// BeginPayment moves a held reservation to paying, freezing its expiry until
// the end of the payment grace period, and journals the attempt with its
// payment token (the outbox: the provider is asked only after this record is
// durable). It returns the new attempt number. A reservation already booked
// returns attempt 0, no records and no error (paying again is idempotent).
// Errors: invalid_request (empty or over-long token), reservation_not_found,
// reservation_expired, reservation_released, payment_in_progress,
// event_cancelled.
func (e *Event) BeginPayment(now time.Time, customerID, reservationID, token string) ([]Record, uint32, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r, err := e.owned(customerID, reservationID)
	if err != nil {
		return out, 0, err
	}
	switch r.status {
	case StatusBooked:
		return out, 0, nil
	case StatusPaying:
		return out, 0, Errorf(CodePaymentInProgress, "a payment for reservation %q is in progress", r.id)
	case StatusReleased:
		return out, 0, releasedError(r)
	}
	if token == "" || len(token) > paymentTokenBytesMax {
		return out, 0, Errorf(CodeInvalidRequest, "paymentToken must be 1 to %d bytes", paymentTokenBytesMax)
	}
	if e.cancelled() {
		// Cancelling releases every held reservation; one left over (a
		// cancellation journaled in several batches, then a crash) only
		// waits for its expiry.
		return out, 0, Errorf(CodeEventCancelled, "event %q was cancelled", e.def.ID)
	}
	attempt := r.attempts + 1
	out = e.emit(out, Record{
		Type: RecordPaymentStarted, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer,
		Attempt: attempt, ExpiresAtUnixMilli: max(r.expiresAt, nowMs+int64(e.paymentGraceSeconds())*1000),
		PaymentToken: token,
	})
	return out, attempt, nil
}

func releasedError(r *reservation) error {
	if r.reason == ReasonExpired {
		return Errorf(CodeReservationExpired, "reservation %q expired", r.id)
	}
	return Errorf(CodeReservationReleased, "reservation %q was released (%s)", r.id, r.reason)
}

// attemptOf returns the journaled attempt of a reservation. Errors:
// reservation_not_found, not_paying (no such attempt was started).
func (e *Event) attemptOf(reservationID string, attempt uint32) (*reservation, *payment, error) {
	r := e.reservations[reservationID]
	if r == nil {
		return nil, nil, Errorf(CodeReservationNotFound, "no reservation %q", reservationID)
	}
	for _, p := range r.payments {
		if p.attempt == attempt {
			return r, p, nil
		}
	}
	return r, nil, Errorf(CodeNotPaying, "reservation %q has no payment attempt %d", r.id, attempt)
}

// payingWith reports whether r is paying with attempt (its current one).
func payingWith(r *reservation, attempt uint32) bool {
	return r.status == StatusPaying && r.attempts == attempt
}

// ConfirmPayment records the provider's success for an attempt. If the
// reservation is paying with it, the reservation is booked as bookingID.
// If it can no longer be paid with it (released meanwhile, or another
// attempt is current), the money must go back: the attempt moves to
// refund_pending (a RefundRequested record) and the error says why the
// seats are not the payer's (reservation_expired, reservation_released,
// not_paying, already_booked). A success the journal already knows (the
// attempt succeeded or is being refunded, or the same provider event again)
// changes nothing. Errors also: reservation_not_found, not_paying (no such
// attempt), invalid_request (bad booking id).
func (e *Event) ConfirmPayment(now time.Time, reservationID string, attempt uint32, bookingID string, ev PaymentEvidence) ([]Record, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r, p, err := e.attemptOf(reservationID, attempt)
	if err != nil {
		return out, err
	}
	if p.seen(ev.ProviderEventID) || p.state == PaymentSucceeded || p.state == PaymentRefundPending || p.state == PaymentRefunded {
		return out, nil
	}
	if !payingWith(r, attempt) {
		out = e.emit(out, Record{
			Type: RecordRefundRequested, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer,
			Attempt: attempt, PaymentRef: ev.Ref, ProviderEventID: ev.ProviderEventID,
		})
		switch r.status {
		case StatusReleased:
			return out, releasedError(r)
		case StatusBooked:
			return out, Errorf(CodeAlreadyBooked, "reservation %q is already booked by payment attempt %d", r.id, r.attempts)
		}
		return out, Errorf(CodeNotPaying, "payment attempt %d of reservation %q is no longer current", attempt, r.id)
	}
	if !validID(bookingID, reservationIDBytesMax) {
		return out, Errorf(CodeInvalidRequest, "booking id is invalid")
	}
	if _, dup := e.bookings[bookingID]; dup {
		return out, Errorf(CodeInvalidRequest, "booking id %q is already used", bookingID)
	}
	out = e.emit(out, Record{
		Type: RecordSeatsBooked, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer,
		Seats: slices.Clone(r.seats), Attempt: attempt, BookingID: bookingID,
		PaymentRef: ev.Ref, ProviderEventID: ev.ProviderEventID,
	})
	return e.afterBooking(out, now, r.customer, len(r.seats)), nil
}

// FailPayment records the provider's failure (declined, failed, cancelled
// or expired) of a pending attempt. If the reservation is paying with it,
// it goes back to held until its original expiry, or is released with
// reason payment_failed when that has passed (reason cancelled when the
// event was cancelled meanwhile: it cannot be held again). A failure for an
// attempt that is no longer pending — it succeeded, failed, was voided or
// refunded — changes nothing: a stale failure never undoes a success.
// Errors: reservation_not_found, not_paying (no such attempt).
func (e *Event) FailPayment(now time.Time, reservationID string, attempt uint32, ev PaymentEvidence) ([]Record, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r, p, err := e.attemptOf(reservationID, attempt)
	if err != nil {
		return out, err
	}
	if p.state != PaymentPending || p.seen(ev.ProviderEventID) {
		return out, nil
	}
	current := payingWith(r, attempt)
	out = e.emit(out, Record{
		Type: RecordPaymentFailed, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer, Attempt: attempt,
		PaymentRef: ev.Ref, ProviderEventID: ev.ProviderEventID,
	})
	if !current {
		return out, nil
	}
	if e.cancelled() {
		out = e.emit(out, Record{
			Type: RecordHoldReleased, AtUnixMilli: nowMs, ReservationID: r.id,
			CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonCancelled,
		})
	} else if r.heldUntil <= nowMs {
		out = e.emit(out, Record{
			Type: RecordHoldReleased, AtUnixMilli: nowMs, ReservationID: r.id,
			CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonPaymentFailed,
		})
	}
	return out, nil
}

// VoidPayment records that a pending attempt the reservation can no longer
// be paid with (it was released, or booked by another attempt) was voided
// at the provider: no money moved. Anything else changes nothing. Errors:
// reservation_not_found, not_paying (no such attempt).
func (e *Event) VoidPayment(now time.Time, reservationID string, attempt uint32) ([]Record, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r, p, err := e.attemptOf(reservationID, attempt)
	if err != nil {
		return out, err
	}
	if p.state != PaymentPending || payingWith(r, attempt) {
		return out, nil
	}
	return e.emit(out, Record{
		Type: RecordPaymentVoided, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer, Attempt: attempt,
	}), nil
}

// RefundBooking starts an operator's refund of a booking: the attempt that
// paid for it moves to refund_pending (journaled before the provider is
// asked). The booking and its seats stay until CompleteRefund. It returns
// the refund task; refunding a booking whose refund is already pending
// returns the same task and no record. Errors: booking_not_found (no such
// booking, or one already refunded).
func (e *Event) RefundBooking(now time.Time, bookingID string) ([]Record, PaymentTask, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r := e.bookings[bookingID]
	if r == nil {
		return out, PaymentTask{}, Errorf(CodeBookingNotFound, "no booking %q", bookingID)
	}
	_, p, err := e.attemptOf(r.id, r.attempts)
	if err != nil { // a booked reservation always has its attempt
		return out, PaymentTask{}, err
	}
	if p.state == PaymentSucceeded {
		out = e.emit(out, Record{
			Type: RecordRefundRequested, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer,
			Attempt: p.attempt, PaymentRef: p.ref,
		})
	}
	return out, e.task(r, p, TaskRefund), nil
}

// CompleteRefund records that the provider refunded an attempt in
// refund_pending (refundRef: the provider's refund id). If the attempt paid
// for the reservation's booking, the booking is cancelled: the reservation
// is released with reason refunded and its seats return to sale. Anything
// else changes nothing. Errors: reservation_not_found, not_paying (no such
// attempt).
func (e *Event) CompleteRefund(now time.Time, reservationID string, attempt uint32, refundRef string) ([]Record, error) {
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	r, p, err := e.attemptOf(reservationID, attempt)
	if err != nil {
		return out, err
	}
	if p.state != PaymentRefundPending {
		return out, nil
	}
	rec := Record{
		Type: RecordPaymentRefunded, AtUnixMilli: nowMs, ReservationID: r.id, CustomerID: r.customer,
		Attempt: attempt, PaymentRef: refundRef,
	}
	if r.status == StatusBooked && r.attempts == attempt {
		rec.Seats = slices.Clone(r.seats) // they return to sale: seat-map readers see them
	}
	return e.emit(out, rec), nil
}

// PaymentTasks returns the provider work the reservation's attempts wait
// for (the outbox), in attempt order; none for an unknown reservation.
func (e *Event) PaymentTasks(reservationID string) []PaymentTask {
	r := e.reservations[reservationID]
	if r == nil {
		return nil
	}
	var out []PaymentTask
	for _, p := range r.payments {
		switch {
		case p.state == PaymentPending && payingWith(r, p.attempt):
			out = append(out, e.task(r, p, TaskCharge))
		case p.state == PaymentPending:
			out = append(out, e.task(r, p, TaskVoid))
		case p.state == PaymentRefundPending:
			out = append(out, e.task(r, p, TaskRefund))
		}
	}
	return out
}

// AllPaymentTasks returns the provider work every retained reservation
// waits for, in creation order: what a recovered event must finish.
func (e *Event) AllPaymentTasks() []PaymentTask {
	var out []PaymentTask
	for _, r := range e.order {
		if r != nil && len(r.payments) > 0 {
			out = append(out, e.PaymentTasks(r.id)...)
		}
	}
	return out
}

func (e *Event) task(r *reservation, p *payment, kind PaymentTaskKind) PaymentTask {
	return PaymentTask{
		Kind: kind, EventID: e.def.ID, ReservationID: r.id, ReservationSeq: r.createdSeq, CustomerID: r.customer, Attempt: p.attempt,
		AmountCents: r.totalCents, Currency: e.def.Currency, Token: p.token, Ref: p.ref,
	}
}

// applyPayment applies the payment records to r (Apply has checked the
// reservation exists). It returns a description of what is wrong with a
// record that does not fit, or "".
func (e *Event) applyPayment(r *reservation, rec Record) string {
	var p *payment
	for _, q := range r.payments {
		if q.attempt == rec.Attempt {
			p = q
		}
	}
	if rec.Type == RecordPaymentStarted {
		if p != nil || r.status != StatusHeld || rec.Attempt != r.attempts+1 || rec.CustomerID != r.customer {
			return "reservation is not held by the customer or the attempt is out of order"
		}
		e.expiries.remove(r)
		r.status, r.attempts, r.heldUntil, r.expiresAt = StatusPaying, rec.Attempt, r.expiresAt, rec.ExpiresAtUnixMilli
		r.payments = append(r.payments, &payment{attempt: rec.Attempt, startedAt: rec.AtUnixMilli, token: rec.PaymentToken})
		heap.Push(&e.expiries, r)
		return ""
	}
	if p == nil || rec.CustomerID != r.customer {
		return "no such payment attempt of the customer"
	}
	if rec.ProviderEventID != "" && p.seen(rec.ProviderEventID) {
		return "provider event already recorded"
	}
	switch rec.Type {
	case RecordSeatsBooked:
		if p.state != PaymentPending || !payingWith(r, rec.Attempt) || rec.BookingID == "" || e.bookings[rec.BookingID] != nil {
			return "reservation is not paying with this attempt"
		}
		if !slices.Equal(rec.Seats, r.seats) {
			return "seats do not match the reservation"
		}
		e.expiries.remove(r)
		r.status, r.bookingID, r.bookedAt = StatusBooked, rec.BookingID, rec.AtUnixMilli
		e.bookings[r.bookingID] = r
		for _, s := range r.seats {
			e.setStatus(s, SeatBooked)
		}
		p.state = PaymentSucceeded
	case RecordPaymentFailed:
		if p.state != PaymentPending {
			return "attempt is not pending"
		}
		if payingWith(r, rec.Attempt) {
			e.expiries.remove(r)
			r.status, r.expiresAt = StatusHeld, r.heldUntil
			heap.Push(&e.expiries, r)
		}
		p.state = PaymentFailed
	case RecordPaymentVoided:
		if p.state != PaymentPending || payingWith(r, rec.Attempt) {
			return "attempt is not pending or is still current"
		}
		p.state = PaymentVoided
	case RecordRefundRequested:
		switch {
		case p.state == PaymentSucceeded && r.status == StatusBooked && r.attempts == rec.Attempt:
			// an operator's refund of the booking
		case p.state == PaymentSucceeded, p.state == PaymentRefundPending, p.state == PaymentRefunded:
			return "attempt's money is already accounted for"
		case payingWith(r, rec.Attempt):
			return "a success for the current attempt books, it is not refunded"
		}
		p.state = PaymentRefundPending
	case RecordPaymentRefunded:
		if p.state != PaymentRefundPending {
			return "no refund pending for the attempt"
		}
		booked := r.status == StatusBooked && r.attempts == rec.Attempt
		if booked != (len(rec.Seats) > 0) || booked && !slices.Equal(rec.Seats, r.seats) {
			return "seats do not match the refunded booking"
		}
		p.state, p.refundRef = PaymentRefunded, rec.PaymentRef
		if booked {
			delete(e.bookings, r.bookingID)
			e.release(r, ReasonRefunded)
		}
		return ""
	}
	if rec.PaymentRef != "" {
		p.ref = rec.PaymentRef
	}
	if rec.ProviderEventID != "" {
		p.events = append(p.events, rec.ProviderEventID)
	}
	return ""
}

func (e *Event) paymentViews(r *reservation) []PaymentAttemptView {
	if len(r.payments) == 0 {
		return nil
	}
	out := make([]PaymentAttemptView, len(r.payments))
	for i, p := range r.payments {
		out[i] = PaymentAttemptView{
			Attempt: p.attempt, State: p.state, StartedAt: time.UnixMilli(p.startedAt).UTC(),
			Ref: p.ref, RefundRef: p.refundRef, Events: slices.Clone(p.events),
		}
	}
	return out
}

// BookingByID returns a booking. Error: booking_not_found.
func (e *Event) BookingByID(bookingID string) (Booking, error) {
	r := e.bookings[bookingID]
	if r == nil {
		return Booking{}, Errorf(CodeBookingNotFound, "no booking %q", bookingID)
	}
	return e.booking(r), nil
}

package payment

import (
	"context"
	"strconv"
)

// Status is the state of one charge (one payment attempt) at the provider.
type Status string

// Charge states, named as Stripe names PaymentIntent states where they match.
const (
	// StatusSucceeded: the money was taken. Only a refund gives it back.
	StatusSucceeded Status = "succeeded"
	// StatusProcessing: the provider answers later, by webhook.
	StatusProcessing Status = "processing"
	// StatusFailed: declined or failed; no money moved.
	StatusFailed Status = "failed"
	// StatusCanceled: the authorisation was voided; no money moved.
	StatusCanceled Status = "canceled"
)

// ChargeRequest is one payment attempt of one reservation. The same request
// may be sent any number of times (after a timeout, after a crash): the
// provider charges at most once per IdempotencyKey and answers every repeat
// with the state of that one charge.
type ChargeRequest struct {
	EventID       string
	ReservationID string
	// ReservationSeq is the journal seq of the reservation's SeatsHeld
	// record: it tells apart two reservations with the same id (an id
	// derived from a client's Idempotency-Key can come back once the first
	// reservation was forgotten), so that they never share provider keys.
	ReservationSeq uint64
	Attempt        uint32 // from 1
	AmountCents    int64  // in the currency's minor unit
	Currency       string // ISO 4217, e.g. "EUR"
	Token          string // the payment method: a test token such as tok_visa, or a Stripe PaymentMethod id
	// Ref is the provider's id of the charge ("pi_..."), when known from
	// an earlier Result or webhook; not part of the idempotency key. Void
	// and Refund use it to find the charge; without it the Stripe adapter
	// finds the charge by re-issuing its create with the same idempotency
	// key, which Stripe answers from its store only for 24 hours.
	Ref string
}

// IdempotencyKey is the key of the attempt at the provider:
// "boxoffice-<eventID>-<reservationID>-<reservationSeq>-<attempt>".
func (r ChargeRequest) IdempotencyKey() string {
	return "boxoffice-" + r.EventID + "-" + r.ReservationID + "-" + strconv.FormatUint(r.ReservationSeq, 10) +
		"-" + strconv.FormatUint(uint64(r.Attempt), 10)
}

// Result is what the provider says about one charge.
type Result struct {
	Status Status
	// Ref is the provider's id of the charge (a Stripe PaymentIntent id,
	// "pi_..."). Empty only when the provider never saw the attempt.
	Ref string
	// DeclineCode says why a charge failed (for example "card_declined").
	DeclineCode string
}

// Refund is a refund made at the provider.
type Refund struct {
	Ref string // the provider's id of the refund ("re_...")
}

// Provider is a payment service provider. Every method is safe for
// concurrent use and idempotent: a repeated call with the same request
// returns the outcome of the first. An error means the provider could not be
// asked or did not answer (network, 5xx, timeout): the caller retries later
// with the same request; it never means "declined" (that is a Result).
type Provider interface {
	// Name is the provider's name in URLs and configuration: "simulated"
	// or "stripe".
	Name() string
	// CheckToken rejects a payment token the provider can never charge,
	// before anything is journaled. Error: an *engine.Error with code
	// invalid_request.
	CheckToken(token string) error
	// Charge creates and confirms the charge of req (at most once per
	// req.IdempotencyKey()) and returns its state.
	Charge(ctx context.Context, req ChargeRequest) (Result, error)
	// Void cancels the authorisation of the charge of req. The Result is
	// StatusCanceled when no money moved (also when the provider never saw
	// the attempt, or it had failed), StatusSucceeded when the money was
	// already taken (the caller refunds), StatusProcessing when it cannot be
	// cancelled yet (the caller tries again later).
	Void(ctx context.Context, req ChargeRequest) (Result, error)
	// Refund gives back the whole amount of the succeeded charge of req
	// (at most once per attempt).
	Refund(ctx context.Context, req ChargeRequest) (Refund, error)
}

// WebhookEvent is a verified provider event about one charge (VerifyWebhook).
type WebhookEvent struct {
	ID            string // the provider's event id ("evt_..."): repeats carry the same id
	Type          string // the provider's event type, e.g. "payment_intent.succeeded"
	Status        Status // what the event says about the charge
	Ref           string // the provider's id of the charge ("pi_...")
	EventID       string // metadata boxoffice_event
	ReservationID string // metadata boxoffice_reservation
	Attempt       uint32 // metadata boxoffice_attempt
	DeclineCode   string // when Status is StatusFailed
}

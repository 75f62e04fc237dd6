package payment

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Webhook verification errors. VerifyWebhook wraps one of them (and, for
// ErrSignature, stripe-go's reason); test with errors.Is.
var (
	// ErrSignature: the Stripe-Signature header is missing or unreadable,
	// no v1 signature matches the raw body and secret, or its timestamp is
	// older than the tolerance. Answer 400; nothing was parsed.
	ErrSignature = errors.New("payment: webhook signature does not verify")
	// ErrNotOurs: a verified event of a type this package does not handle,
	// or about a PaymentIntent without boxoffice metadata. Answer 200 and
	// ignore it, so that the provider stops sending it.
	ErrNotOurs = errors.New("payment: webhook is not about a charge of ours")
	// ErrMalformed: a verified body that is not a usable event (not JSON,
	// no id or type, data.object not a PaymentIntent, incomplete or invalid
	// boxoffice metadata). Answer 400.
	ErrMalformed = errors.New("payment: webhook is not a usable event")
)

// DefaultWebhookTolerance is the tolerance VerifyWebhook applies when given
// zero or less: Stripe's own default, 5 minutes.
const DefaultWebhookTolerance = webhook.DefaultTolerance

// PaymentIntent metadata keys that tie a charge to a payment attempt. Both
// providers set them on every charge; VerifyWebhook reads them back.
const (
	MetadataEvent       = "boxoffice_event"       // ChargeRequest.EventID
	MetadataReservation = "boxoffice_reservation" // ChargeRequest.ReservationID
	MetadataAttempt     = "boxoffice_attempt"     // ChargeRequest.Attempt, decimal, from 1
)

// Stripe event types VerifyWebhook handles, with the charge state each
// reports.
const (
	EventSucceeded  = "payment_intent.succeeded"      // StatusSucceeded
	EventFailed     = "payment_intent.payment_failed" // StatusFailed
	EventCanceled   = "payment_intent.canceled"       // StatusCanceled
	EventProcessing = "payment_intent.processing"     // StatusProcessing
)

// eventStatus maps a handled event type to the charge state it reports.
func eventStatus(eventType string) (Status, bool) {
	switch eventType {
	case EventSucceeded:
		return StatusSucceeded, true
	case EventFailed:
		return StatusFailed, true
	case EventCanceled:
		return StatusCanceled, true
	case EventProcessing:
		return StatusProcessing, true
	}
	return "", false
}

// eventType is the inverse of eventStatus.
func eventType(s Status) string {
	switch s {
	case StatusSucceeded:
		return EventSucceeded
	case StatusFailed:
		return EventFailed
	case StatusCanceled:
		return EventCanceled
	}
	return EventProcessing
}

// chargeMetadata is the PaymentIntent metadata of the charge of req.
func chargeMetadata(req ChargeRequest) map[string]string {
	return map[string]string{
		MetadataEvent:       req.EventID,
		MetadataReservation: req.ReservationID,
		MetadataAttempt:     strconv.FormatUint(uint64(req.Attempt), 10),
	}
}

// VerifyWebhook checks the Stripe-Signature header signatureHeader against
// the raw request body payload (exactly the bytes received: a re-serialised
// body does not verify) with the endpoint's signing secret, and a timestamp
// no older than tolerance (zero or less: DefaultWebhookTolerance); then it
// reads the Stripe event in it. The event's api_version is not checked: only
// fields stable across Stripe API versions are read (id, type,
// data.object.id, .object, .metadata, .last_payment_error).
//
// Handled types are EventSucceeded, EventFailed, EventCanceled and
// EventProcessing; WebhookEvent.Status is the state the type reports, and
// DeclineCode is last_payment_error.decline_code (else .code) of a failed
// charge.
//
// Errors (errors.Is): ErrSignature (wrapping stripe-go's reason),
// ErrNotOurs, ErrMalformed; see their docs for the HTTP answer.
func VerifyWebhook(payload []byte, signatureHeader string, secret string, tolerance time.Duration) (WebhookEvent, error) {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if secret == "" {
		// An empty secret would make every HMAC over "" verifiable by anyone.
		return WebhookEvent{}, fmt.Errorf("%w: no webhook secret configured", ErrSignature)
	}
	ev, err := webhook.ConstructEventWithOptions(payload, signatureHeader, secret, webhook.ConstructEventOptions{
		Tolerance:                tolerance,
		IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
		errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrSignature, err)
	case err != nil:
		// The signature verified; only parsing the body can fail after that.
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return readEvent(ev)
}

// readEvent turns a verified Stripe event into a WebhookEvent.
func readEvent(ev stripe.Event) (WebhookEvent, error) {
	if ev.ID == "" || ev.Type == "" {
		return WebhookEvent{}, fmt.Errorf("%w: event without id or type", ErrMalformed)
	}
	status, ok := eventStatus(string(ev.Type))
	if !ok {
		return WebhookEvent{}, fmt.Errorf("%w: event %s of type %q", ErrNotOurs, ev.ID, ev.Type)
	}
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return WebhookEvent{}, fmt.Errorf("%w: event %s has no data.object", ErrMalformed, ev.ID)
	}
	var pi stripe.PaymentIntent
	if err := pi.UnmarshalJSON(ev.Data.Raw); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: event %s: data.object: %w", ErrMalformed, ev.ID, err)
	}
	if pi.Object != "payment_intent" || pi.ID == "" {
		return WebhookEvent{}, fmt.Errorf("%w: event %s: data.object is not a payment_intent with an id", ErrMalformed, ev.ID)
	}
	eventID, hasEvent := pi.Metadata[MetadataEvent]
	reservationID, hasReservation := pi.Metadata[MetadataReservation]
	attempt, hasAttempt := pi.Metadata[MetadataAttempt]
	if !hasEvent && !hasReservation && !hasAttempt {
		return WebhookEvent{}, fmt.Errorf("%w: payment intent %s has no boxoffice metadata", ErrNotOurs, pi.ID)
	}
	n, err := strconv.ParseUint(attempt, 10, 32)
	if eventID == "" || reservationID == "" || err != nil || n == 0 {
		return WebhookEvent{}, fmt.Errorf("%w: payment intent %s: metadata %s=%q %s=%q %s=%q: want two ids and an attempt from 1",
			ErrMalformed, pi.ID, MetadataEvent, eventID, MetadataReservation, reservationID, MetadataAttempt, attempt)
	}
	out := WebhookEvent{
		ID:            ev.ID,
		Type:          string(ev.Type),
		Status:        status,
		Ref:           pi.ID,
		EventID:       eventID,
		ReservationID: reservationID,
		Attempt:       uint32(n),
	}
	if status == StatusFailed && pi.LastPaymentError != nil {
		out.DeclineCode = string(pi.LastPaymentError.DeclineCode)
		if out.DeclineCode == "" {
			out.DeclineCode = string(pi.LastPaymentError.Code)
		}
	}
	return out, nil
}

// SignWebhook returns the Stripe-Signature header value for payload signed
// with secret at time at ("t=<unix seconds>,v1=<hex>"; a zero at means
// now), computed by stripe-go's webhook.GenerateTestSignedPayload. The
// simulated provider signs its webhooks with it; tests sign fixtures.
func SignWebhook(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload:   payload,
		Secret:    secret,
		Timestamp: at,
	}).Header
}

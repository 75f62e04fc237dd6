package web

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// webhookBodyBytesMax bounds a provider webhook's body (API.md: 64 KiB,
// else 413).
const webhookBodyBytesMax = 64 << 10

// POST /v1/payments/webhooks/{provider} — a provider's event about a
// charge. The raw body is verified (Stripe's signature scheme, one path for
// both providers) before anything is parsed; a repeat of an event changes
// nothing and answers 200; an event for an attempt this server does not
// know (yet) answers 404 so that the provider retries.
func (s *Server) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "provider")
	if s.webhooks.provider == "" || name != s.webhooks.provider {
		s.writeError(w, r, errorf(codeNotFound, "no payment provider %q here", name))
		return
	}
	body, err := readBody(w, r, webhookBodyBytesMax)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ev, err := payment.VerifyWebhook(body, r.Header.Get("Stripe-Signature"), s.webhooks.secret, s.webhooks.tolerance)
	switch {
	case errors.Is(err, payment.ErrNotOurs):
		s.writeJSON(w, r, http.StatusOK, webhookAnswer{Received: true, Ignored: true})
		return
	case errors.Is(err, payment.ErrSignature):
		s.writeError(w, r, errorf(codeInvalidSignature, "the webhook's signature does not verify: %v", err))
		return
	case err != nil:
		s.writeError(w, r, errorf(engine.CodeInvalidRequest, "the webhook is not a usable event: %v", err))
		return
	}
	sys, ok := s.system(w, r)
	if !ok {
		return
	}
	if err := sys.PaymentWebhook(r.Context(), ev); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, webhookAnswer{Received: true})
}

// webhookAnswer is the body of a 200 to a provider's webhook.
type webhookAnswer struct {
	Received bool `json:"received"`
	Ignored  bool `json:"ignored,omitempty"` // verified, but not about a charge of ours
}

// POST /v1/admin/bookings/{bookingId}/refund → 200 the reservation, released
// with reason refunded; 202 the reservation still booked when the provider
// has not answered yet (the refund completes in the background).
func (s *Server) refundBooking(w http.ResponseWriter, r *http.Request) {
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	res, err := sys.RefundBooking(r.Context(), chi.URLParam(r, "bookingId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Status != engine.StatusReleased {
		status = http.StatusAccepted
	}
	s.writeJSON(w, r, status, newAdminReservationView(res))
}

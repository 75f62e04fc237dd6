package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// JSON views of API.md. Times are always written in UTC.

// eventSummaryView is one entry of GET /v1/events.
type eventSummaryView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Venue     string    `json:"venue"`
	StartsAt  time.Time `json:"startsAt"`
	OnSaleAt  time.Time `json:"onSaleAt"`
	Capacity  int       `json:"capacity"`
	Available int       `json:"available"`
	Version   uint64    `json:"version"`
}

func eventSummary(info engine.EventInfo) eventSummaryView {
	return eventSummaryView{
		ID: info.ID, Name: info.Name, Venue: info.Venue,
		StartsAt: info.StartsAt.UTC(), OnSaleAt: info.OnSaleAt.UTC(),
		Capacity: info.Capacity, Available: info.Counts.Available, Version: info.Version,
	}
}

// eventView is GET /v1/events/{id} (engine.EventInfo's JSON names are those
// of API.md).
func eventView(info engine.EventInfo) engine.EventInfo {
	info.StartsAt = info.StartsAt.UTC()
	info.OnSaleAt = info.OnSaleAt.UTC()
	info.SalesEndAt = info.SalesEndAt.UTC()
	if info.Categories == nil {
		info.Categories = []engine.Category{}
	}
	return info
}

// reservationView is a reservation as its customer sees it.
type reservationView struct {
	ID            string    `json:"id"`
	EventID       string    `json:"eventId"`
	Status        string    `json:"status"`
	Seats         []string  `json:"seats"`
	ExpiresAt     time.Time `json:"expiresAt"`
	TotalCents    int64     `json:"totalCents"`
	Currency      string    `json:"currency"`
	BookingID     string    `json:"bookingId,omitempty"`
	ReleaseReason string    `json:"releaseReason,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}

func newReservationView(v engine.ReservationView) reservationView {
	seats := v.Seats
	if seats == nil {
		seats = []string{}
	}
	rv := reservationView{
		ID: v.ID, EventID: v.EventID, Status: v.Status.String(), Seats: seats,
		ExpiresAt: v.ExpiresAt.UTC(), TotalCents: v.TotalCents, Currency: v.Currency,
		BookingID: v.BookingID, CreatedAt: v.CreatedAt.UTC(),
	}
	if v.Status == engine.StatusReleased {
		rv.ReleaseReason = v.ReleaseReason.String()
	}
	return rv
}

// adminReservationView adds what operators see: the customer and the
// payment attempts with their states.
type adminReservationView struct {
	reservationView
	CustomerID string               `json:"customerId"`
	Attempts   []paymentAttemptView `json:"paymentAttempts"`
}

// paymentAttemptView is one payment attempt as operators read it.
type paymentAttemptView struct {
	Attempt        uint32    `json:"attempt"`
	State          string    `json:"state"` // pending, succeeded, failed, voided, refund_pending, refunded
	StartedAt      time.Time `json:"startedAt"`
	PaymentRef     string    `json:"paymentRef,omitempty"`
	RefundRef      string    `json:"refundRef,omitempty"`
	ProviderEvents []string  `json:"providerEvents"`
}

func newAdminReservationView(res engine.ReservationView) adminReservationView {
	v := adminReservationView{reservationView: newReservationView(res), CustomerID: res.CustomerID, Attempts: []paymentAttemptView{}}
	for _, p := range res.Payments {
		events := p.Events
		if events == nil {
			events = []string{}
		}
		v.Attempts = append(v.Attempts, paymentAttemptView{
			Attempt: p.Attempt, State: p.State.String(), StartedAt: p.StartedAt,
			PaymentRef: p.Ref, RefundRef: p.RefundRef, ProviderEvents: events,
		})
	}
	return v
}

// bookingView is one entry of GET /v1/admin/events/{id}/bookings.
type bookingView struct {
	ID            string    `json:"id"`
	ReservationID string    `json:"reservationId"`
	CustomerID    string    `json:"customerId"`
	Seats         []string  `json:"seats"`
	TotalCents    int64     `json:"totalCents"`
	Currency      string    `json:"currency,omitempty"`
	BookedAt      time.Time `json:"bookedAt"`
	PaymentRef    string    `json:"paymentRef,omitempty"` // the provider's charge id
}

func newBookingView(b engine.Booking, currency string) bookingView {
	seats := b.Seats
	if seats == nil {
		seats = []string{}
	}
	return bookingView{
		ID: b.ID, ReservationID: b.ReservationID, CustomerID: b.CustomerID, Seats: seats,
		TotalCents: b.TotalCents, Currency: currency, BookedAt: b.BookedAt.UTC(), PaymentRef: b.PaymentRef,
	}
}

// sessionView is the answer of POST /v1/sessions.
type sessionView struct {
	Token      string    `json:"token"`
	CustomerID string    `json:"customerId"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// writeJSON answers v as JSON with the status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

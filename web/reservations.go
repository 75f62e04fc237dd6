package web

import (
	"net/http"
	"net/url"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/go-chi/chi/v5"
)

// POST /v1/sessions (no body) → 201 {"token", "customerId", "expiresAt"}.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	if s.auth.session == nil {
		s.writeError(w, r, errorf(codeSessionsDisabled, "anonymous sessions are disabled on this server; sign in with your identity provider"))
		return
	}
	token, customerID, expiresAt, err := s.auth.newSession()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, sessionView{Token: token, CustomerID: customerID, ExpiresAt: expiresAt})
}

// POST /v1/reservations, with seatIds or bestAvailable. The checks run in
// API.md's order of precedence: body (413, 400 malformed), token (401),
// event (404), seats per request (400); the actor decides the rest (a
// cancelled event, the sales window, unknown seats, the customer's limit,
// availability, the orphan rule, whether a block is left).
func (s *Server) hold(w http.ResponseWriter, r *http.Request) {
	body, req, ok := readRequest(s, w, r, bodyBytesMax, decodeHoldRequest)
	if !ok {
		return
	}
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	s.idempotent(w, r, customerID, "/v1/reservations", body, func(w http.ResponseWriter, _ bool) {
		info, err := s.eventInfo(r, req.EventID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		seats := len(req.SeatIDs)
		if req.BestAvailable != nil {
			seats = req.BestAvailable.Quantity
		}
		if seats > info.MaxSeatsPerCustomer {
			s.writeError(w, r, errorf(engine.CodeInvalidRequest, "%d seats in one request; this event allows at most %d per customer",
				seats, info.MaxSeatsPerCustomer))
			return
		}
		if err := s.checkAdmission(r, info, customerID, seats); err != nil {
			s.writeError(w, r, err)
			return
		}
		var res engine.ReservationView
		key := r.Header.Get("Idempotency-Key")
		switch {
		case req.BestAvailable != nil:
			ba := req.BestAvailable
			res, err = sys.HoldBest(r.Context(), req.EventID, customerID, key,
				engine.BestAvailable{Quantity: ba.Quantity, Category: ba.Category, Zone: ba.Zone})
		case key != "":
			res, err = sys.HoldIdempotent(r.Context(), req.EventID, customerID, key, req.SeatIDs)
		default:
			res, err = sys.Hold(r.Context(), req.EventID, customerID, req.SeatIDs)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/v1/reservations/"+url.PathEscape(res.ID))
		s.writeJSON(w, r, http.StatusCreated, newReservationView(res))
	})
}

// GET /v1/reservations?eventId= — the caller's reservations, newest first.
func (s *Server) listReservations(w http.ResponseWriter, r *http.Request) {
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	list, err := sys.Reservations(r.Context(), customerID, r.URL.Query().Get("eventId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views := make([]reservationView, len(list))
	for i, v := range list {
		views[i] = newReservationView(v)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"reservations": views})
}

// GET /v1/reservations/{reservationId}
func (s *Server) getReservation(w http.ResponseWriter, r *http.Request) {
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	res, err := sys.Reservation(r.Context(), customerID, chi.URLParam(r, "reservationId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newReservationView(res))
}

// DELETE /v1/reservations/{reservationId} → 204, also when already released.
func (s *Server) cancelReservation(w http.ResponseWriter, r *http.Request) {
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	if err := sys.Cancel(r.Context(), customerID, chi.URLParam(r, "reservationId")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// POST /v1/reservations/{reservationId}/pay → 200 booked, 202 paying.
func (s *Server) pay(w http.ResponseWriter, r *http.Request) {
	body, req, ok := readRequest(s, w, r, bodyBytesMax, decodePayRequest)
	if !ok {
		return
	}
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	reservationID := chi.URLParam(r, "reservationId")
	s.idempotent(w, r, customerID, "/v1/reservations/"+reservationID+"/pay", body, func(w http.ResponseWriter, retry bool) {
		res, err := sys.Pay(r.Context(), customerID, reservationID, req.PaymentToken)
		if retry && engine.CodeOf(err) == engine.CodePaymentInProgress {
			// The payment in progress is this key's own first attempt,
			// whose answer was lost to a 5xx: answer as it would have.
			res, err = sys.Reservation(r.Context(), customerID, reservationID)
			switch {
			case err != nil, res.Status == engine.StatusBooked, res.Status == engine.StatusPaying:
			case res.Status == engine.StatusReleased && res.ReleaseReason == engine.ReasonExpired:
				err = errorf(engine.CodeReservationExpired, "reservation %q expired", res.ID)
			case res.Status == engine.StatusReleased:
				err = errorf(engine.CodeReservationReleased, "reservation %q was released (%s)", res.ID, res.ReleaseReason)
			default: // held again: the payment failed
				err = errorf(engine.CodePaymentDeclined, "the payment did not go through; the reservation is held until it expires")
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if res.Status == engine.StatusPaying {
			status = http.StatusAccepted
		}
		s.writeJSON(w, r, status, newReservationView(res))
	})
}

package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"

	"github.com/boxoffice/boxoffice/engine"
)

// The waiting room over HTTP (API.md, Waiting room). Places live in the
// event actor (engine/event_room.go); an admitted visitor gets a signed
// admission token, which POST /v1/reservations requires while the event's
// room is on.

// admissionIssuer is the iss of admission tokens.
const admissionIssuer = "boxoffice-admission"

// admissionClaims are an admission token's claims: the customer (sub), the
// event (aud), the ticket (jti), the expiry (exp) and the seat budget.
type admissionClaims struct {
	jwt.RegisteredClaims
	Budget int `json:"budget"` // seats the admission may hold and book
}

// ticketView is the answer of the queue endpoints.
type ticketView struct {
	Ticket             string     `json:"ticket"`
	Status             string     `json:"status"`           // pre_queue, waiting, admitted, sold_out, expired, left
	Reason             string     `json:"reason,omitempty"` // why an expired ticket ended: abandoned, lapsed, expired, done
	Position           *int       `json:"position"`         // null unless waiting
	ETASeconds         int        `json:"etaSeconds"`       // estimated wait until admission
	PollAfterSeconds   int        `json:"pollAfterSeconds"` // poll no sooner than this
	AdmitPerSecond     float64    `json:"admitPerSecond"`   // the rate the estimate assumes
	AdmissionToken     string     `json:"admissionToken,omitempty"`
	AdmissionExpiresAt *time.Time `json:"admissionExpiresAt,omitempty"`
	ClaimBy            *time.Time `json:"claimBy,omitempty"` // an unclaimed admission lapses then
	SeatBudget         int        `json:"seatBudget,omitempty"`
}

// newTicketView renders tv; an admitted ticket gets its admission token.
func (s *Server) newTicketView(eventID string, tv engine.TicketView) (ticketView, error) {
	v := ticketView{
		Ticket: tv.Ticket, Status: string(tv.Status), Reason: tv.Reason.String(),
		ETASeconds: tv.ETASeconds, PollAfterSeconds: tv.PollAfterSeconds, AdmitPerSecond: tv.AdmitPerSecond,
	}
	if tv.Status == engine.TicketLeft {
		// API.md knows no "left": a deleted ticket reads expired, reason left.
		v.Status = string(engine.TicketExpired)
	}
	if tv.Status == engine.TicketWaiting {
		pos := tv.Position
		v.Position = &pos
	}
	if tv.Status == engine.TicketAdmitted {
		exp, claim := tv.AdmissionExpiresAt.UTC(), tv.ClaimBy.UTC()
		v.AdmissionExpiresAt, v.ClaimBy, v.SeatBudget = &exp, &claim, tv.SeatBudget
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, admissionClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: admissionIssuer, Subject: tv.CustomerID, Audience: jwt.ClaimStrings{eventID},
				ID: tv.Ticket, ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(tv.AdmittedAt),
			},
			Budget: tv.SeatBudget,
		}).SignedString(s.admissionKey)
		if err != nil {
			return ticketView{}, err
		}
		v.AdmissionToken = token
	}
	return v, nil
}

// POST /v1/events/{eventId}/queue → 201 the caller's ticket (the same one
// when they have a place already).
func (s *Server) joinQueue(w http.ResponseWriter, r *http.Request) {
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return
	}
	eventID := chi.URLParam(r, "eventId")
	tv, err := sys.QueueJoin(r.Context(), eventID, customerID)
	s.writeTicket(w, r, eventID, tv, err, http.StatusCreated)
}

// GET /v1/events/{eventId}/queue/{ticket} → 200 the caller's ticket; counts
// as the visitor's poll. Another customer's ticket: 404.
func (s *Server) pollQueue(w http.ResponseWriter, r *http.Request) {
	eventID, tv, _, ok := s.ownTicket(w, r)
	if ok {
		s.writeTicket(w, r, eventID, tv, nil, http.StatusOK)
	}
}

// DELETE /v1/events/{eventId}/queue/{ticket} → 204: leave the queue.
func (s *Server) leaveQueue(w http.ResponseWriter, r *http.Request) {
	eventID, tv, sys, ok := s.ownTicket(w, r)
	if !ok {
		return
	}
	if err := sys.QueueLeave(r.Context(), eventID, tv.Ticket); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ownTicket reads the path's ticket for its customer (a poll), answering
// itself (ok false) when it is unknown or another customer's (404).
func (s *Server) ownTicket(w http.ResponseWriter, r *http.Request) (eventID string, tv engine.TicketView, sys System, ok bool) {
	customerID, sys, ok := s.customerSystem(w, r)
	if !ok {
		return "", tv, nil, false
	}
	eventID, ticket := chi.URLParam(r, "eventId"), chi.URLParam(r, "ticket")
	tv, err := sys.QueuePoll(r.Context(), eventID, ticket)
	if err == nil && tv.CustomerID != customerID {
		err = errorf(engine.CodeTicketNotFound, "no ticket %q", ticket)
	}
	if err != nil {
		s.writeError(w, r, err)
		return "", tv, nil, false
	}
	return eventID, tv, sys, true
}

func (s *Server) writeTicket(w http.ResponseWriter, r *http.Request, eventID string, tv engine.TicketView, err error, status int) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.newTicketView(eventID, tv)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, status, v)
}

// checkAdmission verifies, while the event's waiting room is on, the
// request's Admission-Token: signed by this server, for this event and
// customer, not expired, and with a budget that covers the seats asked
// for. Errors: admission_required (reason "expired" for an expired token),
// admission_budget_exceeded.
func (s *Server) checkAdmission(r *http.Request, info engine.EventInfo, customerID string, seats int) error {
	if info.WaitingRoom == nil || !info.WaitingRoom.Enabled {
		return nil
	}
	raw := r.Header.Get("Admission-Token")
	if raw == "" {
		return errorf(engine.CodeAdmissionRequired, "the waiting room of %s is on: join it (POST /v1/events/%s/queue) and hold with its Admission-Token", info.ID, info.ID)
	}
	var c admissionClaims
	_, err := s.admissionParser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return s.admissionKey, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		e := errorf(engine.CodeAdmissionRequired, "the admission token expired; join the waiting room again")
		e.Reason = "expired"
		return e
	case err != nil:
		return errorf(engine.CodeAdmissionRequired, "the Admission-Token is not valid: %v", err)
	case c.Subject != customerID || len(c.Audience) != 1 || c.Audience[0] != info.ID:
		return errorf(engine.CodeAdmissionRequired, "the Admission-Token was issued to another customer or event")
	case seats > c.Budget:
		return errorf(engine.CodeAdmissionBudgetExceeded, "%d seats asked for; the admission allows %d", seats, c.Budget)
	}
	return nil
}

package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// Codes the web layer adds to those of engine/errors.go and package actors.
// Their spelling is part of the HTTP contract (API.md), like the engine's.
const (
	codeUnauthenticated      engine.Code = "unauthenticated"
	codeForbidden            engine.Code = "forbidden"
	codeNotFound             engine.Code = "not_found"
	codeMethodNotAllowed     engine.Code = "method_not_allowed"
	codeBodyTooLarge         engine.Code = "body_too_large"
	codeRateLimited          engine.Code = "rate_limited"
	codeIdempotencyKeyReused             = actors.CodeIdempotencyKeyReused
	codeSessionsDisabled     engine.Code = "anonymous_sessions_disabled"
	codeNotReady             engine.Code = "not_ready"
	codeInternal             engine.Code = "internal"
	codeInvalidSignature     engine.Code = "invalid_signature"
)

// problemKind is what a code means over HTTP.
type problemKind struct {
	status int
	title  string
}

// problemKinds is the one table mapping error codes to HTTP statuses. A code
// that is missing here is a programming error and answers 500.
var problemKinds = map[engine.Code]problemKind{
	engine.CodeInvalidRequest:      {http.StatusBadRequest, "Invalid request"},
	engine.CodeInvalidPlan:         {http.StatusBadRequest, "Invalid seating plan"},
	engine.CodeEventNotFound:       {http.StatusNotFound, "Event not found"},
	engine.CodeEventExists:         {http.StatusConflict, "Event already exists"},
	engine.CodeEventCancelled:      {http.StatusConflict, "Event cancelled"},
	engine.CodeSalesNotOpen:        {http.StatusConflict, "Sales not open yet"},
	engine.CodeSalesClosed:         {http.StatusConflict, "Sales closed"},
	engine.CodeSeatNotFound:        {http.StatusNotFound, "Seat not found"},
	engine.CodeLimitExceeded:       {http.StatusUnprocessableEntity, "Seat limit exceeded"},
	engine.CodeSeatUnavailable:     {http.StatusConflict, "Seat unavailable"},
	engine.CodeOrphanSeat:          {http.StatusConflict, "Seat would be left single"},
	engine.CodeNoAdjacentSeats:     {http.StatusConflict, "No adjacent seats"},
	engine.CodeSeatHeld:            {http.StatusConflict, "Seat held by a reservation"},
	engine.CodeReservationNotFound: {http.StatusNotFound, "Reservation not found"},
	engine.CodeReservationExpired:  {http.StatusGone, "Reservation expired"},
	engine.CodeReservationReleased: {http.StatusConflict, "Reservation released"},
	engine.CodePaymentInProgress:   {http.StatusConflict, "Payment in progress"},
	engine.CodePaymentDeclined:     {http.StatusPaymentRequired, "Payment declined"},
	engine.CodeAlreadyBooked:       {http.StatusConflict, "Already booked"},
	engine.CodeNotPaying:           {http.StatusConflict, "Reservation is not paying"},
	engine.CodeCorruptRecord:       {http.StatusInternalServerError, "Corrupt journal record"},
	engine.CodeBookingNotFound:     {http.StatusNotFound, "Booking not found"},

	actors.CodeEventUnavailable:   {http.StatusServiceUnavailable, "Event unavailable"},
	actors.CodeStorageUnavailable: {http.StatusServiceUnavailable, "Storage unavailable"},
	actors.CodeOverloaded:         {http.StatusServiceUnavailable, "Overloaded"},
	actors.CodeTimeout:            {http.StatusServiceUnavailable, "Timed out"},

	codeUnauthenticated:      {http.StatusUnauthorized, "Unauthenticated"},
	codeForbidden:            {http.StatusForbidden, "Forbidden"},
	codeNotFound:             {http.StatusNotFound, "Not found"},
	codeMethodNotAllowed:     {http.StatusMethodNotAllowed, "Method not allowed"},
	codeBodyTooLarge:         {http.StatusRequestEntityTooLarge, "Request body too large"},
	codeRateLimited:          {http.StatusTooManyRequests, "Too many requests"},
	codeIdempotencyKeyReused: {http.StatusUnprocessableEntity, "Idempotency key reused"},
	codeSessionsDisabled:     {http.StatusForbidden, "Anonymous sessions disabled"},
	codeNotReady:             {http.StatusServiceUnavailable, "Not ready"},
	codeInternal:             {http.StatusInternalServerError, "Internal error"},
	codeInvalidSignature:     {http.StatusBadRequest, "Invalid webhook signature"},

	engine.CodeTicketNotFound:          {http.StatusNotFound, "Ticket not found"},
	engine.CodeAdmissionRequired:       {http.StatusForbidden, "Admission required"},
	engine.CodeAdmissionBudgetExceeded: {http.StatusUnprocessableEntity, "Admission budget exceeded"},
	engine.CodeQueueFull:               {http.StatusServiceUnavailable, "Waiting room full"},
}

// retryAfterSeconds is the Retry-After a 503 carries: the condition (a full
// mailbox, a store being reopened, recovery) is expected to pass quickly.
const retryAfterSeconds = 1

// problemTypePrefix makes a problem's "type" URI from its code (RFC 9457 §3.1.1).
const problemTypePrefix = "urn:boxoffice:problem:"

// problem is an RFC 9457 problem document with boxoffice's "code" member and
// optional seat lists.
type problem struct {
	Type             string   `json:"type"`
	Title            string   `json:"title"`
	Status           int      `json:"status"`
	Detail           string   `json:"detail"`
	Code             string   `json:"code"`
	UnavailableSeats []string `json:"unavailableSeats,omitempty"`
	UnknownSeats     []string `json:"unknownSeats,omitempty"`
	OrphanSeats      []string `json:"orphanSeats,omitempty"`
	SeatIDs          []string `json:"seatIds,omitempty"`
	Reason           string   `json:"reason,omitempty"` // admission_required: "expired" for an admission that ran out
}

// problemFor turns any error into a problem document. Errors that are not
// *engine.Error are context errors (the request's deadline) or bugs.
func problemFor(err error) problem {
	var e *engine.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e = &engine.Error{Code: actors.CodeTimeout, Message: "the request did not complete in time; retry later"}
	default:
		e = &engine.Error{Code: codeInternal, Message: "internal error"}
	}
	kind, ok := problemKinds[e.Code]
	if !ok {
		kind = problemKinds[codeInternal]
	}
	p := problem{
		Type:   problemTypePrefix + string(e.Code),
		Title:  kind.title,
		Status: kind.status,
		Detail: e.Message,
		Code:   string(e.Code),
		Reason: e.Reason,
	}
	if len(e.Seats) > 0 {
		switch e.Code {
		case engine.CodeSeatUnavailable:
			p.UnavailableSeats = e.Seats
		case engine.CodeSeatNotFound:
			p.UnknownSeats = e.Seats
		case engine.CodeOrphanSeat:
			p.OrphanSeats = e.Seats
		default:
			p.SeatIDs = e.Seats
		}
	}
	return p
}

// writeError answers err as problem+json. Server-side failures (5xx) are
// logged with the request; client errors are not.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status >= 500 && p.Code != string(codeNotReady) { // not_ready is expected while recovering
		level := slog.LevelError
		if p.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "request failed",
			"method", r.Method, "path", r.URL.Path, "status", p.Status, "code", p.Code, "err", err)
	}
	writeProblem(w, p)
}

// writeProblem writes p with the headers its status calls for.
func writeProblem(w http.ResponseWriter, p problem) {
	body, err := json.Marshal(p)
	if err != nil { // only strings and ints: cannot happen
		body = []byte(`{"type":"urn:boxoffice:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	switch p.Status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="boxoffice"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// errorf returns an *engine.Error; the web layer uses the engine's one error
// type for its own codes too, so that writeError has one path.
func errorf(code engine.Code, format string, args ...any) *engine.Error {
	return engine.Errorf(code, format, args...)
}

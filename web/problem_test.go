package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// TestProblemTable pins the HTTP status of every code API.md names.
func TestProblemTable(t *testing.T) {
	tests := []struct {
		code   engine.Code
		status int
	}{
		{engine.CodeInvalidRequest, 400},
		{engine.CodeInvalidPlan, 400},
		{engine.CodeEventNotFound, 404},
		{engine.CodeEventExists, 409},
		{engine.CodeSalesNotOpen, 409},
		{engine.CodeSalesClosed, 409},
		{engine.CodeSeatNotFound, 404},
		{engine.CodeLimitExceeded, 422},
		{engine.CodeSeatUnavailable, 409},
		{engine.CodeSeatHeld, 409},
		{engine.CodeReservationNotFound, 404},
		{engine.CodeReservationExpired, 410},
		{engine.CodeReservationReleased, 409},
		{engine.CodePaymentInProgress, 409},
		{engine.CodePaymentDeclined, 402},
		{engine.CodeAlreadyBooked, 409},
		{actors.CodeEventUnavailable, 503},
		{actors.CodeStorageUnavailable, 503},
		{actors.CodeOverloaded, 503},
		{actors.CodeTimeout, 503},
		{codeUnauthenticated, 401},
		{codeForbidden, 403},
		{codeNotFound, 404},
		{codeMethodNotAllowed, 405},
		{codeBodyTooLarge, 413},
		{codeRateLimited, 429},
		{codeIdempotencyKeyReused, 422},
		{engine.Code("no_such_code"), 500},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			p := problemFor(fmt.Errorf("wrapped: %w", errorf(tt.code, "detail text")))
			if p.Status != tt.status {
				t.Errorf("status = %d, want %d", p.Status, tt.status)
			}
			if tt.status != 500 && (p.Code != string(tt.code) || p.Detail != "detail text" || p.Type != problemTypePrefix+string(tt.code)) {
				t.Errorf("problem = %+v", p)
			}
		})
	}
	if p := problemFor(context.DeadlineExceeded); p.Status != 503 || p.Code != string(actors.CodeTimeout) {
		t.Errorf("deadline: %+v", p)
	}
	if p := problemFor(errors.New("boom")); p.Status != 500 || p.Code != string(codeInternal) || p.Detail == "boom" {
		t.Errorf("plain error: %+v (must not leak the message)", p)
	}
}

// TestProblemSeats checks which member carries a seat list.
func TestProblemSeats(t *testing.T) {
	seats := []string{"a", "b"}
	tests := []struct {
		code engine.Code
		get  func(problem) []string
	}{
		{engine.CodeSeatUnavailable, func(p problem) []string { return p.UnavailableSeats }},
		{engine.CodeSeatNotFound, func(p problem) []string { return p.UnknownSeats }},
		{engine.CodeSeatHeld, func(p problem) []string { return p.SeatIDs }},
	}
	for _, tt := range tests {
		p := problemFor(&engine.Error{Code: tt.code, Message: "m", Seats: seats})
		if got := tt.get(p); !slices.Equal(got, seats) {
			t.Errorf("%s: seats = %v, want %v", tt.code, got, seats)
		}
	}
}

// TestProblemHeaders checks Retry-After on 503 and WWW-Authenticate on 401.
func TestProblemHeaders(t *testing.T) {
	for code, header := range map[engine.Code]string{actors.CodeOverloaded: "Retry-After", codeUnauthenticated: "WWW-Authenticate"} {
		w := httptest.NewRecorder()
		writeProblem(w, problemFor(errorf(code, "x")))
		if w.Header().Get(header) == "" || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: headers %v", code, w.Header())
		}
	}
	// Every code in the table has a status with a text.
	for code, kind := range problemKinds {
		if http.StatusText(kind.status) == "" || kind.title == "" {
			t.Errorf("%s: %+v", code, kind)
		}
	}
}

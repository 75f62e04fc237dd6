package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a stable, machine-readable error code. The web layer maps each code
// to an HTTP status in exactly one table; the codes are those of API.md.
type Code string

// Error codes returned by the engine. Their spelling is part of the HTTP
// contract (problem+json "code"), so never rename one.
const (
	CodeInvalidRequest      Code = "invalid_request"
	CodeInvalidPlan         Code = "invalid_plan"
	CodeEventNotFound       Code = "event_not_found"
	CodeEventExists         Code = "event_exists"
	CodeEventCancelled      Code = "event_cancelled"
	CodeSalesNotOpen        Code = "sales_not_open"
	CodeSalesClosed         Code = "sales_closed"
	CodeSeatNotFound        Code = "seat_not_found"
	CodeLimitExceeded       Code = "limit_exceeded"
	CodeSeatUnavailable     Code = "seat_unavailable"
	CodeOrphanSeat          Code = "orphan_seat"
	CodeNoAdjacentSeats     Code = "no_adjacent_seats"
	CodeSeatHeld            Code = "seat_held"
	CodeReservationNotFound Code = "reservation_not_found"
	CodeReservationExpired  Code = "reservation_expired"
	CodeReservationReleased Code = "reservation_released"
	CodePaymentInProgress   Code = "payment_in_progress"
	CodePaymentDeclined     Code = "payment_declined"
	CodeAlreadyBooked       Code = "already_booked"
	CodeNotPaying           Code = "not_paying"
	CodeCorruptRecord       Code = "corrupt_record"
	CodeBookingNotFound     Code = "booking_not_found"
	// The waiting room (room.go).
	CodeTicketNotFound    Code = "ticket_not_found"   // no queue ticket with that id
	CodeAdmissionRequired Code = "admission_required" // the customer holds no valid admission now
	CodeQueueFull         Code = "queue_full"         // the room holds RoomTicketsMax tickets
)

// Error is the engine's one error type: a stable Code, a human-readable
// Message, and optional seat ids the error is about (unknown seats for
// seat_not_found, taken seats for seat_unavailable, held seats for seat_held,
// the seats a hold would strand for orphan_seat).
type Error struct {
	Code    Code
	Message string
	Seats   []string
	// Reason qualifies Code for clients, when it has one (API.md:
	// admission_required with reason "expired").
	Reason string
}

func (e *Error) Error() string {
	if len(e.Seats) == 0 {
		return "engine: " + string(e.Code) + ": " + e.Message
	}
	return fmt.Sprintf("engine: %s: %s (%s)", e.Code, e.Message, strings.Join(e.Seats, ", "))
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of err if it is (or wraps) an *Error, else "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

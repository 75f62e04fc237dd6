package web

import (
	"context"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// System is what the HTTP layer asks of the actor system; *actors.System
// satisfies it. Errors are *engine.Error (engine.CodeOf); besides the engine's
// codes it may answer event_unavailable, storage_unavailable, overloaded and
// timeout (all 503).
type System interface {
	// CreateEvent creates an event: event_exists, invalid_plan, invalid_request.
	CreateEvent(ctx context.Context, def engine.EventDefinition) (engine.EventInfo, error)
	// Event returns an event's read model: event_not_found.
	Event(ctx context.Context, eventID string) (engine.EventInfo, error)
	// Hold reserves all of seatIDs for the customer, or none.
	Hold(ctx context.Context, eventID, customerID string, seatIDs []string) (engine.ReservationView, error)
	// HoldIdempotent is Hold for a request with an Idempotency-Key: a retry
	// finds the reservation of its first attempt, also after a timeout or a
	// restart.
	HoldIdempotent(ctx context.Context, eventID, customerID, idempotencyKey string, seatIDs []string) (engine.ReservationView, error)
	// HoldBest lets the event choose and hold the best block of adjacent
	// seats (no_adjacent_seats when none is left); idempotencyKey "" means
	// none.
	HoldBest(ctx context.Context, eventID, customerID, idempotencyKey string, want engine.BestAvailable) (engine.ReservationView, error)
	// UpdateEvent applies an operator's change (invalid_request naming the
	// field) and returns the event as it then is.
	UpdateEvent(ctx context.Context, eventID string, patch engine.EventPatch) (engine.EventInfo, error)
	// Reservation returns the customer's reservation; another customer's is
	// reservation_not_found.
	Reservation(ctx context.Context, customerID, reservationID string) (engine.ReservationView, error)
	// Reservations lists the customer's reservations, newest first; eventID
	// "" means every event.
	Reservations(ctx context.Context, customerID, eventID string) ([]engine.ReservationView, error)
	// AdminReservation returns any reservation, for operators.
	AdminReservation(ctx context.Context, reservationID string) (engine.ReservationView, error)
	// Pay charges the reservation with the payment provider: booked, or
	// paying while the provider answers later.
	Pay(ctx context.Context, customerID, reservationID, paymentToken string) (engine.ReservationView, error)
	// Cancel releases a held reservation; idempotent.
	Cancel(ctx context.Context, customerID, reservationID string) error
	// Block withholds seats from sale; seat_held when a live reservation holds one.
	Block(ctx context.Context, eventID string, seatIDs []string) error
	// Unblock returns withheld seats to sale.
	Unblock(ctx context.Context, eventID string, seatIDs []string) error
	// Bookings lists an event's bookings.
	Bookings(ctx context.Context, eventID string) ([]engine.Booking, error)
	// PaymentWebhook applies a verified provider event; reservation_not_found
	// or not_paying when the attempt is unknown (yet).
	PaymentWebhook(ctx context.Context, ev payment.WebhookEvent) error
	// QueueJoin gives the customer a place in the event's waiting room
	// (or the one they have); ticket_not_found without a room.
	QueueJoin(ctx context.Context, eventID, customerID string) (engine.TicketView, error)
	// QueuePoll reads a ticket and counts the poll: ticket_not_found.
	QueuePoll(ctx context.Context, eventID, ticket string) (engine.TicketView, error)
	// QueueLeave takes a ticket out of the waiting room: ticket_not_found.
	QueueLeave(ctx context.Context, eventID, ticket string) error
	// RefundBooking refunds a booking with the provider and returns its
	// seats to sale: booking_not_found.
	RefundBooking(ctx context.Context, bookingID string) (engine.ReservationView, error)
}

// The actor system is the System, and the Hub is its seat feed.
var (
	_ System          = (*actors.System)(nil)
	_ actors.SeatFeed = (*Hub)(nil)
)

package actors

import (
	"time"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// request carries one request to an event actor and the channel its one
// reply goes to (capacity 1: the actor never blocks on it). A plain channel
// instead of a protoactor future: no process-registry entry and no timer
// per request, and the waiting caller owns its own timeout.
type request struct {
	body  any
	reply chan *reply
}

// Request bodies. Each is answered with a *reply (below) only once the
// batch that was pending when it was decided is durable.
type (
	holdRequest struct {
		customerID    string
		reservationID string
		seatIDs       []string
		// idempotent: the id derives from the client's Idempotency-Key, so
		// an existing reservation of this customer with this id is the
		// answer of an earlier attempt, to be returned again.
		idempotent bool
	}
	// holdBestRequest asks the engine to choose the seats (best available).
	holdBestRequest struct {
		customerID    string
		reservationID string
		want          engine.BestAvailable
		idempotent    bool // as for holdRequest
	}
	// updateRequest is an operator's change to the event.
	updateRequest struct{ patch engine.EventPatch }
	cancelRequest struct{ customerID, reservationID string }
	// beginPaymentRequest is answered once the attempt it starts has an
	// outcome (booked, declined, the seats gone) or the provider said it
	// answers later (the reservation reads paying).
	beginPaymentRequest struct{ customerID, reservationID, token string }
	// paymentOutcome is the payment worker's answer for one task; err when
	// the provider could not be asked.
	paymentOutcome struct {
		task   engine.PaymentTask
		result payment.Result
		refund payment.Refund
		err    error
	}
	// webhookRequest is a verified provider event.
	webhookRequest struct{ event payment.WebhookEvent }
	// refundBookingRequest is answered once the provider refunded.
	refundBookingRequest struct{ bookingID string }
	blockRequest         struct {
		seatIDs []string
		block   bool
	}
	reservationRequest struct {
		customerID    string // "" for an operator: any customer's
		reservationID string
	}
	reservationsRequest struct{ customerID string }
	bookingsRequest     struct{}
	infoRequest         struct{}
	// drainRequest is answered once everything decided before it is durable.
	drainRequest struct{}
)

// reply is the one answer type of the event actor.
type reply struct {
	err          error
	reservation  engine.ReservationView
	reservations []engine.ReservationView
	bookings     []engine.Booking
	info         engine.EventInfo
	attempt      uint32
	ticket       engine.TicketView
}

// Internal messages.
type (
	// committed reports that the committer finished a batch.
	committed struct {
		lastSeq uint64
		err     error
	}
	// expiryDue is the expiry timer firing; at is the deadline it was set for.
	expiryDue struct{ at time.Time }
	// retryRecovery asks an actor that could not recover to try again.
	retryRecovery struct{}
)

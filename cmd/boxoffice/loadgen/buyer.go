package loadgen

import (
	"time"
)

// step is what a buyer does next.
type step uint8

const (
	stepArrive     step = iota // local: load the event page, or look at the map
	stepLook                   // local: look at the live map again (a watcher saw seats come back)
	stepEvent                  // GET the event page
	stepSession                // POST /v1/sessions
	stepQueueJoin              // POST .../queue
	stepQueuePoll              // GET .../queue/{ticket}
	stepHold                   // POST /v1/reservations
	stepPay                    // POST .../pay
	stepPayPoll                // GET /v1/reservations/{id}: wait for a payment confirmed later
	stepCancel                 // DELETE /v1/reservations/{id}
	stepQueueLeave             // DELETE .../queue/{ticket}: done with the waiting room without a booking
)

var stepEndpoint = [...]endpoint{
	stepEvent: epEvent, stepSession: epSession, stepQueueJoin: epQueueJoin, stepQueuePoll: epQueuePoll,
	stepHold: epHold, stepPay: epPay, stepPayPoll: epReservation, stepCancel: epCancel,
	stepQueueLeave: epQueueLeave,
}

func (s step) network() bool { return s >= stepEvent }

// fate is what a buyer with a hold does with it.
type fate uint8

const (
	fatePay fate = iota
	fateCancel
	fateAbandon
)

// Outcomes of a buyer's visit (Report.Buyers.Outcomes).
const (
	OutcomeBooked          = "booked"
	OutcomeCancelled       = "cancelled"
	OutcomeAbandoned       = "abandoned"
	OutcomeSoldOut         = "soldOut"
	OutcomeRefused         = "refused"
	OutcomeHoldExpired     = "holdExpired"
	OutcomePaymentDeclined = "paymentDeclined"
	OutcomeQueueExpired    = "queueExpired"
	OutcomeFailed          = "failed"
	OutcomeInterrupted     = "interrupted"
	OutcomeNotArrived      = "notArrived"
)

// Bounds per buyer.
const (
	payTriesMax   = 3   // payment or cancel attempts after errors
	payPollsMax   = 120 // polls of a payment confirmed later, one a second
	queueJoinsMax = 2   // joins of the waiting room (again after an expired admission)
	queuePollsMax = 100_000
)

// buyer is one virtual user: a small state machine the run loop drives.
// A buyer has at most one request in flight; while it is with a worker
// only the worker touches it, and the loop again once it is back.
type buyer struct {
	due  time.Time // when the next step is meant to happen (open loop)
	seq  uint64    // arrival order: ties on due go first come, first served
	step step

	want       int8 // seats wanted
	pref       int8 // preferred category rank (0: the most expensive)
	fate       fate
	handPicked bool
	waiting    bool // counted in the waiting room's queue

	attempts, tries, joins int8
	polls                  int32
	watchUntil             time.Time // a watcher gives up then (zero: not watching yet)

	token     string // customer bearer token
	ticket    string // waiting-room ticket
	outcome   string // how the visit ended, while it still leaves the waiting room
	admission string // admission token
	resID     string
	resSeats  []string

	// The request the worker sends.
	method, path string
	body         []byte
	hdr          [][2]string

	// What came back.
	sent, end time.Time
	ans       answer // body not kept
	dec       buyerAnswer
}

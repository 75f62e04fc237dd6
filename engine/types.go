package engine

import (
	"encoding/json"
	"time"
)

// SeatStatus is the sale status of one seat. Numeric values appear in
// snapshots: never renumber.
type SeatStatus uint8

// Seat statuses (API.md: available, reserved, booked, blocked).
const (
	SeatAvailable SeatStatus = 0
	SeatReserved  SeatStatus = 1 // held by a live reservation (held or paying)
	SeatBooked    SeatStatus = 2
	SeatBlocked   SeatStatus = 3
)

var seatStatusNames = [...]string{"available", "reserved", "booked", "blocked"}

func (s SeatStatus) String() string {
	if int(s) < len(seatStatusNames) {
		return seatStatusNames[s]
	}
	return "unknown"
}

// ReservationStatus is the lifecycle state of a reservation:
// held → paying → booked, or held/paying → released.
type ReservationStatus uint8

// Reservation statuses; numeric values appear in snapshots.
const (
	StatusHeld     ReservationStatus = 0
	StatusPaying   ReservationStatus = 1
	StatusBooked   ReservationStatus = 2
	StatusReleased ReservationStatus = 3
)

var reservationStatusNames = [...]string{"held", "paying", "booked", "released"}

func (s ReservationStatus) String() string {
	if int(s) < len(reservationStatusNames) {
		return reservationStatusNames[s]
	}
	return "unknown"
}

// Live reports whether a reservation in this status still holds its seats
// without being sold (held or paying).
func (s ReservationStatus) Live() bool { return s == StatusHeld || s == StatusPaying }

// EventDefinition is an event as an operator creates it (API.md, POST
// /v1/admin/events). It is journaled as JSON in the EventCreated record, so
// its JSON field names are part of the on-disk format.
type EventDefinition struct {
	ID                  string           `json:"id"`
	Name                string           `json:"name"`
	StartsAt            time.Time        `json:"startsAt"`
	OnSaleAt            time.Time        `json:"onSaleAt"`
	SalesEndAt          time.Time        `json:"salesEndAt,omitzero"` // zero: sales run until StartsAt
	HoldTTLSeconds      int              `json:"holdTtlSeconds"`
	MaxSeatsPerCustomer int              `json:"maxSeatsPerCustomer"`
	MaxHoldSeconds      int              `json:"maxHoldSeconds,omitempty"`      // 0: 3 × HoldTTLSeconds
	PaymentGraceSeconds int              `json:"paymentGraceSeconds,omitempty"` // 0: 600
	Currency            string           `json:"currency"`
	Prices              map[string]int64 `json:"prices"`      // category name → price in minor units
	SeatingPlan         json.RawMessage  `json:"seatingPlan"` // pretix seating-plan JSON
	// OrphanSeats is OrphanAllow ("" reads as allow) or OrphanPrevent:
	// whether hand-picked holds may strand a single seat (best available
	// never does when it can avoid it).
	OrphanSeats string `json:"orphanSeats,omitempty"`
	// FocalPoint ranks best-available blocks (plan units); nil: the centre
	// of the plan's STAGE area, else the centre of its top edge.
	FocalPoint *FocalPoint `json:"focalPoint,omitempty"`
	// Status is "" while the event sells, EventCancelled once an operator
	// cancelled it (no more holds; bookings stay, for refunds).
	Status string `json:"status,omitempty"`
	// WaitingRoom meters admission (event_room.go); nil or not Enabled:
	// anyone may hold.
	WaitingRoom *WaitingRoom `json:"waitingRoom,omitempty"`
}

// WaitingRoom is the waitingRoom object of POST and PATCH /v1/admin/events
// (API.md): whether the event's waiting room is on, and how it admits (see
// RoomConfig for the ranges and defaults). Once enabled, a room exists for
// the rest of the event's life; disabling it lets anyone hold again.
type WaitingRoom struct {
	Enabled             bool    `json:"enabled"`
	AdmitPerSecond      float64 `json:"admitPerSecond"`                // visitors per second
	MaxActive           int     `json:"maxActive,omitempty"`           // 0: no cap beyond the rate and the inventory
	ClaimSeconds        int     `json:"claimSeconds,omitempty"`        // 0: RoomClaimSecondsDefault
	AdmissionTTLSeconds int     `json:"admissionTtlSeconds,omitempty"` // 0: the default
}

// Orphan-seat rules (EventDefinition.OrphanSeats) and event statuses
// (EventDefinition.Status, EventInfo.Status).
const (
	OrphanAllow   = "allow"
	OrphanPrevent = "prevent"

	EventActive    = "active"
	EventCancelled = "cancelled"
)

// FocalPoint is a point of the venue plan, in plan units: best available
// offers the block whose centre is nearest to it.
type FocalPoint struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// EventPatch is an operator's change to an event (API.md, PATCH
// /v1/admin/events/{id}); nil fields stay as they are. It is journaled as
// JSON in the EventUpdated record, so its JSON names are on disk.
type EventPatch struct {
	Name                *string     `json:"name,omitempty"`
	OnSaleAt            *time.Time  `json:"onSaleAt,omitempty"`
	SalesEndAt          *time.Time  `json:"salesEndAt,omitempty"`
	HoldTTLSeconds      *int        `json:"holdTtlSeconds,omitempty"`
	MaxSeatsPerCustomer *int        `json:"maxSeatsPerCustomer,omitempty"`
	MaxHoldSeconds      *int        `json:"maxHoldSeconds,omitempty"`
	OrphanSeats         *string     `json:"orphanSeats,omitempty"`
	FocalPoint          *FocalPoint `json:"focalPoint,omitempty"`
	// Status may only be EventCancelled: cancelling is final.
	Status *string `json:"status,omitempty"`
	// WaitingRoom replaces the waiting room's settings (a rate change
	// during the sale, turning it on or off).
	WaitingRoom *WaitingRoom `json:"waitingRoom,omitempty"`
	// Reset names fields to return to their defaults: "salesEndAt" (sales
	// run until startsAt), "maxHoldSeconds" (3 × holdTtlSeconds),
	// "focalPoint" (the stage). A field may not be both set and reset.
	Reset []string `json:"reset,omitempty"`
}

// BestAvailable asks the engine to choose Quantity adjacent seats of one
// row segment, of Category and in Zone when they are not "".
type BestAvailable struct {
	Quantity int
	Category string // a category name of the plan, or "" for any
	Zone     string // a zone name of the plan, or "" for any
}

// Bounds on an event definition.
const (
	HoldTTLSecondsMax          = 24 * 60 * 60
	MaxSeatsPerCustomerMax     = 100
	DefaultPaymentGraceSeconds = 600
	eventIDBytesMax            = 64
	eventNameBytesMax          = 200
	customerIDBytesMax         = 256
	reservationIDBytesMax      = 128
	// priceCentsMax keeps a reservation's total (at most
	// MaxSeatsPerCustomerMax seats) far from int64 overflow.
	priceCentsMax = 1e12
)

// Category is a price category of an event: its name and colour come from
// the venue plan, its price from the event definition.
type Category struct {
	Name       string `json:"name"`
	Color      string `json:"color"`
	PriceCents int64  `json:"priceCents"`
}

// Counts are the numbers of seats in each status; they add up to capacity.
type Counts struct {
	Available int `json:"available"`
	Reserved  int `json:"reserved"`
	Booked    int `json:"booked"`
	Blocked   int `json:"blocked"`
}

// EventInfo is the read model of an event (API.md GET /v1/events/{id}).
type EventInfo struct {
	ID                  string     `json:"id"`
	Name                string     `json:"name"`
	Venue               string     `json:"venue"`
	StartsAt            time.Time  `json:"startsAt"`
	OnSaleAt            time.Time  `json:"onSaleAt"`
	SalesEndAt          time.Time  `json:"salesEndAt"`
	HoldTTLSeconds      int        `json:"holdTtlSeconds"`
	MaxSeatsPerCustomer int        `json:"maxSeatsPerCustomer"`
	MaxHoldSeconds      int        `json:"maxHoldSeconds"`
	PaymentGraceSeconds int        `json:"paymentGraceSeconds"`
	Currency            string     `json:"currency"`
	Categories          []Category `json:"categories"`
	Capacity            int        `json:"capacity"`
	Counts              Counts     `json:"counts"`
	Version             uint64     `json:"version"`     // sequence number of the last applied record
	OrphanSeats         string     `json:"orphanSeats"` // OrphanAllow or OrphanPrevent
	FocalPoint          FocalPoint `json:"focalPoint"`  // the one in effect (default: the stage)
	Status              string     `json:"status"`      // EventActive or EventCancelled
	// WaitingRoom is the event's waiting room settings, nil without one;
	// holds need an admission while it is Enabled.
	WaitingRoom *WaitingRoom `json:"waitingRoom,omitempty"`
}

// ReservationView is the read model of a reservation (API.md).
type ReservationView struct {
	ID            string
	EventID       string
	CustomerID    string
	Status        ReservationStatus
	Seats         []string // seat ids (seat_guid)
	ExpiresAt     time.Time
	CreatedAt     time.Time
	TotalCents    int64
	Currency      string
	BookingID     string               // set when booked
	ReleaseReason ReleaseReason        // set when released
	Attempts      uint32               // payment attempts started
	Payments      []PaymentAttemptView // the journaled attempts, in order (operators read them)
}

// Booking is the immutable record of a paid reservation.
type Booking struct {
	ID            string
	ReservationID string
	CustomerID    string
	Seats         []string
	TotalCents    int64
	Currency      string
	BookedAt      time.Time
	Attempt       uint32 // the payment attempt that paid
	PaymentRef    string // the provider's id of that charge ("pi_..."), when known
}

// SeatChange is one seat's new status, as published to seat-map readers.
type SeatChange struct {
	Seat   int32 // index into Plan.Seats
	Status SeatStatus
}

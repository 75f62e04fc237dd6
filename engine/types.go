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
	Version             uint64     `json:"version"` // sequence number of the last applied record
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
	BookingID     string        // set when booked
	ReleaseReason ReleaseReason // set when released
	Attempts      uint32        // payment attempts started
}

// Booking is the immutable record of a paid reservation.
type Booking struct {
	ID            string
	ReservationID string
	CustomerID    string
	Seats         []string
	TotalCents    int64
	BookedAt      time.Time
}

// SeatChange is one seat's new status, as published to seat-map readers.
type SeatChange struct {
	Seat   int32 // index into Plan.Seats
	Status SeatStatus
}

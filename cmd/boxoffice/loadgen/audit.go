package loadgen

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ConfirmedBooking is a booking the server confirmed to a buyer (pay
// answered booked).
type ConfirmedBooking struct {
	BookingID     string
	ReservationID string
	Seats         []string
}

// auditProblemsMax bounds the problems an audit lists.
const auditProblemsMax = 100

// AuditSale checks a sale for overselling:
//
//  1. no seat is in two bookings of the server's listing (each such seat
//     is named, with the bookings);
//  2. every booking the server confirmed to a buyer is in the listing,
//     with the same seats;
//  3. the seats of the bookings are exactly the seats booked on the seat
//     map (mapStatus: seat id → status), so the booked count on the map
//     equals the booked seats.
//
// The audit is OK when there is no problem.
func AuditSale(listing []Booking, mapStatus map[string]string, confirmed []ConfirmedBooking) Audit {
	a := Audit{Bookings: len(listing), ConfirmedBookings: len(confirmed), DoubleSoldSeats: []string{}, Problems: []string{}}
	var problems []string
	owners := map[string][]string{} // seat → bookings
	byID := make(map[string]Booking, len(listing))
	for _, b := range listing {
		byID[b.ID] = b
		for _, s := range b.Seats {
			owners[s] = append(owners[s], b.ID)
		}
		a.BookedSeats += len(b.Seats)
	}
	for _, s := range slices.Sorted(maps.Keys(owners)) {
		if len(owners[s]) > 1 {
			a.DoubleSoldSeats = append(a.DoubleSoldSeats, s)
			problems = append(problems, fmt.Sprintf("seat %s is in %d bookings: %s", s, len(owners[s]), strings.Join(owners[s], ", ")))
		}
	}
	for _, c := range confirmed {
		b, ok := byID[c.BookingID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("booking %s (reservation %s, seats %s) was confirmed to a buyer but is not in the server's bookings",
				c.BookingID, c.ReservationID, strings.Join(c.Seats, " ")))
		case !sameSet(b.Seats, c.Seats):
			problems = append(problems, fmt.Sprintf("booking %s has seats %s, but the buyer was confirmed %s",
				c.BookingID, strings.Join(b.Seats, " "), strings.Join(c.Seats, " ")))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(mapStatus)) {
		if mapStatus[id] == "booked" {
			a.MapBookedSeats++
			if _, ok := owners[id]; !ok {
				problems = append(problems, fmt.Sprintf("seat %s is booked on the seat map but in no booking", id))
			}
		}
	}
	for _, s := range slices.Sorted(maps.Keys(owners)) {
		switch st, ok := mapStatus[s]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("seat %s of booking %s is not on the seat map", s, owners[s][0]))
		case st != "booked":
			problems = append(problems, fmt.Sprintf("seat %s of booking %s is %s on the seat map, not booked", s, owners[s][0], st))
		}
	}
	if a.MapBookedSeats != a.BookedSeats {
		problems = append(problems, fmt.Sprintf("the seat map shows %d booked seats, the bookings hold %d", a.MapBookedSeats, a.BookedSeats))
	}
	if len(problems) > auditProblemsMax {
		problems = append(problems[:auditProblemsMax], fmt.Sprintf("… and %d more problems", len(problems)-auditProblemsMax))
	}
	a.Problems = append(a.Problems, problems...)
	a.OK = len(problems) == 0
	return a
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// audit reads the bookings and the seat map and runs AuditSale. The map
// shows a durable change within a second (API.md), so a mismatch of map
// and bookings is read again for up to mapSettle before it counts.
func (r *run) audit(ctx context.Context) (Audit, map[string]string, error) {
	const mapSettle = 3 * time.Second
	id := url.PathEscape(r.eventID)
	var list bookingList
	if err := r.api.getJSON(ctx, "/v1/admin/events/"+id+"/bookings", r.cfg.AdminToken, &list); err != nil {
		return Audit{}, nil, fmt.Errorf("audit: %w", err)
	}
	deadline := time.Now().Add(mapSettle)
	for {
		var seats seatList
		if err := r.api.getJSON(ctx, "/v1/events/"+id+"/seats", "", &seats); err != nil {
			return Audit{}, nil, fmt.Errorf("audit: %w", err)
		}
		status := make(map[string]string, len(seats.Seats))
		for _, s := range seats.Seats {
			status[s.ID] = s.Status
		}
		a := AuditSale(list.Bookings, status, r.confirmed)
		if a.OK || time.Now().After(deadline) || len(a.DoubleSoldSeats) > 0 {
			return a, status, nil
		}
		select {
		case <-ctx.Done():
			return a, status, nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

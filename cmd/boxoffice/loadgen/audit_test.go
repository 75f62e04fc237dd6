package loadgen

import (
	"strings"
	"testing"
)

func TestAuditSale(t *testing.T) {
	listing := []Booking{
		{ID: "b1", ReservationID: "r1", Seats: []string{"A-1", "A-2"}},
		{ID: "b2", ReservationID: "r2", Seats: []string{"A-3"}},
	}
	confirmed := []ConfirmedBooking{
		{BookingID: "b1", ReservationID: "r1", Seats: []string{"A-2", "A-1"}},
		{BookingID: "b2", ReservationID: "r2", Seats: []string{"A-3"}},
	}
	seatMap := func() map[string]string {
		return map[string]string{"A-1": "booked", "A-2": "booked", "A-3": "booked", "A-4": "available", "A-5": "reserved"}
	}
	clean := AuditSale(listing, seatMap(), confirmed)
	if !clean.OK || len(clean.Problems) != 0 || clean.BookedSeats != 3 || clean.MapBookedSeats != 3 || clean.Bookings != 2 || clean.ConfirmedBookings != 2 {
		t.Fatalf("clean sale: %+v", clean)
	}

	for name, tc := range map[string]struct {
		listing   []Booking
		status    func(map[string]string)
		confirmed []ConfirmedBooking
		want      []string
	}{
		"seat in two bookings": {
			listing: append(listing[:2:2], Booking{ID: "b3", ReservationID: "r3", Seats: []string{"A-2"}}),
			want:    []string{"seat A-2 is in 2 bookings: b1, b3", "the seat map shows 3 booked seats, the bookings hold 4"},
		},
		"confirmed booking missing": {
			listing: listing[:1],
			want:    []string{"booking b2 (reservation r2, seats A-3) was confirmed to a buyer but is not in the server's bookings", "seat A-3 is booked on the seat map but in no booking"},
		},
		"confirmed seats differ": {
			confirmed: []ConfirmedBooking{{BookingID: "b1", ReservationID: "r1", Seats: []string{"A-1", "A-4"}}},
			want:      []string{"booking b1 has seats A-1 A-2, but the buyer was confirmed A-1 A-4"},
		},
		"booked seat not booked on the map": {
			status: func(m map[string]string) { m["A-3"] = "reserved" },
			want:   []string{"seat A-3 of booking b2 is reserved on the seat map, not booked", "the seat map shows 2 booked seats, the bookings hold 3"},
		},
		"unknown seat": {
			listing: append(listing[:2:2], Booking{ID: "b4", Seats: []string{"Z-9"}}),
			want:    []string{"seat Z-9 of booking b4 is not on the seat map"},
		},
	} {
		l, c, m := listing, confirmed, seatMap()
		if tc.listing != nil {
			l = tc.listing
		}
		if tc.confirmed != nil {
			c = tc.confirmed
		}
		if tc.status != nil {
			tc.status(m)
		}
		a := AuditSale(l, m, c)
		if a.OK {
			t.Errorf("%s: audit passed", name)
			continue
		}
		got := strings.Join(a.Problems, "\n")
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: problems\n%s\nlack %q", name, got, w)
			}
		}
	}

	double := AuditSale(append(listing[:2:2], Booking{ID: "b3", Seats: []string{"A-3", "A-1"}}), seatMap(), confirmed)
	if got := strings.Join(double.DoubleSoldSeats, " "); got != "A-1 A-3" {
		t.Errorf("double-sold seats %q, want A-1 A-3", got)
	}
}

// TestAuditProblemsBounded: a badly broken sale lists at most
// auditProblemsMax problems and says how many more there are.
func TestAuditProblemsBounded(t *testing.T) {
	var listing []Booking
	status := map[string]string{}
	for i := range 300 {
		id := "S-" + thousands(int64(i))
		listing = append(listing, Booking{ID: "b" + id, Seats: []string{id}}, Booking{ID: "c" + id, Seats: []string{id}})
		status[id] = "booked"
	}
	a := AuditSale(listing, status, nil)
	if len(a.Problems) != auditProblemsMax+1 || !strings.Contains(a.Problems[auditProblemsMax], "more problems") {
		t.Errorf("%d problems, last %q", len(a.Problems), a.Problems[len(a.Problems)-1])
	}
	if len(a.DoubleSoldSeats) != 300 {
		t.Errorf("%d double-sold seats, want 300", len(a.DoubleSoldSeats))
	}
}

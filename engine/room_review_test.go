package engine

import (
	"fmt"
	"testing"
)

// TestReviewRoomInventoryBounds: the new rule max(available, 2×available ÷
// seats per buyer) admits nobody when nothing is available or the event is
// sold out (even if the caller's count says otherwise), never more active
// shoppers than it allows, and MaxActive and the rate still bound it.
func TestReviewRoomInventoryBounds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rate      int
		maxActive int
		inv       RoomInventory
		want      int // admitted at the first tick
	}{
		{"nothing available", 1000, 0, RoomInventory{Available: 0}, 0},
		{"negative available", 1000, 0, RoomInventory{Available: -3}, 0},
		{"sold out", 1000, 0, RoomInventory{Available: 0, SoldOut: true}, 0},
		{"sold out, count stale", 1000, 0, RoomInventory{Available: 7, SoldOut: true}, 0},
		{"five seats, big buyers", 1000, 0, RoomInventory{Available: 5}, 5},
		{"five seats, MaxActive 3", 1000, 3, RoomInventory{Available: 5}, 3},
		{"plenty, MaxActive 2", 1000, 2, RoomInventory{Available: 1000}, 2},
		{"plenty, rate 1", 1, 0, RoomInventory{Available: 1000}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := roomCfg()
			cfg.AdmitPerSecond, cfg.MaxActive = float64(tc.rate), tc.maxActive
			h := newRoomHarness(t, cfg)
			h.draw(0, roomSeed(1))
			// 20 buyers who took 4 seats each: the average is well above 2
			// (where the new rule differs from the old one).
			if tc.rate == 1000 && tc.maxActive == 0 {
				for i := range 20 {
					h.mustJoin(0, fmt.Sprint("b", i), fmt.Sprint("tb", i))
				}
				if n := len(h.ticketsOf(h.tick(1, plenty), RoomRecordAdmitted)); n != 20 {
					t.Fatalf("warm-up admitted %d", n)
				}
				for i := range 20 {
					h.done(2, fmt.Sprint("b", i), 4)
				}
			}
			for i := range 30 {
				h.mustJoin(3, fmt.Sprint("c", i), fmt.Sprint("tc", i))
			}
			active := h.r.active
			got := len(h.ticketsOf(h.tick(10, tc.inv), RoomRecordAdmitted))
			// What is left of the first group still queued is admitted first;
			// count all admissions against the bound.
			if tc.maxActive > 0 && h.r.active > tc.maxActive {
				t.Fatalf("%d active, MaxActive %d", h.r.active, tc.maxActive)
			}
			if tc.inv.SoldOut || tc.inv.Available <= 0 {
				if got != 0 {
					t.Fatalf("admitted %d with %+v", got, tc.inv)
				}
			} else if h.r.active > max(tc.inv.Available, active) && tc.inv.Available < 1000 {
				t.Fatalf("%d active with %d seats available", h.r.active, tc.inv.Available)
			}
			if tc.maxActive == 0 && got != tc.want {
				t.Fatalf("admitted %d, want %d", got, tc.want)
			}
			if tc.maxActive > 0 && got > tc.want {
				t.Fatalf("admitted %d, want at most %d", got, tc.want)
			}
			// A second tick right after admits nobody more with the same seats.
			if tc.inv.Available < 1000 {
				if n := len(h.ticketsOf(h.tick(10.5, tc.inv), RoomRecordAdmitted)); n != 0 {
					t.Fatalf("a second tick admitted %d more", n)
				}
			}
			h.checkReplay()
		})
	}
}

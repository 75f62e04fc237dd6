package loadgen

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// testSeatMap: row A is Premium (seats 1–6), row B Standard (1–6), seat B-7
// blocked; categories listed cheapest first, so the ranking must sort.
func testSeatMap() *seatMap {
	var list seatList
	add := func(row string, n int, cat, status string) {
		list.Seats = append(list.Seats, struct {
			ID       string  `json:"id"`
			Zone     string  `json:"zone"`
			Row      string  `json:"row"`
			Number   string  `json:"number"`
			X        float64 `json:"x"`
			Y        float64 `json:"y"`
			Category string  `json:"category"`
			Status   string  `json:"status"`
		}{ID: row + "-" + string(rune('0'+n)), Zone: "Z", Row: row, X: float64(10 - n), Category: cat, Status: status})
	}
	for n := 1; n <= 6; n++ {
		add("A", n, "Premium", "available")
		add("B", n, "Standard", "available")
	}
	add("B", 7, "Standard", "blocked")
	var info eventInfo
	info.Categories = append(info.Categories,
		struct {
			Name       string `json:"name"`
			PriceCents int64  `json:"priceCents"`
		}{"Standard", 5000},
		struct {
			Name       string `json:"name"`
			PriceCents int64  `json:"priceCents"`
		}{"Premium", 9000})
	return newSeatMap(&list, &info)
}

func TestSeatMapPickAndCategories(t *testing.T) {
	m := testSeatMap()
	if !slices.Equal(m.categories, []string{"Premium", "Standard"}) {
		t.Fatalf("categories %v, want Premium first", m.categories)
	}
	if m.counts[stAvailable] != 12 || m.counts[stBlocked] != 1 || m.catAvail[0] != 6 || m.catAvail[1] != 6 {
		t.Fatalf("counts %v, per category %v", m.counts, m.catAvail)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// A-2 held and A-5 sold: in x order row A is A-6 A-5 A-4 A-3 A-2 A-1,
	// so the only adjacent pair left is A-4 A-3, and no three.
	m.apply(&liveFrame{Type: "delta", Version: 2, Changes: map[string]string{"A-2": "reserved", "A-5": "booked"}})
	if m.catAvail[0] != 4 || m.counts[stReserved] != 1 || m.counts[stBooked] != 1 || m.version != 2 {
		t.Fatalf("after delta: counts %v, per category %v, version %d", m.counts, m.catAvail, m.version)
	}
	if got := m.largestRun(); got != 6 {
		t.Errorf("largest run %d, want 6 (row B)", got)
	}
	for range 20 {
		if got := m.pick(0, 3, rng); got != nil {
			t.Fatalf("picked %v: no three adjacent Premium seats are available", got)
		}
		got := m.pick(0, 2, rng)
		if strings.Join(got, " ") != "A-4 A-3" { // x order: A-4 (x 6) before A-3 (x 7)
			t.Fatalf("picked %v, want the one pair A-4 A-3", got)
		}
	}
	// Category choice: preferred rank, then cheaper, then dearer, then any.
	for _, tc := range []struct {
		pref, attempt, qty int
		last               bool
		want               string
	}{
		{0, 0, 2, false, "Premium"},
		{0, 1, 2, false, "Standard"},
		{1, 0, 5, false, "Standard"},
		{1, 0, 6, false, "Standard"},
		{0, 0, 7, false, ""},
		{1, 5, 2, false, "Standard"},
		{0, 0, 1, true, ""},
	} {
		if got, _ := m.chooseCategory(tc.pref, tc.attempt, tc.qty, tc.last); got != tc.want {
			t.Errorf("chooseCategory(%d, %d, %d, %v) = %q, want %q", tc.pref, tc.attempt, tc.qty, tc.last, got, tc.want)
		}
	}
	m.apply(&liveFrame{Type: "delta", Version: 3, Changes: map[string]string{"B-1": "booked", "B-2": "booked", "B-3": "booked", "B-4": "booked", "B-5": "booked"}})
	if got := m.largestRun(); got != 2 {
		t.Errorf("largest run %d, want 2 (A-4 A-3)", got)
	}
	if got, _ := m.chooseCategory(1, 0, 2, false); got != "Premium" {
		t.Errorf("Standard has one seat left: chose %q, want the dearer Premium", got)
	}
	// A snapshot replaces everything; sold out when nothing is available or held.
	snap := map[string]string{}
	for _, id := range m.ids {
		snap[id] = "booked"
	}
	snap["B-7"] = "blocked"
	m.apply(&liveFrame{Type: "snapshot", Version: 9, Seats: snap})
	if !m.soldOut() || m.counts[stBooked] != 12 || m.pick(1, 1, rng) != nil {
		t.Errorf("after a sold-out snapshot: counts %v, sold out %v", m.counts, m.soldOut())
	}
}

package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// randomPlan draws a pretix plan of one to three zones whose rows run
// straight, vertically (either way), diagonally or along arcs, with aisles
// (gaps of three seat spacings), one to three categories (per row or mixed
// within a row) and sometimes a STAGE area. Seat ids are "z<zone>-r<row>-<n>".
func randomPlan(t *rapid.T) json.RawMessage {
	type pos struct {
		X int `json:"x"`
		Y int `json:"y"`
	}
	cats := []string{"Gold", "Silver", "Bronze"}[:rapid.IntRange(1, 3).Draw(t, "categories")]
	var zones []any
	if rapid.Bool().Draw(t, "stage") {
		zones = append(zones, map[string]any{"name": "Stage", "position": pos{}, "rows": []any{},
			"areas": []any{map[string]any{"text": "STAGE", "width": rapid.IntRange(0, 300).Draw(t, "stageW"),
				"height":   rapid.IntRange(0, 80).Draw(t, "stageH"),
				"position": pos{rapid.IntRange(0, 600).Draw(t, "stageX"), rapid.IntRange(0, 600).Draw(t, "stageY")}}}})
	}
	for z := range rapid.IntRange(1, 3).Draw(t, "zones") {
		var rows []any
		for r := range rapid.IntRange(1, 5).Draw(t, "rows") {
			n := rapid.IntRange(1, 12).Draw(t, "seats")
			spacing := float64(rapid.IntRange(18, 30).Draw(t, "spacing"))
			kind := rapid.SampledFrom([]string{"straight", "vertical", "up", "diagonal", "arc"}).Draw(t, "kind")
			x0, y0 := float64(rapid.IntRange(0, 500).Draw(t, "x0")), float64(rapid.IntRange(0, 500).Draw(t, "y0"))
			radius := float64(rapid.IntRange(60, 400).Draw(t, "radius"))
			theta0 := float64(rapid.IntRange(0, 628).Draw(t, "theta0")) / 100
			rowCat := rapid.IntRange(-1, len(cats)-1).Draw(t, "rowCategory") // -1: mixed
			var seats []any
			along := 0.0
			for i := range n {
				if i > 0 {
					along += spacing
					if rapid.IntRange(0, 99).Draw(t, "aisle") < 15 {
						along += 2 * spacing
					}
				}
				var x, y float64
				switch kind {
				case "straight":
					x, y = x0+along, y0
				case "vertical":
					x, y = x0, y0+along
				case "up":
					x, y = x0, y0-along+600
				case "diagonal":
					x, y = x0+along*math.Sqrt2/2, y0+along*math.Sqrt2/2
				case "arc":
					th := theta0 + along/radius
					x, y = x0+radius*math.Cos(th), y0+radius*math.Sin(th)
				}
				cat := rowCat
				if cat < 0 {
					cat = rapid.IntRange(0, len(cats)-1).Draw(t, "seatCategory")
				}
				seats = append(seats, map[string]any{
					"seat_guid": fmt.Sprintf("z%d-r%d-%d", z, r, i+1), "seat_number": fmt.Sprint(i + 1),
					"position": pos{int(math.Round(x)), int(math.Round(y))}, "category": cats[cat],
				})
			}
			rows = append(rows, map[string]any{"row_number": fmt.Sprint(r + 1), "seats": seats})
		}
		zones = append(zones, map[string]any{"name": fmt.Sprintf("Zone %d", z),
			"position": pos{rapid.IntRange(0, 300).Draw(t, "zoneX"), rapid.IntRange(0, 300).Draw(t, "zoneY")}, "rows": rows})
	}
	var categories []any
	for _, c := range cats {
		categories = append(categories, map[string]string{"name": c, "color": "#123456"})
	}
	plan := map[string]any{"name": "Random Hall", "categories": categories, "zones": zones}
	if rapid.Bool().Draw(t, "sized") {
		plan["size"] = map[string]int{"width": rapid.IntRange(0, 1500).Draw(t, "width"), "height": 1000}
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// planDef is an event on plan with a price for every category.
func planDef(t tb, plan json.RawMessage, maxSeats int) EventDefinition {
	p, err := ParsePlan(plan)
	if err != nil {
		t.Fatalf("parse plan: %v", err)
	}
	prices := map[string]int64{}
	for i, c := range p.Categories {
		prices[c.Name] = int64(1000 * (i + 1))
	}
	def := testDef(plan, prices)
	def.MaxSeatsPerCustomer = maxSeats
	return def
}

// TestLayoutMatchesAisleRule: the segments the engine derives are those of
// the rule (reference_test.go) on both venues and on random plans, from JSON
// and from the binary encoding alike.
func TestLayoutMatchesAisleRule(t *testing.T) {
	check := func(t tb, p *Plan) {
		t.Helper()
		ref := newRefLayout(p)
		if len(ref.segs) != len(p.segments) {
			t.Fatalf("%d segments, the rule gives %d", len(p.segments), len(ref.segs))
		}
		for i, seg := range ref.segs {
			first, count := p.SegmentOf(seg[0])
			if first != seg[0] || int(count) != len(seg) {
				t.Fatalf("segment %d is %d+%d, the rule gives %v", i, first, count, seg)
			}
		}
		for s := range int32(len(p.Seats)) {
			if p.Adjacent(s, s+1) != ref.adjacent(s, s+1) {
				t.Fatalf("seats %d and %d: adjacent %v, the rule says %v", s, s+1, p.Adjacent(s, s+1), ref.adjacent(s, s+1))
			}
		}
		q, err := DecodePlanBinary(p.AppendBinary(nil))
		if err != nil || !slices.Equal(q.seatSegment, p.seatSegment) || !slices.Equal(q.segments, p.segments) {
			t.Fatalf("the binary encoding decodes to another layout: %v", err)
		}
	}
	for _, name := range []string{"riverside-concert-hall.json", "harbour-stadium.json"} {
		p, err := ParsePlan(venueJSON(t, name))
		if err != nil {
			t.Fatal(err)
		}
		check(t, p)
	}
	rapid.Check(t, func(t *rapid.T) {
		p, err := ParsePlan(randomPlan(t))
		if err != nil {
			t.Fatal(err)
		}
		check(t, p)
	})
}

// TestLayoutVenues pins what the venues' READMEs describe: Riverside's
// stalls rows have two aisles, its circle rows one (odd numbers left, even
// right), a box is one run of four; the stadium's curved and vertical bowl
// rows have no aisle inside.
func TestLayoutVenues(t *testing.T) {
	p, err := ParsePlan(venueJSON(t, "riverside-concert-hall.json"))
	if err != nil {
		t.Fatal(err)
	}
	segs := func(p *Plan, row string, zone string) []string {
		var out []string
		for ri, r := range p.Rows {
			if r.Name != row || p.Zones[r.Zone] != zone {
				continue
			}
			for s := r.First; s < r.First+r.Count; {
				first, count := p.SegmentOf(s)
				out = append(out, p.Seats[first].Number+"–"+p.Seats[first+count-1].Number)
				s = first + count
			}
			_ = ri
		}
		return out
	}
	for _, tc := range []struct {
		zone, row string
		want      []string
	}{
		{"Stalls", "A", []string{"1–8", "9–22", "23–30"}},
		{"Circle", "AA", []string{"21–1", "2–22"}},
		{"Boxes", "Box L1", []string{"1–4"}},
	} {
		if got := segs(p, tc.row, tc.zone); !slices.Equal(got, tc.want) {
			t.Errorf("%s row %s: segments %v, want %v", tc.zone, tc.row, got, tc.want)
		}
	}
	st, err := ParsePlan(venueJSON(t, "harbour-stadium.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.segments) != len(st.Rows) {
		t.Errorf("stadium: %d segments for %d rows; its rows have no aisles", len(st.segments), len(st.Rows))
	}
	vertical := 0
	for _, sg := range st.segments {
		if sg.maxY-sg.minY > 3*(sg.maxX-sg.minX) {
			vertical++
		}
	}
	if vertical == 0 {
		t.Errorf("stadium: no nearly vertical row; the test no longer covers them")
	}
}

// bestRun drives one event with best-available requests, hand-picked holds,
// cancellations, blocks and expiry, and checks every answer against the
// rules (reference_test.go). full compares each choice with the
// brute-force ranking; otherwise (the stadium) the choice is checked for
// what it must be: one block of adjacent available seats of the category
// and zone, stranding no seat when a block exists that strands none.
type bestRun struct {
	t     *rapid.T
	h     *harness
	l     *refLayout
	full  bool
	nowMs int64
	next  int
	live  []string // reservation ids, customers are "c"+id
}

func (b *bestRun) now() time.Time { return time.UnixMilli(b.nowMs) }

func (b *bestRun) available(s int32) bool { return b.h.ev.status[s] == SeatAvailable }

// blocks reports whether a block of n available seats of cat and zone
// exists, and whether one exists that strands no seat.
func (b *bestRun) blocks(n int, cat int16, zone string) (exists, clean bool) {
	p := b.l.plan
	for _, seg := range b.l.segs {
		if zone != "" && p.Zones[p.Rows[p.Seats[seg[0]].Row].Zone] != zone {
			continue
		}
	window:
		for i := 0; i+n <= len(seg); i++ {
			for _, s := range seg[i : i+n] {
				if !b.available(s) || cat >= 0 && p.Seats[s].Category != cat {
					continue window
				}
			}
			exists = true
			// Stranded: a free seat just outside the window whose other
			// neighbour in the run is not free (or is the run's end).
			left := i >= 1 && b.available(seg[i-1]) && (i < 2 || !b.available(seg[i-2]))
			right := i+n < len(seg) && b.available(seg[i+n]) && (i+n+1 >= len(seg) || !b.available(seg[i+n+1]))
			if !left && !right {
				return true, true
			}
		}
	}
	return exists, false
}

func (b *bestRun) step() {
	t, p := b.t, b.l.plan
	id := fmt.Sprintf("r%d", b.next)
	b.next++
	switch rapid.IntRange(0, 9).Draw(t, "action") {
	case 0, 1, 2, 3:
		want := BestAvailable{Quantity: rapid.IntRange(1, b.h.ev.def.MaxSeatsPerCustomer).Draw(t, "quantity")}
		cat := int16(-1)
		if rapid.IntRange(0, 2).Draw(t, "byCategory") == 0 {
			cat = int16(rapid.IntRange(0, len(p.Categories)-1).Draw(t, "category"))
			want.Category = p.Categories[cat].Name
		}
		if rapid.IntRange(0, 3).Draw(t, "byZone") == 0 {
			want.Zone = rapid.SampledFrom(p.Zones).Draw(t, "zone")
		}
		exists, clean := b.blocks(want.Quantity, cat, want.Zone)
		var ref []int32
		if b.full {
			focal := b.h.ev.focalPoint()
			var ok bool
			ref, ok = b.l.best(want.Quantity, cat, want.Zone, focal, b.available)
			if ok != exists {
				t.Fatalf("reference disagrees with itself: best found %v, blocks exist %v", ok, exists)
			}
		}
		recs, err := b.h.holdBest(b.now(), "c"+id, id, want)
		if !exists {
			wantCode(t, err, CodeNoAdjacentSeats)
			return
		}
		if err != nil {
			t.Fatalf("best %+v refused (%v) though a block exists", want, err)
		}
		got := recs[len(recs)-1].Seats
		if len(got) != want.Quantity {
			t.Fatalf("best %+v held %d seats", want, len(got))
		}
		for i, s := range got {
			st := p.Seats[s]
			switch {
			case i > 0 && !b.l.adjacent(got[i-1], s):
				t.Fatalf("best %+v held %v: %s and %s are not adjacent", want, got, p.Seats[got[i-1]].ID, st.ID)
			case cat >= 0 && st.Category != cat:
				t.Fatalf("best %+v held %s of category %s", want, st.ID, p.Categories[st.Category].Name)
			case want.Zone != "" && p.Zones[p.Rows[st.Row].Zone] != want.Zone:
				t.Fatalf("best %+v held %s of zone %s", want, st.ID, p.Zones[p.Rows[st.Row].Zone])
			}
		}
		// All were available: the hold applied (the harness replays
		// and checks it); none may strand a seat if a clean block exists.
		before := func(s int32) bool { return b.available(s) || slices.Contains(got, s) }
		if clean && len(b.l.stranded(got, before)) > 0 {
			t.Fatalf("best %+v held %v, stranding %v, though a block strands none", want, got, b.l.stranded(got, before))
		}
		if b.full && !slices.Equal(got, ref) {
			t.Fatalf("best %+v held %v, the ranking gives %v", want, got, ref)
		}
		b.live = append(b.live, id)
	case 4, 5, 6:
		row := p.Rows[rapid.IntRange(0, len(p.Rows)-1).Draw(t, "row")]
		k := rapid.IntRange(1, min(int(row.Count), b.h.ev.def.MaxSeatsPerCustomer)).Draw(t, "k")
		var take []int32
		if rapid.Bool().Draw(t, "window") {
			start := rapid.IntRange(0, int(row.Count)-k).Draw(t, "start")
			for i := range k {
				take = append(take, row.First+int32(start+i))
			}
		} else {
			for _, i := range rapid.Permutation(seq(int(row.Count))).Draw(t, "pick")[:k] {
				take = append(take, row.First+int32(i))
			}
		}
		ids := make([]string, len(take))
		for i, s := range take {
			ids[i] = p.Seats[s].ID
		}
		var want []string
		taken := slices.ContainsFunc(take, func(s int32) bool { return !b.available(s) })
		if !taken && b.h.ev.def.OrphanSeats == OrphanPrevent {
			for _, s := range b.l.avoidableOrphans(take, b.available) {
				want = append(want, p.Seats[s].ID)
			}
		}
		_, err := b.h.hold(b.now(), "c"+id, id, ids...)
		switch {
		case taken:
			wantCode(t, err, CodeSeatUnavailable)
		case len(want) > 0:
			wantCode(t, err, CodeOrphanSeat)
			wantSeats(t, err, want...)
		default:
			wantCode(t, err, "")
			b.live = append(b.live, id)
		}
	case 7:
		if len(b.live) > 0 {
			i := rapid.IntRange(0, len(b.live)-1).Draw(t, "cancel")
			if _, err := b.h.cancel(b.now(), "c"+b.live[i], b.live[i]); err != nil {
				t.Fatal(err)
			}
			b.live = slices.Delete(b.live, i, i+1)
		}
	case 8:
		s := p.Seats[rapid.IntRange(0, len(p.Seats)-1).Draw(t, "blockSeat")].ID
		if rapid.Bool().Draw(t, "block") {
			b.h.block(b.now(), s)
		} else {
			b.h.unblock(b.now(), s)
		}
	case 9:
		rule := rapid.SampledFrom([]string{OrphanAllow, OrphanPrevent}).Draw(t, "orphanSeats")
		if _, err := b.h.update(b.now(), EventPatch{OrphanSeats: &rule}); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// stadiumCreated is the EventCreated record of a stadium event (4 seats per
// customer, TTL 600 s), made once: parsing its 4.8 MB plan for every rapid
// run would dominate the test.
func stadiumCreated(t testing.TB) Record {
	stadiumOnce.Do(func() {
		_, recs, err := CreateEvent(venueDef(t, "harbour-stadium.json", 4, 600), t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		stadiumOnce.rec = recs[0]
	})
	if stadiumOnce.rec.Seq != 1 {
		t.Fatal("no stadium event")
	}
	return stadiumOnce.rec
}

var stadiumOnce struct {
	sync.Once
	rec Record
}

// TestPropertyBestAvailable: on random plans with curved and vertical rows
// (choices compared with the brute-force ranking) and on both venues, best
// available only ever holds one block of adjacent available seats of the
// asked category and zone, never strands a seat when a block exists that
// strands none, and answers no_adjacent_seats only when no block exists;
// with orphanSeats "prevent", hand-picked holds that would strand a seat
// are refused exactly when another choice in the row would not. The harness
// checks the invariants after every command; every run ends with a replay
// of its records.
func TestPropertyBestAvailable(t *testing.T) {
	run := func(t *rapid.T, h *harness, full bool, stepsMax int) {
		b := &bestRun{t: t, h: h, l: newRefLayout(h.ev.plan), full: full, nowMs: t0.UnixMilli()}
		for range rapid.IntRange(1, stepsMax).Draw(t, "steps") {
			b.step()
			if rapid.IntRange(0, 9).Draw(t, "advance") == 0 {
				b.nowMs += rapid.Int64Range(0, 40_000).Draw(t, "ms")
				h.tick(b.now())
			}
		}
		h.checkReplay()
	}
	orphanRule := func(t *rapid.T) string {
		return rapid.SampledFrom([]string{OrphanAllow, OrphanPrevent}).Draw(t, "orphanSeats")
	}
	t.Run("random-plans", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			def := planDef(t, randomPlan(t), 4)
			def.OrphanSeats = orphanRule(t)
			if rapid.Bool().Draw(t, "focal") {
				def.FocalPoint = &FocalPoint{X: float64(rapid.IntRange(-200, 1600).Draw(t, "fx")) / 2, Y: float64(rapid.IntRange(-200, 1600).Draw(t, "fy")) / 2}
			}
			run(t, newHarness(t, def), true, 60)
		})
	})
	t.Run("riverside", func(t *testing.T) {
		riverside := venueDef(t, "riverside-concert-hall.json", 4, 600)
		rapid.Check(t, func(t *rapid.T) {
			def := riverside
			def.OrphanSeats = orphanRule(t)
			run(t, newHarness(t, def), false, 60)
		})
	})
	t.Run("stadium", func(t *testing.T) {
		created := stadiumCreated(t)
		plan, err := DecodePlanBinary(created.Plan)
		if err != nil {
			t.Fatal(err)
		}
		rapid.Check(t, func(t *rapid.T) {
			// Restoring the state before every refusal would take most of
			// the time on 48,568 seats: the other venues check that.
			h := &harness{t: t, ev: sharedPlanEvent(t, created, plan), recs: []Record{created}, plan: plan}
			if rule := orphanRule(t); rule == OrphanPrevent {
				if _, err := h.update(t0, EventPatch{OrphanSeats: &rule}); err != nil {
					t.Fatal(err)
				}
			}
			// Withhold a share of the stadium, seat by seat, scattered.
			sold, shift := rapid.IntRange(0, 95).Draw(t, "soldPercent"), rapid.IntRange(0, 99).Draw(t, "shift")
			var block []string
			for i, s := range plan.Seats {
				if (i*7919+shift)%100 < sold {
					block = append(block, s.ID)
				}
			}
			if len(block) > 0 {
				if _, err := h.block(t0, block...); err != nil {
					t.Fatal(err)
				}
			}
			// Each step checks the invariants of 48,568 seats: fewer steps.
			run(t, h, false, 25)
		})
	})
}

// TestBestAvailableRanking pins the choice on the small plan (rows A and B
// at y 100 and 140, seats 30 apart from x 30; the stage's centre is (120,
// 30)): nearest the focal point first, then the earlier row, then the lower
// seat; a block stranding no seat before a nearer one that strands one;
// never a blocked seat; within the category and zone asked for.
func TestBestAvailableRanking(t *testing.T) {
	h := newSmall(t)
	best := func(res string, want BestAvailable) []string {
		t.Helper()
		recs, err := h.holdBest(at(1), "c-"+res, res, want)
		if err != nil {
			t.Fatalf("best %+v: %v", want, err)
		}
		var ids []string
		for _, s := range recs[len(recs)-1].Seats {
			ids = append(ids, h.ev.plan.Seats[s].ID)
		}
		return ids
	}
	// Pairs centred on x 105 and 135 tie: the lower
	// seat wins.
	if got := best("r1", BestAvailable{Quantity: 2}); !slices.Equal(got, []string{"A-3", "A-4"}) {
		t.Fatalf("best 2: %v", got)
	}
	// A-5,A-6 (centre 165, 45 away) before A-1,A-2 (centre 45, 75 away).
	if got := best("r2", BestAvailable{Quantity: 2}); !slices.Equal(got, []string{"A-5", "A-6"}) {
		t.Fatalf("second best 2: %v", got)
	}
	// One seat (squared distances): A-2 (60² + 70² = 8,500) would strand
	// A-1; B-4 (0² + 110² = 12,100) strands none; are farther.
	if got := best("r3", BestAvailable{Quantity: 1}); !slices.Equal(got, []string{"B-4"}) {
		t.Fatalf("best 1: %v", got)
	}
	if _, err := h.block(at(1), "A-8", "A-9"); err != nil {
		t.Fatal(err)
	}
	// Row A keeps. A-1,A-2 (centre (45, 100):
	// 10,525) beats row B's pairs (B-5,B-6: 14,125).
	if got := best("r4", BestAvailable{Quantity: 2}); !slices.Equal(got, []string{"A-1", "A-2"}) {
		t.Fatalf("best 2 with row A nearly full: %v", got)
	}
	_, err := h.holdBest(at(1), "c-r5", "r5", BestAvailable{Quantity: 2, Category: "Premium"})
	wantCode(t, err, CodeNoAdjacentSeats)
	// B-2,B-3 and B-5,B-6 are as near; B-2,B-3 would strand B-1.
	if got := best("r5", BestAvailable{Quantity: 2}); !slices.Equal(got, []string{"B-5", "B-6"}) {
		t.Fatalf("best 2 in row B: %v", got)
	}
	if got := best("r6", BestAvailable{Quantity: 1, Category: "Premium"}); !slices.Equal(got, []string{"A-7"}) {
		t.Fatalf("best 1 Premium: %v", got)
	}
	if got := best("r7", BestAvailable{Quantity: 4, Zone: "Stalls", Category: "Standard"}); !slices.Equal(got, []string{"B-7", "B-8", "B-9", "B-10"}) {
		t.Fatalf("best 4 Standard in the stalls: %v", got)
	}
	_, err = h.holdBest(at(1), "c-r8", "r8", BestAvailable{Quantity: 2, Zone: "Stage"})
	wantCode(t, err, CodeNoAdjacentSeats)
	_, err = h.holdBest(at(1), "c-r8", "r8", BestAvailable{Quantity: 2, Zone: "Balcony"})
	wantCode(t, err, CodeInvalidRequest)
	_, err = h.holdBest(at(1), "c-r8", "r8", BestAvailable{Quantity: 2, Category: "Gold"})
	wantCode(t, err, CodeInvalidRequest)
	_, err = h.holdBest(at(1), "c-r8", "r8", BestAvailable{Quantity: 5})
	wantCode(t, err, CodeInvalidRequest)
	for _, s := range []string{"A-8", "A-9"} {
		if h.status(s) != SeatBlocked {
			t.Fatalf("%s is %s", s, h.status(s))
		}
	}
	h.checkReplay()
}

// TestBestAvailableOrphans: when every block strands a seat, best available
// takes the best of those; a seat that is an orphan already is taken
// gladly.
func TestBestAvailableOrphans(t *testing.T) {
	h := newSmall(t)
	// Row A keeps, A-6 (x 120 … 180): every pair strands one.
	if _, err := h.block(at(0), "A-1", "A-2", "A-3", "A-7", "A-8", "A-9", "A-10"); err != nil {
		t.Fatal(err)
	}
	recs, err := h.holdBest(at(1), "u1", "r1", BestAvailable{Quantity: 2, Category: "Premium"})
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[len(recs)-1].Seats; !slices.Equal(got, []int32{3, 4}) {
		t.Fatalf("fallback pair %v, want A-4,A-5 (the nearer)", got)
	}
	// A-6 is now an orphan (A-5 held, A-7 blocked): taking it strands
	// nothing, and at (180, 100) it is nearer than any seat of row B.
	recs, err = h.holdBest(at(1), "u2", "r2", BestAvailable{Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.ev.plan.Seats[recs[len(recs)-1].Seats[0]].ID; got != "A-6" {
		t.Fatalf("best 1 took %s, want the orphan A-6", got)
	}
	h.checkReplay()
}

// TestOrphanPrevent is the hand-picked rule, as a table on a free 10-seat
// row (A) next to row B.
func TestOrphanPrevent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		blocked []string
		pick    []string
		want    []string // stranded seats named; nil: accepted
	}{
		{"end-pair", nil, []string{"A-1", "A-2"}, nil},
		{"leaves-row-end-seat", nil, []string{"A-2", "A-3"}, []string{"A-1"}},
		{"leaves-two", nil, []string{"A-3", "A-4"}, nil},
		{"gap-of-one", nil, []string{"A-3", "A-5"}, []string{"A-4"}},
		{"both-ends", nil, []string{"A-2", "A-9"}, []string{"A-1", "A-10"}},
		{"against-blocked", []string{"A-5"}, []string{"A-7"}, []string{"A-6"}},
		// Only A-1…A-3 free: any pair strands one, so any pair is allowed.
		{"no-clean-choice", []string{"A-4", "A-5", "A-6", "A-7", "A-8", "A-9", "A-10"}, []string{"A-1", "A-3"}, nil},
		// A single free seat taken: strands nothing.
		{"fills-orphan", []string{"A-1", "A-3"}, []string{"A-2"}, nil},
		// Two rows: only row A strands; row B's pick is clean.
		{"two-rows", nil, []string{"A-2", "B-1", "B-2"}, []string{"A-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rule := range []string{OrphanAllow, OrphanPrevent} {
				def := smallDef()
				def.OrphanSeats = rule
				h := newHarness(t, def)
				if len(tc.blocked) > 0 {
					if _, err := h.block(at(0), tc.blocked...); err != nil {
						t.Fatal(err)
					}
				}
				_, err := h.hold(at(1), "u1", "r1", tc.pick...)
				if rule == OrphanAllow || tc.want == nil {
					wantCode(t, err, "")
					continue
				}
				wantCode(t, err, CodeOrphanSeat)
				wantSeats(t, err, tc.want...)
			}
		})
	}
	// Precedence: limit_exceeded and seat_unavailable come first.
	def := smallDef()
	def.OrphanSeats = OrphanPrevent
	h := newHarness(t, def)
	h.mustHold(at(0), "u1", "r1", "B-1", "B-2", "B-3")
	_, err := h.hold(at(1), "u1", "r2", "A-2", "A-3")
	wantCode(t, err, CodeLimitExceeded)
	h.mustHold(at(1), "u2", "r3", "A-5")
	_, err = h.hold(at(1), "u3", "r4", "A-2", "A-5")
	wantCode(t, err, CodeSeatUnavailable)
}

// TestCaseC06 is the engine half of C06: U1 holds A-1 (r1), payment is
// declined; U1 asks for A-1 again: never seat_unavailable. The answer is a
// replacement in one step (r1 released, r2 holding A-1, in one command);
// U1 never holds A-1 twice; renewals stop at maxHoldSeconds from the first
// hold, after which the reservation comes back unchanged.
func TestCaseC06(t *testing.T) {
	h := newSmall(t) // TTL 60 s: maxHoldSeconds defaults to 180
	h.mustHold(at(0), "u1", "r1", "A-1")
	_, attempt, err := h.pay(at(5), "u1", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.fail(at(6), "r1", attempt); err != nil {
		t.Fatal(err)
	}
	recs, id, err := h.holdID(at(10), "u1", "r2", "A-1")
	if err != nil {
		t.Fatalf("re-hold after a declined payment: %v", err)
	}
	wantRecords(t, recs, "HoldReleased r1 cancelled", "SeatsHeld r2")
	if id != "r2" || recs[1].HoldStartUnixMilli != at(0).UnixMilli() {
		t.Fatalf("replacement %s with hold start %d", id, recs[1].HoldStartUnixMilli)
	}
	if v := h.view(at(10), "u1", "r2"); !v.ExpiresAt.Equal(at(70)) {
		t.Fatalf("r2 expires at %v, want t=70", v.ExpiresAt)
	}
	if v := h.view(at(10), "u1", "r1"); v.Status != StatusReleased || v.ReleaseReason != ReasonCancelled {
		t.Fatalf("r1 after the replacement: %+v", v)
	}
	// Renewals: t=60 → 120, t=115 → 175, t=170 → 180 (the cap), then the
	// same reservation comes back, unchanged.
	prev := "r2"
	for i, step := range []struct {
		at, expires float64
	}{{60, 120}, {115, 175}, {170, 180}} {
		res := fmt.Sprintf("r%d", i+3)
		recs, id, err := h.holdID(at(step.at), "u1", res, "A-1")
		if err != nil || id != res {
			t.Fatalf("renewal at %v: %s, %v", step.at, id, err)
		}
		wantRecords(t, recs, "HoldReleased "+prev+" cancelled", "SeatsHeld "+res)
		if got := h.view(at(step.at), "u1", res).ExpiresAt; !got.Equal(at(step.expires)) {
			t.Fatalf("renewal at %v expires at %v, want t=%v", step.at, got, step.expires)
		}
		prev = res
	}
	recs, id, err = h.holdID(at(175), "u1", "r9", "A-1")
	if err != nil || id != prev || len(recs) != 0 {
		t.Fatalf("re-hold at the cap: %s, %v, %q; want %s unchanged", id, err, recordTypes(recs), prev)
	}
	// U1 never held A-1 twice, and nobody else could take it in between.
	held := 0
	for _, v := range h.ev.Reservations(at(175), "u1") {
		if v.Status.Live() {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("u1 has %d live reservations", held)
	}
	_, err = h.hold(at(175), "u2", "x1", "A-1")
	wantCode(t, err, CodeSeatUnavailable)
	// At the cap the hold lapses like any other.
	h.tick(at(180))
	if h.status("A-1") != SeatAvailable {
		t.Fatalf("A-1 is %s after the cap", h.status("A-1"))
	}
	// A partial overlap replaces too: u1 holds, asks: A-2
	// goes back on sale, A-3 stays u1's throughout.
	h.mustHold(at(200), "u1", "p1", "A-2", "A-3")
	recs = h.mustHold(at(201), "u1", "p2", "A-3", "A-4")
	wantRecords(t, recs, "HoldReleased p1 cancelled", "SeatsHeld p2")
	if h.status("A-2") != SeatAvailable || h.status("A-3") != SeatReserved {
		t.Fatalf("after the partial re-hold: A-2 %s, A-3 %s", h.status("A-2"), h.status("A-3"))
	}
	// A paying reservation is not replaced: its seats are taken.
	if _, _, err := h.pay(at(202), "u1", "p2"); err != nil {
		t.Fatal(err)
	}
	_, err = h.hold(at(203), "u1", "p3", "A-4")
	wantCode(t, err, CodeSeatUnavailable)
	h.checkReplay()
}

// TestCaseC02Engine is the engine half of C02: no path skips the sale
// window or the availability check — hand-picked holds, re-holds and best
// available are all refused before onSaleAt and from salesEndAt on, and a
// seat held by one customer is never granted to another, whatever the TTL.
func TestCaseC02Engine(t *testing.T) {
	for _, ttl := range []int{600, 60} {
		t.Run(fmt.Sprintf("ttl-%d", ttl), func(t *testing.T) {
			def := smallDef()
			def.HoldTTLSeconds = ttl
			def.SalesEndAt = at(3600)
			h := newHarness(t, def)
			for _, when := range []float64{-0.001, 3600} {
				want := CodeSalesNotOpen
				if when > 0 {
					want = CodeSalesClosed
				}
				_, err := h.hold(at(when), "u1", "r0", "A-1")
				wantCode(t, err, want)
				_, err = h.holdBest(at(when), "u1", "r0", BestAvailable{Quantity: 1})
				wantCode(t, err, want)
			}
			start := 0.0
			if ttl == 60 {
				start = 55
			}
			for i, seat := range []string{"A-1", "B-1"} { // both categories
				r1, r2 := fmt.Sprintf("w%d", i), fmt.Sprintf("l%d", i)
				h.mustHold(at(start), "u1", r1, seat)
				_, err := h.hold(at(start), "u2", r2, seat)
				wantCode(t, err, CodeSeatUnavailable)
				// The winner's re-hold keeps the seat; the loser still loses.
				if _, _, err := h.holdID(at(start+1), "u1", r1+"x", seat); err != nil {
					t.Fatal(err)
				}
				_, err = h.hold(at(start+1), "u2", r2+"x", seat)
				wantCode(t, err, CodeSeatUnavailable)
			}
			// A re-hold at the end of sales is refused too, never extended.
			h.mustHold(at(3000), "u3", "late", "A-9")
			_, _, err := h.holdID(at(3600), "u3", "late2", "A-9")
			wantCode(t, err, CodeSalesClosed)
			h.checkReplay()
		})
	}
}

// TestUpdate: an operator's changes take effect at once, are journaled
// (replay and snapshots carry the current definition), and cancelling
// releases every held reservation while bookings stay and payments finish.
func TestUpdate(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1")
	h.mustBook(at(0), "u2", "r2", "A-2")
	h.mustHold(at(0), "u3", "r3", "A-3")
	if _, _, err := h.pay(at(1), "u3", "r3"); err != nil {
		t.Fatal(err)
	}
	h.mustHold(at(1), "u4", "r4", "A-4")
	mid := h.ev.MarshalSnapshot()
	midSeq := h.ev.Seq()

	// Invalid changes name the field and journal nothing.
	for _, tc := range []struct {
		p    EventPatch
		want string
	}{
		{EventPatch{HoldTTLSeconds: ptr(0)}, "holdTtlSeconds"},
		{EventPatch{MaxSeatsPerCustomer: ptr(101)}, "maxSeatsPerCustomer"},
		{EventPatch{MaxHoldSeconds: ptr(30)}, "maxHoldSeconds"},
		{EventPatch{SalesEndAt: ptr(at(-10))}, "salesEndAt"},
		{EventPatch{OnSaleAt: ptr(at(40 * 24 * 3600))}, "onSaleAt"},
		{EventPatch{OrphanSeats: ptr("sometimes")}, "orphanSeats"},
		{EventPatch{FocalPoint: &FocalPoint{X: math.NaN()}}, "focalPoint.x"},
		{EventPatch{Status: ptr("active")}, "status"},
		{EventPatch{Name: ptr(" ")}, "name"},
		{EventPatch{Reset: []string{"name"}}, "reset"},
		{EventPatch{Reset: []string{"focalPoint"}, FocalPoint: &FocalPoint{}}, "focalPoint"},
	} {
		recs, err := h.update(at(2), tc.p)
		wantCode(t, err, CodeInvalidRequest)
		if len(recs) != 0 || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: %v with %d records; want a message naming %s", tc.p, err, len(recs), tc.want)
		}
	}
	// A change to what already is journals nothing.
	recs, err := h.update(at(2), EventPatch{Name: ptr("Test Night")})
	if err != nil || len(recs) != 0 {
		t.Fatalf("no-op update: %q, %v", recordTypes(recs), err)
	}
	// Moving the sale window takes effect at once.
	recs, err = h.update(at(3), EventPatch{SalesEndAt: ptr(at(10)), HoldTTLSeconds: ptr(30), Name: ptr("Moved Night")})
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, "EventUpdated")
	_, err = h.hold(at(10), "u5", "r5", "B-1")
	wantCode(t, err, CodeSalesClosed)
	if _, err := h.update(at(11), EventPatch{Reset: []string{"salesEndAt"}, OnSaleAt: ptr(at(20))}); err != nil {
		t.Fatal(err)
	}
	_, err = h.hold(at(12), "u5", "r5", "B-1")
	wantCode(t, err, CodeSalesNotOpen)
	recs = h.mustHold(at(20), "u5", "r5", "B-1")
	if recs[0].ExpiresAtUnixMilli != at(50).UnixMilli() {
		t.Fatalf("hold after the TTL change expires at %s, want t=50", rel(recs[0].ExpiresAtUnixMilli))
	}
	// The focal point moves the choice: from the far right of row B.
	if _, err := h.update(at(21), EventPatch{FocalPoint: &FocalPoint{X: 400, Y: 140}}); err != nil {
		t.Fatal(err)
	}
	recs, err = h.holdBest(at(21), "u6", "r6", BestAvailable{Quantity: 2})
	if err != nil || !slices.Equal(recs[len(recs)-1].Seats, []int32{18, 19}) {
		t.Fatalf("best 2 towards (400,140): %v, %v; want B-9,B-10", recs, err)
	}
	if info := h.ev.Info(); info.Name != "Moved Night" || info.HoldTTLSeconds != 30 || info.MaxHoldSeconds != 90 ||
		info.FocalPoint != (FocalPoint{X: 400, Y: 140}) || !info.OnSaleAt.Equal(at(20)) || !info.SalesEndAt.Equal(info.StartsAt) {
		t.Fatalf("info after updates: %+v", info)
	}
	// Cancel: held reservations released (r1, r4, r5, r6), the booking
	// stays, the paying one finishes; no more holds.
	recs, err = h.update(at(22), EventPatch{Status: ptr(EventCancelled)})
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, "EventUpdated", "HoldReleased r1 cancelled", "HoldReleased r4 cancelled",
		"HoldReleased r5 cancelled", "HoldReleased r6 cancelled")
	_, err = h.hold(at(23), "u7", "r7", "B-5")
	wantCode(t, err, CodeEventCancelled)
	_, err = h.holdBest(at(23), "u7", "r7", BestAvailable{Quantity: 1})
	wantCode(t, err, CodeEventCancelled)
	if h.status("A-2") != SeatBooked || h.status("A-3") != SeatReserved {
		t.Fatalf("after cancel: A-2 %s, A-3 %s", h.status("A-2"), h.status("A-3"))
	}
	recs, err = h.fail(at(24), "r3", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, recs, "PaymentFailed r3", "HoldReleased r3 cancelled")
	// Cancelled again: nothing to do; reopening is refused.
	if recs, err := h.update(at(25), EventPatch{Status: ptr(EventCancelled)}); err != nil || len(recs) != 0 {
		t.Fatalf("cancel again: %q, %v", recordTypes(recs), err)
	}
	if info := h.ev.Info(); info.Status != EventCancelled || info.Counts.Booked != 1 || info.Counts.Reserved != 0 {
		t.Fatalf("info after cancel: %+v", info)
	}
	// Replay, the midway snapshot plus the rest, and a snapshot now all
	// give this state, definition included.
	h.checkReplay()
	ev, err := RestoreEvent(h.recs[0], mid)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.recs[midSeq:] {
		if err := ev.Apply(r); err != nil {
			t.Fatalf("apply %d %s: %v", r.Seq, r.Type, err)
		}
	}
	back := restoreOf(t, h)
	for _, e := range []*Event{ev, back} {
		if !reflect.DeepEqual(e.Info(), h.ev.Info()) {
			t.Fatalf("restored info %+v\nlive %+v", e.Info(), h.ev.Info())
		}
	}
}

package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParsePlanRealVenues(t *testing.T) {
	for _, tc := range []struct {
		file     string
		name     string
		seats    int
		cats     []string
		perCat   []int
		stageX   float64
		stageY   float64
		someSeat string
	}{
		{
			file: "riverside-concert-hall.json", name: "Riverside Concert Hall", seats: 1244,
			cats:   []string{"Premium", "Standard", "Restricted View", "Wheelchair"},
			perCat: []int{172, 856, 208, 8}, stageX: 800, stageY: 55, someSeat: "stalls-A-1",
		},
		{
			file: "harbour-stadium.json", name: "Harbour Stadium", seats: 48568,
			cats:   []string{"Floor", "Lower Bowl", "Club", "Upper Bowl", "Accessible"},
			perCat: []int{4320, 12496, 6912, 24752, 88}, stageX: 3300, stageY: 2330,
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := ParsePlan(venueJSON(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tc.name || p.Capacity() != tc.seats || len(p.Seats) != tc.seats {
				t.Fatalf("plan %q with %d seats, want %q with %d", p.Name, p.Capacity(), tc.name, tc.seats)
			}
			var cats []string
			for _, c := range p.Categories {
				cats = append(cats, c.Name)
				if !strings.HasPrefix(c.Color, "#") {
					t.Errorf("category %q has colour %q", c.Name, c.Color)
				}
			}
			if fmt.Sprint(cats) != fmt.Sprint(tc.cats) {
				t.Fatalf("categories %q, want %q", cats, tc.cats)
			}
			perCat := make([]int, len(p.Categories))
			for _, s := range p.Seats {
				perCat[s.Category]++
			}
			if fmt.Sprint(perCat) != fmt.Sprint(tc.perCat) {
				t.Fatalf("seats per category %v, want %v", perCat, tc.perCat)
			}
			x, y, ok := p.Stage()
			if !ok || x != tc.stageX || y != tc.stageY {
				t.Fatalf("Stage() = %v, %v, %v; want %v, %v", x, y, ok, tc.stageX, tc.stageY)
			}
			if p.Zones[0] != "Stage" {
				t.Fatalf("zones %q", p.Zones)
			}
			checkPlanShape(t, p)
			if tc.someSeat != "" {
				i, ok := p.SeatIndex(tc.someSeat)
				if !ok || p.Seats[i].Number != "1" || p.Rows[p.Seats[i].Row].Name != "A" {
					t.Fatalf("seat %s: %d %v %+v", tc.someSeat, i, ok, p.Seats[i])
				}
			}
			if _, ok := p.SeatIndex("no-such-seat"); ok {
				t.Fatal("SeatIndex found an unknown seat")
			}
		})
	}
}

// checkPlanShape asserts what every accepted plan guarantees: at least one
// seat, unique seat ids that SeatIndex finds again, rows that tile Seats in
// order, and indexes in range.
func checkPlanShape(t tb, p *Plan) {
	t.Helper()
	if len(p.Seats) == 0 || p.Capacity() != len(p.Seats) {
		t.Fatalf("accepted plan has %d seats", len(p.Seats))
	}
	seen := make(map[string]bool, len(p.Seats))
	for i, s := range p.Seats {
		if s.ID == "" || seen[s.ID] {
			t.Fatalf("seat %d id %q empty or repeated", i, s.ID)
		}
		seen[s.ID] = true
		if j, ok := p.SeatIndex(s.ID); !ok || int(j) != i {
			t.Fatalf("SeatIndex(%q) = %d, %v; want %d", s.ID, j, ok, i)
		}
		if int(s.Category) < 0 || int(s.Category) >= len(p.Categories) {
			t.Fatalf("seat %q category %d of %d", s.ID, s.Category, len(p.Categories))
		}
		if s.Row < 0 || int(s.Row) >= len(p.Rows) {
			t.Fatalf("seat %q row %d of %d", s.ID, s.Row, len(p.Rows))
		}
		r := p.Rows[s.Row]
		if int32(i) < r.First || int32(i) >= r.First+r.Count {
			t.Fatalf("seat %d (%q) outside its row %+v", i, s.ID, r)
		}
	}
	next := int32(0)
	for i, r := range p.Rows {
		if r.First != next || r.Count < 0 || r.Zone < 0 || int(r.Zone) >= len(p.Zones) {
			t.Fatalf("row %d %+v does not follow seat %d", i, r, next)
		}
		next += r.Count
	}
	if int(next) != len(p.Seats) {
		t.Fatalf("rows cover %d seats of %d", next, len(p.Seats))
	}
}

// planText is a tiny valid plan in which tests replace pieces of text.
const planText = `{
 "name": "Mini",
 "categories": [{"name": "Stalls", "color": "#ff0000"}, {"name": "Box"}],
 "size": {"width": 100, "height": 100},
 "zones": [
  {"name": "Stage", "position": {"x": 0, "y": 0}, "rows": [],
   "areas": [{"text": "Stage", "width": 40, "height": 10, "position": {"x": 30, "y": 5}, "rotation": 0, "color": "#333", "border_color": "#000"}]},
  {"name": "Main", "displayed": true, "position": {"x": 10, "y": 20}, "rows": [
   {"row_number": "A", "position": {"x": 0, "y": 10}, "number_of_seats": 2, "seats_spacing": 5, "seats": [
    {"seat_guid": "A-1", "seat_number": "1", "position": {"x": 5, "y": 0}, "category": "Stalls"},
    {"seat_guid": "A-2", "seat_number": "2", "position": {"x": 10.4, "y": 0}, "category": "Stalls"}]},
   {"row_number": "B", "seats": [
    {"seat_guid": "B-1", "seat_number": "1", "position": {"x": 5, "y": 30}, "category": "Box"}]}
  ]}
 ]
}`

func TestParsePlanMini(t *testing.T) {
	p, err := ParsePlan([]byte(planText))
	if err != nil {
		t.Fatal(err)
	}
	checkPlanShape(t, p)
	if p.Width != 100 || len(p.Rows) != 2 || len(p.Zones) != 2 {
		t.Fatalf("plan %+v", p)
	}
	// Positions are absolute: zone + row + seat, rounded.
	if s := p.Seats[1]; s.X != 20 || s.Y != 30 || s.Number != "2" || s.Category != 0 {
		t.Fatalf("seat A-2 %+v", s)
	}
	if s := p.Seats[2]; s.X != 15 || s.Y != 50 || s.Category != 1 || p.Rows[s.Row].Name != "B" {
		t.Fatalf("seat B-1 %+v", s)
	}
	if x, y, ok := p.Stage(); !ok || x != 50 || y != 10 {
		t.Fatalf("Stage() %v %v %v", x, y, ok)
	}
	noStage := strings.Replace(planText, `"text": "Stage"`, `"text": "Bar"`, 1)
	p, err = ParsePlan([]byte(noStage))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p.Stage(); ok {
		t.Fatal("Stage() found a stage in a plan without one")
	}
}

func TestParsePlanErrors(t *testing.T) {
	edit := func(old, new string) []byte {
		if !strings.Contains(planText, old) {
			panic("planText lacks " + old)
		}
		return []byte(strings.Replace(planText, old, new, 1))
	}
	seatA1 := `{"seat_guid": "A-1", "seat_number": "1", "position": {"x": 5, "y": 0}, "category": "Stalls"}`
	tooMany := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"name":"Big","categories":[{"name":"c"}],"zones":[{"position":{"x":0,"y":0},"rows":[{"row_number":"A","seats":[`)
		for i := range PlanSeatsMax + 1 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{}`) // counted before any seat is checked
		}
		b.WriteString(`]}]}]}`)
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string // the message must contain this
	}{
		{"duplicate-guid", edit(`"seat_guid": "B-1"`, `"seat_guid": "A-2"`), `seat "A-2": seat_guid is used twice`},
		{"undeclared-category", edit(`"category": "Box"`, `"category": "Gold"`), `seat "B-1": category "Gold" is not declared`},
		{"missing-position", edit(`"position": {"x": 5, "y": 30}, `, ``), `seat "B-1": position is missing`},
		{"missing-position-y", edit(`"position": {"x": 5, "y": 30}`, `"position": {"x": 5}`), `seat "B-1": position.y is missing`},
		{"missing-guid", edit(`"seat_guid": "A-2", `, ``), `zones[1].rows[0].seats[1].seat_guid is missing`},
		{"empty-guid", edit(`"seat_guid": "B-1"`, `"seat_guid": ""`), `zones[1].rows[1].seats[0].seat_guid is missing`},
		{"long-guid", edit(`"seat_guid": "B-1"`, `"seat_guid": "`+strings.Repeat("g", 129)+`"`), `seat_guid is over 128 bytes`},
		{"missing-number", edit(`"seat_number": "2", `, ``), `seat "A-2": seat_number is missing`},
		{"missing-category", edit(`, "category": "Box"`, ``), `seat "B-1": category is missing`},
		{"no-seats-at-all", []byte(`{"name":"Empty","categories":[],"zones":[{"position":{"x":0,"y":0},"rows":[{"row_number":"A","seats":[]}]}]}`), `no seats`},
		{"no-zones", []byte(`{"name":"Empty","categories":[],"zones":[]}`), `no seats`},
		{"unknown-top-field", edit(`"name": "Mini",`, `"name": "Mini", "venue": "x",`), `unknown field "venue"`},
		{"unknown-seat-field", edit(`"seat_number": "2", `, `"seat_number": "2", "price": 10, `), `unknown field "price"`},
		{"trailing-garbage", []byte(planText + ` x`), `trailing data`},
		{"trailing-object", []byte(planText + `{}`), `trailing data`},
		{"trailing-brace", []byte(planText + `}`), `trailing data`},
		{"trailing-bracket", []byte(planText + ` ]`), `trailing data`},
		{"oversize", append([]byte(planText), bytes.Repeat([]byte(" "), PlanBytesMax)...), `over the 16777216-byte limit`},
		{"too-many-seats", tooMany(), `over the limit of 200000`},
		{"not-json", []byte(`name: x`), `malformed`},
		{"empty-input", nil, `malformed`},
		{"array", []byte(`[]`), `malformed`},
		{"no-name", edit(`"name": "Mini",`, ``), `name is missing`},
		{"zone-position", edit(`"position": {"x": 10, "y": 20}, `, ``), `zones[1].position is missing`},
		{"row-number", edit(`"row_number": "B", `, ``), `zones[1].rows[1].row_number is missing`},
		{"category-twice", edit(`{"name": "Box"}`, `{"name": "Stalls"}`), `category "Stalls" is declared twice`},
		{"category-nameless", edit(`{"name": "Box"}`, `{"color": "#fff"}`), `categories[1].name is missing`},
		{"huge-coordinate", edit(`"x": 10.4`, `"x": 1e12`), `seat "A-2": position.x is out of range`},
		{"area-position", edit(`"position": {"x": 30, "y": 5}, `, ``), `zones[0].areas[0].position is missing`},
		{"string-coordinate", edit(`"x": 10.4`, `"x": "10"`), `malformed`},
		{"size-negative", edit(`"width": 100`, `"width": -1`), `size.width is out of range`},
		{"size-huge", edit(`"height": 100`, `"height": 100000000`), `size.height is out of range`},
		{"seat-absolute-out-of-range", []byte(strings.Replace(strings.Replace(planText, `"position": {"x": 10, "y": 20}`, `"position": {"x": 16000000, "y": 20}`, 1),
			`"x": 10.4`, `"x": 16000000`, 1)), `seat "A-2": position is out of range`},
		{"area-absolute-out-of-range", []byte(strings.Replace(strings.Replace(planText, `"position": {"x": 0, "y": 0}, "rows": []`, `"position": {"x": 0, "y": -16000000}, "rows": []`, 1),
			`"position": {"x": 30, "y": 5}`, `"position": {"x": 30, "y": -16000000}`, 1)), `zones[0].areas[0].position is out of range`},
		{"too-many-rows", func() []byte {
			var b bytes.Buffer
			b.WriteString(`{"name":"Rows","categories":[{"name":"c"}],"zones":[{"position":{"x":0,"y":0},"rows":[`)
			b.WriteString(`{"row_number":"A","seats":[{"seat_guid":"x","seat_number":"1","position":{"x":0,"y":0},"category":"c"}]}`)
			for range PlanSeatsMax {
				b.WriteString(`,{}`) // counted before any row is checked
			}
			b.WriteString(`]}]}`)
			return b.Bytes()
		}(), `rows`},
		{"seat-at-wrong-level", []byte(strings.Replace(planText, `"rows": []`, `"rows": [], "seats": [`+seatA1+`]`, 1)), `unknown field "seats"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePlan(tc.data)
			if err == nil {
				t.Fatalf("accepted, %d seats", len(p.Seats))
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidPlan {
				t.Fatalf("error %v is not invalid_plan", err)
			}
			if !strings.Contains(e.Message, tc.want) {
				t.Fatalf("message %q does not contain %q", e.Message, tc.want)
			}
		})
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(planText))
	f.Add([]byte(smallPlan.json()))
	f.Add([]byte(`{"name":"x","categories":[{"name":"c"}],"zones":[{"position":{"x":0,"y":0},"rows":[{"row_number":"A","seats":[{"seat_guid":"a","seat_number":"1","position":{"x":1,"y":2},"category":"c"}]}]}]}`))
	f.Add([]byte(`{"name":"x","categories":[{"name":"c"}],"zones":[{"position":{"x":0,"y":0},"rows":[{"row_number":"A","seats":[{"seat_guid":"a","seat_number":"1","position":{"x":1,"y":2},"category":"c"},{"seat_guid":"a","seat_number":"2","position":{"x":1,"y":2},"category":"c"}]}]}]}`))
	f.Add([]byte(`{"name":"x","categories":[],"zones":[]}`))
	f.Add([]byte(planText + `}`))
	f.Add([]byte(`{"name":"x","zones":[{"position":{"x":-1e300,"y":1e300},"rows":[]}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidPlan || e.Message == "" {
				t.Fatalf("error %v is not an invalid_plan *Error", err)
			}
			return
		}
		// An accepted plan is one JSON value and nothing else.
		if !json.Valid(data) {
			t.Fatalf("accepted input that is not one JSON value: %q", data)
		}
		checkPlanShape(t, p)
		checkPlanBinary(t, p)
	})
}

// checkPlanBinary asserts that the plan survives the binary encoding that
// the EventCreated record carries: whatever ParsePlan accepts, recovery must
// be able to decode, to the same plan.
func checkPlanBinary(t tb, p *Plan) {
	t.Helper()
	enc := p.AppendBinary(nil)
	q, err := DecodePlanBinary(enc)
	if err != nil {
		t.Fatalf("accepted plan does not decode from its binary encoding: %v", err)
	}
	if !reflect.DeepEqual(normalPlan(p), normalPlan(q)) {
		t.Fatalf("plan changes in its binary encoding:\n%+v\n%+v", p, q)
	}
	if again := q.AppendBinary(nil); !bytes.Equal(again, enc) {
		t.Fatalf("binary encoding of the decoded plan differs")
	}
}

// normalPlan makes nil and empty slices alike, for comparisons.
func normalPlan(p *Plan) Plan {
	n := *p
	n.Categories = append([]PlanCategory{}, p.Categories...)
	n.Zones = append([]string{}, p.Zones...)
	n.Rows = append([]Row{}, p.Rows...)
	n.Areas = append([]Area{}, p.Areas...)
	return n
}

func TestPlanBinaryRoundTrip(t *testing.T) {
	for _, name := range []string{"riverside-concert-hall.json", "harbour-stadium.json"} {
		p, err := ParsePlan(venueJSON(t, name))
		if err != nil {
			t.Fatal(err)
		}
		checkPlanBinary(t, p)
		enc := p.AppendBinary(nil)
		t.Logf("%s: %d bytes of JSON, %d bytes binary", name, len(venueJSON(t, name)), len(enc))
		if name != "riverside-concert-hall.json" {
			continue
		}
		// Truncations: the first and last 200 bytes, and every 101st.
		for n := range len(enc) {
			if n > 200 && n < len(enc)-200 && n%101 != 0 {
				continue
			}
			if _, err := DecodePlanBinary(enc[:n]); CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("truncated to %d of %d bytes: %v", n, len(enc), err)
			}
		}
	}
	p, err := ParsePlan([]byte(planText))
	if err != nil {
		t.Fatal(err)
	}
	checkPlanBinary(t, p)
}

// FuzzDecodePlanBinary: never panics; what decodes is a well-formed plan
// that encodes back to the same bytes.
func FuzzDecodePlanBinary(f *testing.F) {
	for _, data := range [][]byte{[]byte(planText), smallPlan.json()} {
		p, err := ParsePlan(data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.AppendBinary(nil))
	}
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePlanBinary(data)
		if err != nil {
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("error %v is not corrupt_record", err)
			}
			return
		}
		checkPlanShape(t, p)
		if again := p.AppendBinary(nil); !bytes.Equal(again, data) {
			t.Fatalf("re-encoded %x, decoded from %x", again, data)
		}
	})
}

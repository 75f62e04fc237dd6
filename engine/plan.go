package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Plan is an imported venue plan: every seat of the venue in a fixed order,
// grouped into zones and rows. Seat indexes (int32) into Seats are stable for
// the life of an event and are what journal records carry. A Plan is
// immutable once parsed and may be shared between goroutines.
//
// Source: the pretix seating-plan JSON format, schema version 0.0.1
// (testdata/venues/pretix-seating-plan.schema.json).
type Plan struct {
	Name       string
	Width      int // plan units
	Height     int // plan units
	Categories []PlanCategory
	Zones      []string
	Rows       []Row  // in plan order; each row's seats are contiguous in Seats
	Seats      []Seat // in plan order: zone by zone, row by row, seat by seat
	Areas      []Area

	index map[string]int32 // seat_guid → index into Seats

	// Derived by deriveLayout (layout.go), not encoded.
	segments    []segment // runs of adjacent seats, in plan order
	seatSegment []int32   // seat index → index into segments
}

// PlanCategory is a category declared by the plan.
type PlanCategory struct {
	Name  string
	Color string
}

// Row is one row of a zone: Seats[First : First+Count].
type Row struct {
	Zone  int32 // index into Plan.Zones
	Name  string
	First int32
	Count int32
}

// Seat is one seat of the plan. X and Y are absolute plan coordinates (zone
// position + row position + seat position).
type Seat struct {
	ID       string // seat_guid
	Number   string // seat_number, a label ("12", "12a")
	Row      int32  // index into Plan.Rows
	X, Y     int32
	Category int16 // index into Plan.Categories
}

// Area is a drawn, seatless shape of the plan (the stage, a sound desk).
type Area struct {
	Zone          int32
	Text          string
	Color         string
	X, Y          int32
	Width, Height int32
	Rotation      float64
}

// Bounds on an imported plan.
const (
	PlanSeatsMax     = 200_000
	PlanBytesMax     = 16 << 20
	planNameBytesMax = 200
	seatIDBytesMax   = 128
	planCoordMax     = 1 << 24
	labelBytesMax    = 256 // names, colours, row and seat labels
)

// longLabel returns the first of labels over labelBytesMax bytes.
func longLabel(labels ...string) (string, bool) {
	for _, l := range labels {
		if len(l) > labelBytesMax {
			return l[:32] + "…", true
		}
	}
	return "", false
}

// SeatIndex returns the index of the seat with the given seat_guid.
func (p *Plan) SeatIndex(id string) (int32, bool) {
	i, ok := p.index[id]
	return i, ok
}

// Capacity is the number of seats in the plan.
func (p *Plan) Capacity() int { return len(p.Seats) }

// Stage returns the centre of the first area whose text is "STAGE"
// (case-insensitive), or false when the plan has none.
func (p *Plan) Stage() (x, y float64, ok bool) {
	for _, a := range p.Areas {
		if bytes.EqualFold([]byte(a.Text), []byte("STAGE")) {
			return float64(a.X) + float64(a.Width)/2, float64(a.Y) + float64(a.Height)/2, true
		}
	}
	return 0, 0, false
}

// pretix JSON shapes; pointers mark required fields so their absence is seen.
type pretixPlan struct {
	Name       *string          `json:"name"`
	Categories []pretixCategory `json:"categories"`
	Size       *struct {
		Width  int `json:"width"`
		Height int `json:"height"`
	} `json:"size"`
	Zones []pretixZone `json:"zones"`
}

type pretixCategory struct {
	Name  *string `json:"name"`
	Color string  `json:"color"`
}

type pretixPosition struct {
	X *float64 `json:"x"`
	Y *float64 `json:"y"`
}

type pretixZone struct {
	Name      string          `json:"name"`
	Displayed *bool           `json:"displayed"`
	Position  *pretixPosition `json:"position"`
	Rows      []pretixRow     `json:"rows"`
	Areas     []pretixArea    `json:"areas"`
}

type pretixRow struct {
	RowNumber     *string         `json:"row_number"`
	Seats         []pretixSeat    `json:"seats"`
	NumberOfSeats *int            `json:"number_of_seats"`
	SeatsSpacing  *int            `json:"seats_spacing"`
	Position      *pretixPosition `json:"position"`
}

type pretixSeat struct {
	SeatGUID   *string         `json:"seat_guid"`
	SeatNumber *string         `json:"seat_number"`
	Position   *pretixPosition `json:"position"`
	Category   *string         `json:"category"`
}

type pretixArea struct {
	Color       string          `json:"color"`
	BorderColor string          `json:"border_color"`
	Width       float64         `json:"width"`
	Height      float64         `json:"height"`
	Position    *pretixPosition `json:"position"`
	Rotation    float64         `json:"rotation"`
	Text        string          `json:"text"`
}

func planError(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidPlan, Message: fmt.Sprintf(format, args...)}
}

// coord checks one coordinate of a position and returns it as int32.
func coord(v *float64, field string) (int32, *Error) {
	if v == nil {
		return 0, planError("%s is missing", field)
	}
	if math.IsNaN(*v) || math.Abs(*v) > planCoordMax {
		return 0, planError("%s is out of range", field)
	}
	return int32(math.Round(*v)), nil
}

// absolute checks a position made absolute (zone + row + seat, each within
// ±planCoordMax, so the sum cannot overflow int32) against the same bound.
func absolute(field string, x, y int32) (int32, int32, *Error) {
	if x < -planCoordMax || x > planCoordMax || y < -planCoordMax || y > planCoordMax {
		return 0, 0, planError("%s is out of range", field)
	}
	return x, y, nil
}

func position(p *pretixPosition, field string) (x, y int32, err *Error) {
	if p == nil {
		return 0, 0, planError("%s is missing", field)
	}
	if x, err = coord(p.X, field+".x"); err != nil {
		return 0, 0, err
	}
	if y, err = coord(p.Y, field+".y"); err != nil {
		return 0, 0, err
	}
	return x, y, nil
}

// ParsePlan imports a venue plan in the pretix seating-plan JSON format.
//
// It rejects, with an *Error of code invalid_plan naming the offending seat or
// field: malformed JSON or unknown fields, a missing name or zone position, a
// category without a name or declared twice, a seat without seat_guid,
// seat_number, position or category, a seat whose category is not declared, a
// seat_guid used twice, no seats at all, more than PlanSeatsMax seats, and
// input over PlanBytesMax bytes. It never panics.
func ParsePlan(data []byte) (*Plan, error) {
	if len(data) > PlanBytesMax {
		return nil, planError("plan is %d bytes, over the %d-byte limit", len(data), PlanBytesMax)
	}
	var raw pretixPlan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, planError("malformed seating plan: %v", err)
	}
	// Token, not More: More reports false before a stray ']' or '}', which
	// would let `{...}}` through.
	if _, err := dec.Token(); err != io.EOF {
		return nil, planError("malformed seating plan: trailing data after the JSON object")
	}
	if raw.Name == nil || *raw.Name == "" {
		return nil, planError("name is missing")
	}
	if len(*raw.Name) > planNameBytesMax {
		return nil, planError("name is over %d bytes", planNameBytesMax)
	}
	p := &Plan{Name: *raw.Name}
	if raw.Size != nil {
		// Bounded like coordinates, as the binary encoding the
		// EventCreated record carries (DecodePlanBinary) requires.
		if raw.Size.Width < 0 || raw.Size.Width > planCoordMax {
			return nil, planError("size.width is out of range")
		}
		if raw.Size.Height < 0 || raw.Size.Height > planCoordMax {
			return nil, planError("size.height is out of range")
		}
		p.Width, p.Height = raw.Size.Width, raw.Size.Height
	}
	catIndex := make(map[string]int16, len(raw.Categories))
	for i, c := range raw.Categories {
		if c.Name == nil || *c.Name == "" {
			return nil, planError("categories[%d].name is missing", i)
		}
		if _, dup := catIndex[*c.Name]; dup {
			return nil, planError("category %q is declared twice", *c.Name)
		}
		if len(catIndex) >= math.MaxInt16 {
			return nil, planError("too many categories")
		}
		if l, long := longLabel(*c.Name, c.Color); long {
			return nil, planError("categories[%d]: %q is over %d bytes", i, l, labelBytesMax)
		}
		catIndex[*c.Name] = int16(len(p.Categories))
		p.Categories = append(p.Categories, PlanCategory{Name: *c.Name, Color: c.Color})
	}
	total, rows, areas := 0, 0, 0
	for _, z := range raw.Zones {
		rows += len(z.Rows)
		areas += len(z.Areas)
		for _, r := range z.Rows {
			total += len(r.Seats)
		}
	}
	// DecodePlanBinary bounds these counts too; a plan it could not decode
	// would make the event unrecoverable.
	if len(raw.Zones) > PlanSeatsMax || rows > PlanSeatsMax || areas > PlanSeatsMax {
		return nil, planError("the plan has %d zones, %d rows and %d areas; at most %d of each", len(raw.Zones), rows, areas, PlanSeatsMax)
	}
	if total == 0 {
		return nil, planError("the plan has no seats")
	}
	if total > PlanSeatsMax {
		return nil, planError("the plan has %d seats, over the limit of %d", total, PlanSeatsMax)
	}
	p.Seats = make([]Seat, 0, total)
	p.index = make(map[string]int32, total)
	for zi, z := range raw.Zones {
		zfield := fmt.Sprintf("zones[%d]", zi)
		zx, zy, err := position(z.Position, zfield+".position")
		if err != nil {
			return nil, err
		}
		if l, long := longLabel(z.Name); long {
			return nil, planError("%s.name %q is over %d bytes", zfield, l, labelBytesMax)
		}
		p.Zones = append(p.Zones, z.Name)
		for ai, a := range z.Areas {
			ax, ay, err := position(a.Position, fmt.Sprintf("%s.areas[%d].position", zfield, ai))
			if err != nil {
				return nil, err
			}
			if l, long := longLabel(a.Text, a.Color); long {
				return nil, planError("%s.areas[%d]: %q is over %d bytes", zfield, ai, l, labelBytesMax)
			}
			x, y, err := absolute(fmt.Sprintf("%s.areas[%d].position", zfield, ai), zx+ax, zy+ay)
			if err != nil {
				return nil, err
			}
			p.Areas = append(p.Areas, Area{
				Zone: int32(zi), Text: a.Text, Color: a.Color,
				X: x, Y: y, Width: int32(clamp(a.Width)), Height: int32(clamp(a.Height)),
				Rotation: a.Rotation,
			})
		}
		for ri, r := range z.Rows {
			rfield := fmt.Sprintf("%s.rows[%d]", zfield, ri)
			if r.RowNumber == nil {
				return nil, planError("%s.row_number is missing", rfield)
			}
			if l, long := longLabel(*r.RowNumber); long {
				return nil, planError("%s.row_number %q is over %d bytes", rfield, l, labelBytesMax)
			}
			var rx, ry int32
			if r.Position != nil {
				if rx, ry, err = position(r.Position, rfield+".position"); err != nil {
					return nil, err
				}
			}
			row := Row{Zone: int32(zi), Name: *r.RowNumber, First: int32(len(p.Seats)), Count: int32(len(r.Seats))}
			rowIdx := int32(len(p.Rows))
			for si, s := range r.Seats {
				sfield := fmt.Sprintf("%s.seats[%d]", rfield, si)
				if s.SeatGUID == nil || *s.SeatGUID == "" {
					return nil, planError("%s.seat_guid is missing", sfield)
				}
				id := *s.SeatGUID
				if len(id) > seatIDBytesMax {
					return nil, planError("seat %q: seat_guid is over %d bytes", id[:32], seatIDBytesMax)
				}
				if s.SeatNumber == nil {
					return nil, planError("seat %q: seat_number is missing", id)
				}
				if l, long := longLabel(*s.SeatNumber); long {
					return nil, planError("seat %q: seat_number %q is over %d bytes", id, l, labelBytesMax)
				}
				if s.Category == nil {
					return nil, planError("seat %q: category is missing", id)
				}
				cat, ok := catIndex[*s.Category]
				if !ok {
					return nil, planError("seat %q: category %q is not declared", id, *s.Category)
				}
				sx, sy, err := position(s.Position, "seat "+fmt.Sprintf("%q", id)+": position")
				if err != nil {
					return nil, err
				}
				x, y, err := absolute(fmt.Sprintf("seat %q: position", id), zx+rx+sx, zy+ry+sy)
				if err != nil {
					return nil, err
				}
				if _, dup := p.index[id]; dup {
					return nil, planError("seat %q: seat_guid is used twice", id)
				}
				p.index[id] = int32(len(p.Seats))
				p.Seats = append(p.Seats, Seat{
					ID: id, Number: *s.SeatNumber, Row: rowIdx,
					X: x, Y: y, Category: cat,
				})
			}
			p.Rows = append(p.Rows, row)
		}
	}
	p.deriveLayout()
	return p, nil
}

func clamp(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(-planCoordMax, math.Min(planCoordMax, v))
}

package engine

import (
	"encoding/binary"
	"math"
)

const planBinaryVersion = 1

// AppendBinary appends the plan's compact binary encoding to dst. The
// EventCreated record carries it, so recovery decodes a 48,568-seat plan in
// milliseconds instead of re-parsing pretix JSON.
//
// Layout: byte version | string name | uvarint width, height |
// uvarint n, n × (string name, string color) categories | uvarint n, n zone
// names | uvarint n, n × (uvarint zone, string name, uvarint count) rows |
// per seat in order (rows' counts add up to the seats): string id, string
// number, varint x, varint y, uvarint category | uvarint n, n × (uvarint
// zone, string text, string color, varint x, y, width, height, uint64 bits
// of rotation) areas.
func (p *Plan) AppendBinary(dst []byte) []byte {
	dst = append(dst, planBinaryVersion)
	dst = appendString(dst, p.Name)
	dst = binary.AppendUvarint(dst, uint64(max(p.Width, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(p.Height, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(p.Categories)))
	for _, c := range p.Categories {
		dst = appendString(dst, c.Name)
		dst = appendString(dst, c.Color)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Zones)))
	for _, z := range p.Zones {
		dst = appendString(dst, z)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Rows)))
	for _, r := range p.Rows {
		dst = binary.AppendUvarint(dst, uint64(r.Zone))
		dst = appendString(dst, r.Name)
		dst = binary.AppendUvarint(dst, uint64(r.Count))
	}
	for _, s := range p.Seats {
		dst = appendString(dst, s.ID)
		dst = appendString(dst, s.Number)
		dst = binary.AppendVarint(dst, int64(s.X))
		dst = binary.AppendVarint(dst, int64(s.Y))
		dst = binary.AppendUvarint(dst, uint64(s.Category))
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Areas)))
	for _, a := range p.Areas {
		dst = binary.AppendUvarint(dst, uint64(a.Zone))
		dst = appendString(dst, a.Text)
		dst = appendString(dst, a.Color)
		for _, v := range []int32{a.X, a.Y, a.Width, a.Height} {
			dst = binary.AppendVarint(dst, int64(v))
		}
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(a.Rotation))
	}
	return dst
}

// DecodePlanBinary decodes AppendBinary's encoding and checks it as ParsePlan
// checks JSON (unique seat ids, declared categories, at least one seat,
// bounds). Errors are *Error with code corrupt_record; it never panics.
func DecodePlanBinary(b []byte) (*Plan, error) {
	d := decoder{b: b}
	bad := func(msg string) (*Plan, error) {
		if d.err != "" {
			msg = d.err
		}
		return nil, Errorf(CodeCorruptRecord, "venue plan: %s", msg)
	}
	if d.byte() != planBinaryVersion {
		return bad("unknown plan encoding version")
	}
	p := &Plan{Name: d.str()}
	w, h := d.uvarint(), d.uvarint()
	if w > planCoordMax || h > planCoordMax {
		return bad("size out of bounds")
	}
	p.Width, p.Height = int(w), int(h)
	count := func(limit uint64) int {
		n := d.uvarint()
		if n > limit || n > uint64(len(d.b)) {
			d.fail("count out of bounds")
			return 0
		}
		return int(n)
	}
	nc := count(math.MaxInt16)
	p.Categories = make([]PlanCategory, nc)
	for i := range p.Categories {
		p.Categories[i] = PlanCategory{Name: d.str(), Color: d.str()}
	}
	p.Zones = make([]string, count(PlanSeatsMax))
	for i := range p.Zones {
		p.Zones[i] = d.str()
	}
	p.Rows = make([]Row, count(PlanSeatsMax))
	total := 0
	for i := range p.Rows {
		z := d.uvarint()
		name := d.str()
		n := d.uvarint()
		if z >= uint64(len(p.Zones)) || n > PlanSeatsMax || total+int(n) > PlanSeatsMax {
			return bad("row out of bounds")
		}
		p.Rows[i] = Row{Zone: int32(z), Name: name, First: int32(total), Count: int32(n)}
		total += int(n)
	}
	if d.err != "" {
		return bad("")
	}
	if total == 0 || total > len(d.b) {
		return bad("seat count out of bounds")
	}
	p.Seats = make([]Seat, total)
	p.index = make(map[string]int32, total)
	i := 0
	for ri, r := range p.Rows {
		for range r.Count {
			s := Seat{ID: d.str(), Number: d.str(), Row: int32(ri)}
			x, y, c := d.varint(), d.varint(), d.uvarint()
			if d.err != "" {
				return bad("")
			}
			if s.ID == "" || x < -planCoordMax || x > planCoordMax || y < -planCoordMax || y > planCoordMax || c >= uint64(nc) {
				return bad("seat out of bounds")
			}
			if _, dup := p.index[s.ID]; dup {
				return bad("seat_guid used twice")
			}
			s.X, s.Y, s.Category = int32(x), int32(y), int16(c)
			p.Seats[i] = s
			p.index[s.ID] = int32(i)
			i++
		}
	}
	p.Areas = make([]Area, count(PlanSeatsMax))
	for i := range p.Areas {
		a := Area{Text: "", Color: ""}
		z := d.uvarint()
		a.Text, a.Color = d.str(), d.str()
		var v [4]int64
		for j := range v {
			v[j] = d.varint()
			if v[j] < -planCoordMax || v[j] > planCoordMax {
				d.fail("area out of bounds")
			}
		}
		if len(d.b) < 8 {
			d.fail("truncated area")
		}
		if d.err != "" || z >= uint64(len(p.Zones)) {
			return bad("area out of bounds")
		}
		a.Zone, a.X, a.Y, a.Width, a.Height = int32(z), int32(v[0]), int32(v[1]), int32(v[2]), int32(v[3])
		a.Rotation = math.Float64frombits(binary.BigEndian.Uint64(d.b))
		d.b = d.b[8:]
		p.Areas[i] = a
	}
	if d.err != "" || len(d.b) != 0 {
		return bad("trailing data")
	}
	p.deriveLayout()
	return p, nil
}

package engine

import (
	"cmp"
	"math"
	"slices"
)

// A plan's seating layout, derived once per plan (by ParsePlan and
// DecodePlanBinary alike) and never journaled: which seats are neighbours.
//
// Within a row, seats neighbouring in the plan's list are adjacent unless
// the distance between them exceeds aisleFactor × the row's median
// neighbour distance: such a gap is an aisle. A row is thus cut into
// segments, runs of adjacent seats. Nothing assumes rows are straight or
// horizontal: distances are Euclidean, so arcs and vertical rows cut the
// same way. Best available offers blocks of one segment; the orphan rule
// looks at a seat's neighbours in its segment.

// aisleFactor: a gap over this many median neighbour distances is an aisle.
const aisleFactor = 1.5

// segment is a run of adjacent seats of one row: Plan.Seats[first :
// first+count]. Its bounding box bounds where the centre of any block of its
// seats can lie (a centre is a mean of seat positions).
type segment struct {
	row, zone              int32
	first, count           int32
	runBase                int32 // where its run-length histogram starts in Event.runCount (count+1 entries)
	cat                    int16 // the category of all its seats, or -1 when they differ
	minX, minY, maxX, maxY int32
}

// deriveLayout cuts every row into segments. It needs only the seats and
// rows, so plans from JSON and from the binary encoding get the same layout.
func (p *Plan) deriveLayout() {
	p.segments = p.segments[:0]
	p.seatSegment = make([]int32, len(p.Seats))
	var gaps []float64
	for ri, r := range p.Rows {
		seats := p.Seats[r.First : r.First+r.Count]
		gaps = gaps[:0]
		for i := 1; i < len(seats); i++ {
			gaps = append(gaps, seatDistance(seats[i-1], seats[i]))
		}
		aisle := math.Inf(1)
		if len(gaps) > 0 {
			sorted := slices.Clone(gaps)
			slices.Sort(sorted)
			median := sorted[len(sorted)/2]
			if len(sorted)%2 == 0 {
				median = (sorted[len(sorted)/2-1] + median) / 2
			}
			aisle = aisleFactor * median
		}
		start := 0
		for i := 1; i <= len(seats); i++ {
			if i < len(seats) && gaps[i-1] <= aisle {
				continue
			}
			p.addSegment(int32(ri), r, r.First+int32(start), int32(i-start))
			start = i
		}
	}
}

func (p *Plan) addSegment(ri int32, r Row, first, count int32) {
	sg := segment{row: ri, zone: r.Zone, first: first, count: count, cat: p.Seats[first].Category,
		minX: math.MaxInt32, minY: math.MaxInt32, maxX: math.MinInt32, maxY: math.MinInt32}
	idx := int32(len(p.segments))
	if idx > 0 {
		prev := &p.segments[idx-1]
		sg.runBase = prev.runBase + prev.count + 1
	}
	for i := first; i < first+count; i++ {
		s := &p.Seats[i]
		if s.Category != sg.cat {
			sg.cat = -1
		}
		sg.minX, sg.maxX = min(sg.minX, s.X), max(sg.maxX, s.X)
		sg.minY, sg.maxY = min(sg.minY, s.Y), max(sg.maxY, s.Y)
		p.seatSegment[i] = idx
	}
	p.segments = append(p.segments, sg)
}

// seatDistance squares exactly in integers (coordinates are within ±2^24)
// and takes one correctly rounded square root, so every platform cuts a
// plan the same way.
func seatDistance(a, b Seat) float64 {
	dx, dy := int64(b.X)-int64(a.X), int64(b.Y)-int64(a.Y)
	return math.Sqrt(float64(dx*dx + dy*dy))
}

// Adjacent reports whether seats a and b (indexes into Seats) are
// neighbours: next to each other in their row's list, with no aisle between.
func (p *Plan) Adjacent(a, b int32) bool {
	if a > b {
		a, b = b, a
	}
	return a >= 0 && int(b) < len(p.Seats) && b == a+1 && p.seatSegment[a] == p.seatSegment[b]
}

// SegmentOf returns the run of adjacent seats that seat s belongs to:
// Seats[first : first+count], one row between aisles or row ends.
func (p *Plan) SegmentOf(s int32) (first, count int32) {
	sg := &p.segments[p.seatSegment[s]]
	return sg.first, sg.count
}

// DefaultFocalPoint is where best available ranks from when the event sets
// none: the centre of the STAGE area, else the centre of the plan's top edge
// (of the seats' extent when the plan declares no size).
func (p *Plan) DefaultFocalPoint() FocalPoint {
	if x, y, ok := p.Stage(); ok {
		return FocalPoint{X: x, Y: y}
	}
	if p.Width > 0 {
		return FocalPoint{X: float64(p.Width) / 2, Y: 0}
	}
	minX, maxX, minY := int32(math.MaxInt32), int32(math.MinInt32), int32(math.MaxInt32)
	for _, s := range p.Seats {
		minX, maxX, minY = min(minX, s.X), max(maxX, s.X), min(minY, s.Y)
	}
	return FocalPoint{X: (float64(minX) + float64(maxX)) / 2, Y: float64(minY)}
}

// rankIndex orders an event's segments for best available: by a lower bound
// of the distance from the focal point to the centre of any block of the
// segment (the distance to its bounding box), then by plan order. Distances
// are kept in half plan units, squared, so that they are exact integers: a
// default focal point (a stage centre) may lie on a half unit.
type rankIndex struct {
	fx, fy int64    // focal point, half units
	order  []int32  // segment indexes, best lower bound first
	lower  []uint64 // per order position: squared distance to the box, half units
}

// halfUnits converts a focal coordinate to half plan units.
func halfUnits(v float64) int64 { return int64(math.Round(2 * v)) }

// boxDistance is the squared distance, in half units, from the focal point
// to the segment's bounding box: < 2^54, as coordinates are within ±2^24.
func (ri *rankIndex) boxDistance(sg *segment) uint64 {
	dx := max(2*int64(sg.minX)-ri.fx, ri.fx-2*int64(sg.maxX), 0)
	dy := max(2*int64(sg.minY)-ri.fy, ri.fy-2*int64(sg.maxY), 0)
	return uint64(dx*dx + dy*dy)
}

func newRankIndex(p *Plan, fp FocalPoint) rankIndex {
	ri := rankIndex{fx: halfUnits(fp.X), fy: halfUnits(fp.Y)}
	ri.order = make([]int32, len(p.segments))
	bound := make([]uint64, len(p.segments))
	for i := range p.segments {
		ri.order[i] = int32(i)
		bound[i] = ri.boxDistance(&p.segments[i])
	}
	slices.SortFunc(ri.order, func(a, b int32) int {
		return cmp.Or(cmp.Compare(bound[a], bound[b]), cmp.Compare(a, b))
	})
	ri.lower = make([]uint64, len(ri.order))
	for i, sg := range ri.order {
		ri.lower[i] = bound[sg]
	}
	return ri
}

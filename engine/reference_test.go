package engine

import (
	"math"
	"math/big"
	"slices"
	"sort"
)

// Reference implementations of the selling rules, written from the rules'
// wording (API.md, issue 4) for the tests to compare the engine with: plain,
// slow and exact (big rationals, brute force), sharing nothing with
// layout.go and bestavailable.go but the plan's raw seats.

// refLayout is a plan's seating layout by the aisle rule: per seat, the
// index of its run of adjacent seats.
type refLayout struct {
	plan  *Plan
	segOf []int
	segs  [][]int32 // seat indexes of each run, in plan order
}

func newRefLayout(p *Plan) *refLayout {
	l := &refLayout{plan: p, segOf: make([]int, len(p.Seats))}
	for _, r := range p.Rows {
		var d []float64
		for i := r.First + 1; i < r.First+r.Count; i++ {
			// Squared exactly, then one correctly rounded root: a
			// distance right at the threshold is judged the same way
			// everywhere.
			a, b := p.Seats[i-1], p.Seats[i]
			dx, dy := int64(b.X)-int64(a.X), int64(b.Y)-int64(a.Y)
			d = append(d, math.Sqrt(float64(dx*dx+dy*dy)))
		}
		sorted := slices.Clone(d)
		sort.Float64s(sorted)
		var median float64
		if n := len(sorted); n > 0 {
			if n%2 == 1 {
				median = sorted[n/2]
			} else {
				median = (sorted[n/2-1] + sorted[n/2]) / 2
			}
		}
		for i := r.First; i < r.First+r.Count; i++ {
			if i == r.First || d[i-r.First-1] > 1.5*median {
				l.segs = append(l.segs, nil)
			}
			k := len(l.segs) - 1
			l.segs[k] = append(l.segs[k], i)
			l.segOf[i] = k
		}
	}
	return l
}

func (l *refLayout) adjacent(a, b int32) bool {
	if a < 0 || b < 0 || int(a) >= len(l.segOf) || int(b) >= len(l.segOf) {
		return false
	}
	return (a-b == 1 || b-a == 1) && l.segOf[a] == l.segOf[b]
}

// stranded lists, ascending, the seats that taking take leaves stranded:
// free before (free), not taken, next to a taken seat, and with no free
// neighbour left.
func (l *refLayout) stranded(take []int32, free func(int32) bool) []int32 {
	after := func(s int32) bool {
		return s >= 0 && int(s) < len(l.segOf) && free(s) && !slices.Contains(take, s)
	}
	var out []int32
	var near []int32 // only a seat next to a taken one can be stranded by taking it
	for _, t := range take {
		near = append(near, t-1, t+1)
	}
	slices.Sort(near)
	near = slices.Compact(near)
	for _, x := range near {
		if !after(x) {
			continue
		}
		nextToTaken, freeNeighbour := false, false
		for _, y := range []int32{x - 1, x + 1} {
			if !l.adjacent(x, y) {
				continue
			}
			nextToTaken = nextToTaken || slices.Contains(take, y)
			freeNeighbour = freeNeighbour || after(y)
		}
		if nextToTaken && !freeNeighbour {
			out = append(out, x)
		}
	}
	return out
}

// cleanChoice reports whether some k free seats of the row can be taken
// without stranding one, by trying every k-subset.
func (l *refLayout) cleanChoice(row int32, k int, free func(int32) bool) bool {
	r := l.plan.Rows[row]
	var cand []int32
	for s := r.First; s < r.First+r.Count; s++ {
		if free(s) {
			cand = append(cand, s)
		}
	}
	found := false
	var pick []int32
	var rec func(from int)
	rec = func(from int) {
		if found {
			return
		}
		if len(pick) == k {
			found = len(l.stranded(pick, free)) == 0
			return
		}
		for i := from; i <= len(cand)-(k-len(pick)); i++ {
			pick = append(pick, cand[i])
			rec(i + 1)
			pick = pick[:len(pick)-1]
		}
	}
	rec(0)
	return found
}

// avoidableOrphans is the orphan_seat rule for a hand-picked hold: the
// seats it strands, in rows where another choice of as many seats strands
// none.
func (l *refLayout) avoidableOrphans(take []int32, free func(int32) bool) []int32 {
	var out []int32
	for _, x := range l.stranded(take, free) {
		row := l.plan.Seats[x].Row
		k := 0
		for _, s := range take {
			if l.plan.Seats[s].Row == row {
				k++
			}
		}
		if l.cleanChoice(row, k, free) {
			out = append(out, x)
		}
	}
	return out
}

// best is best available by brute force: every window of n seats of every
// run, ranked exactly by the distance of its centre to the focal point
// (taken to the nearest half unit), then plan order; a block stranding no
// seat wins over any that strands one. cat < 0 and zone "" mean any.
func (l *refLayout) best(n int, cat int16, zone string, focal FocalPoint, available func(int32) bool) ([]int32, bool) {
	fx := new(big.Rat).SetFrac64(int64(math.Round(2*focal.X)), 2)
	fy := new(big.Rat).SetFrac64(int64(math.Round(2*focal.Y)), 2)
	type choice struct {
		d      *big.Rat
		seats  []int32
		clean  bool
		exists bool
	}
	var bestClean, bestAny choice
	better := func(c, than choice) bool {
		if !than.exists {
			return true
		}
		if k := c.d.Cmp(than.d); k != 0 {
			return k < 0
		}
		return c.seats[0] < than.seats[0]
	}
	for _, seg := range l.segs {
		for i := 0; i+n <= len(seg); i++ {
			block := seg[i : i+n]
			ok := true
			sx, sy := new(big.Rat), new(big.Rat)
			for _, s := range block {
				st := l.plan.Seats[s]
				if !available(s) || cat >= 0 && st.Category != cat || zone != "" && l.plan.Zones[l.plan.Rows[st.Row].Zone] != zone {
					ok = false
					break
				}
				sx.Add(sx, new(big.Rat).SetInt64(int64(st.X)))
				sy.Add(sy, new(big.Rat).SetInt64(int64(st.Y)))
			}
			if !ok {
				continue
			}
			nr := new(big.Rat).SetInt64(int64(n))
			dx := new(big.Rat).Sub(new(big.Rat).Quo(sx, nr), fx)
			dy := new(big.Rat).Sub(new(big.Rat).Quo(sy, nr), fy)
			d := new(big.Rat).Add(new(big.Rat).Mul(dx, dx), new(big.Rat).Mul(dy, dy))
			c := choice{d: d, seats: slices.Clone(block), exists: true}
			c.clean = len(l.stranded(block, available)) == 0
			if better(c, bestAny) {
				bestAny = c
			}
			if c.clean && better(c, bestClean) {
				bestClean = c
			}
		}
	}
	if bestClean.exists {
		return bestClean.seats, true
	}
	return bestAny.seats, bestAny.exists
}

package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// Seat statuses of the seat map (API.md).
const (
	stAvailable uint8 = iota
	stReserved
	stBooked
	stBlocked
	statusCount
)

func parseStatus(s string) (uint8, bool) {
	switch s {
	case "available":
		return stAvailable, true
	case "reserved":
		return stReserved, true
	case "booked":
		return stBooked, true
	case "blocked":
		return stBlocked, true
	}
	return 0, false
}

// handPickRowTries bounds the rows a hand-picking buyer looks at before
// settling for best available.
const handPickRowTries = 8

// seatMap is the buyers' view of the event's seat map: the layout from GET
// /seats, kept current by the live feed. The run loop owns it (no locks);
// the observer only sends it frames. Like a real buyer's page it lags the
// server by a frame or two, so hand-picked seats are sometimes gone.
type seatMap struct {
	index      map[string]int32 // seat id → position
	ids        []string
	category   []uint8 // seat → category rank
	status     []uint8
	counts     [statusCount]int
	catAvail   []int       // available seats per category rank
	categories []string    // category names by rank, most expensive first
	rows       [][][]int32 // category rank → rows → seats in x order
	version    uint64      // of the last frame applied
	runMax     int         // largestRun's answer; -1: to be computed again
}

// newSeatMap builds the map from the seat list and the event's categories.
func newSeatMap(list *seatList, info *eventInfo) *seatMap {
	// Rank categories by price, most expensive first; the event's order
	// breaks ties. Categories only the seats name come last.
	type catRank struct {
		name  string
		price int64
		order int
	}
	var cats []catRank
	seen := map[string]bool{}
	for i, c := range info.Categories {
		if !seen[c.Name] {
			seen[c.Name] = true
			cats = append(cats, catRank{c.Name, c.PriceCents, i})
		}
	}
	for _, s := range list.Seats {
		if !seen[s.Category] {
			seen[s.Category] = true
			cats = append(cats, catRank{s.Category, -1, len(cats)})
		}
	}
	slices.SortStableFunc(cats, func(a, b catRank) int { return cmp.Compare(b.price, a.price) })
	if len(cats) > 255 {
		cats = cats[:255] // the plan format allows more; a uint8 rank does not
	}
	rank := map[string]uint8{}
	m := &seatMap{
		index:    make(map[string]int32, len(list.Seats)),
		ids:      make([]string, len(list.Seats)),
		category: make([]uint8, len(list.Seats)),
		status:   make([]uint8, len(list.Seats)),
		runMax:   -1,
		catAvail: make([]int, len(cats)),
		rows:     make([][][]int32, len(cats)),
		version:  list.Version,
	}
	for i, c := range cats {
		rank[c.name] = uint8(i)
		m.categories = append(m.categories, c.name)
	}
	type rowKey struct {
		zone, row string
		cat       uint8
	}
	rowOf := map[rowKey]int{}
	for i, s := range list.Seats {
		m.index[s.ID] = int32(i)
		m.ids[i] = s.ID
		r := rank[s.Category]
		m.category[i] = r
		st, ok := parseStatus(s.Status)
		if !ok {
			st = stBlocked
		}
		m.status[i] = st
		m.counts[st]++
		if st == stAvailable {
			m.catAvail[r]++
		}
		k := rowKey{s.Zone, s.Row, r}
		j, ok := rowOf[k]
		if !ok {
			j = len(m.rows[r])
			rowOf[k] = j
			m.rows[r] = append(m.rows[r], nil)
		}
		m.rows[r][j] = append(m.rows[r][j], int32(i))
	}
	for _, rows := range m.rows {
		for _, row := range rows {
			slices.SortFunc(row, func(a, b int32) int { return cmp.Compare(list.Seats[a].X, list.Seats[b].X) })
		}
	}
	return m
}

// set changes one seat's status, keeping the counts; it reports whether
// the seat became available.
func (m *seatMap) set(i int32, st uint8) bool {
	old := m.status[i]
	if old == st {
		return false
	}
	m.counts[old]--
	m.counts[st]++
	if old == stAvailable {
		m.catAvail[m.category[i]]--
	}
	if st == stAvailable {
		m.catAvail[m.category[i]]++
	}
	m.status[i] = st
	m.runMax = -1
	return st == stAvailable
}

// largestRun is the most adjacent available seats in one row of one
// category. It is computed again at most once per change of the map.
func (m *seatMap) largestRun() int {
	if m.runMax >= 0 {
		return m.runMax
	}
	best := 0
	for _, rows := range m.rows {
		for _, row := range rows {
			run := 0
			for _, i := range row {
				if m.status[i] == stAvailable {
					run++
					best = max(best, run)
				} else {
					run = 0
				}
			}
		}
	}
	m.runMax = best
	return best
}

// apply applies one frame of the live feed and returns how many seats
// became available.
func (m *seatMap) apply(f *liveFrame) (freed int) {
	changes := f.Changes
	switch f.Type {
	case "snapshot":
		changes = f.Seats
	case "delta":
	default:
		return 0
	}
	for id, s := range changes {
		if i, ok := m.index[id]; ok {
			if st, ok := parseStatus(s); ok && m.set(i, st) {
				freed++
			}
		}
	}
	m.version = f.Version
	return freed
}

// soldOut: no seat available or held; every seat is booked or blocked.
func (m *seatMap) soldOut() bool { return m.counts[stAvailable] == 0 && m.counts[stReserved] == 0 }

// chooseCategory is the category a buyer asks for on its attempt-th try:
// its preferred rank moved attempt ranks down (cheaper), then the nearest
// category with enough seats available, looking cheaper first and then
// dearer; "" (any category) when none has enough or on the last attempt.
func (m *seatMap) chooseCategory(pref, attempt, qty int, last bool) (string, int) {
	n := len(m.categories)
	if n == 0 || last {
		return "", -1
	}
	start := min(pref+attempt, n-1)
	for r := start; r < n; r++ {
		if m.catAvail[r] >= qty {
			return m.categories[r], r
		}
	}
	for r := start - 1; r >= 0; r-- {
		if m.catAvail[r] >= qty {
			return m.categories[r], r
		}
	}
	return "", -1
}

// pick returns qty adjacent available seats of category rank r, as a buyer
// clicking on the map would choose them, or nil.
func (m *seatMap) pick(r, qty int, rng *rand.Rand) []string {
	if r < 0 || r >= len(m.rows) || len(m.rows[r]) == 0 || m.catAvail[r] < qty {
		return nil
	}
	rows := m.rows[r]
	for range handPickRowTries {
		row := rows[rng.IntN(len(rows))]
		if len(row) < qty {
			continue
		}
		span := len(row) - qty + 1
		off := rng.IntN(span)
		for k := range span {
			start := (off + k) % span
			ok := true
			for j := range qty {
				if m.status[row[start+j]] != stAvailable {
					ok = false
					break
				}
			}
			if ok {
				seats := make([]string, qty)
				for j := range qty {
					seats[j] = m.ids[row[start+j]]
				}
				return seats
			}
		}
	}
	return nil
}

// liveFrame is one server message of GET /v1/events/{id}/live.
type liveFrame struct {
	Type    string            `json:"type"`
	Version uint64            `json:"version"`
	From    uint64            `json:"from"`
	Seats   map[string]string `json:"seats"`
	Changes map[string]string `json:"changes"`
}

// observer follows the live seat map for the run loop: it reads frames and
// sends them on frames, reconnecting (with since= the last version it
// passed on, or from a snapshot after a resync) until ctx ends. It closes
// frames when it returns.
func observe(ctx context.Context, api *apiClient, eventID string, frames chan<- *liveFrame, connected chan<- error) {
	defer close(frames)
	var last uint64
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		u, err := api.liveURL(eventID, last)
		if err != nil {
			connected <- err
			return
		}
		dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
		conn, res, err := dialer.DialContext(ctx, u, http.Header{})
		if res != nil && res.Body != nil {
			res.Body.Close()
		}
		if first {
			first = false
			connected <- err
			if err != nil {
				return
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == 4000 { // resync: start over with a snapshot
					last = 0
				}
				break
			}
			f := new(liveFrame)
			if json.Unmarshal(data, f) != nil || (f.Type != "snapshot" && f.Type != "delta") {
				continue
			}
			select {
			case frames <- f:
				last = f.Version
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		stop()
		conn.Close()
	}
}

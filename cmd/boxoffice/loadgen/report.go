package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one run; its JSON names are the contract of
// `boxoffice load --json` (see the package documentation).
type Report struct {
	Target    string    `json:"target"`
	EventID   string    `json:"eventId"`
	EventName string    `json:"eventName"`
	Venue     string    `json:"venue"`
	Capacity  int       `json:"capacity"`  // seats of the event
	Sellable  int       `json:"sellable"`  // seats available or held at the start
	Scenario  Scenario  `json:"scenario"`  // what was played
	StartedAt time.Time `json:"startedAt"` // on-sale: arrivals are timed from here

	// DurationSeconds: from on-sale until the last buyer finished.
	DurationSeconds float64 `json:"durationSeconds"`
	// SaleSeconds: from on-sale until the last hold or payment answer; the
	// rates below are over this window.
	SaleSeconds float64 `json:"saleSeconds"`
	Interrupted bool    `json:"interrupted"` // Ctrl-C or --max-duration stopped it

	Buyers Buyers `json:"buyers"`

	HoldDecisions int64 `json:"holdDecisions"` // holds answered: granted + refused
	GrantedHolds  int64 `json:"grantedHolds"`
	RefusedHolds  int64 `json:"refusedHolds"` // seat_unavailable, no_adjacent_seats, orphan_seat, limit_exceeded
	Bookings      int64 `json:"bookings"`     // payments answered booked
	SeatsBooked   int64 `json:"seatsBooked"`  // seats in those bookings

	HoldDecisionsPerSecond     float64 `json:"holdDecisionsPerSecond"` // over saleSeconds
	GrantedHoldsPerSecond      float64 `json:"grantedHoldsPerSecond"`
	BookingsPerSecond          float64 `json:"bookingsPerSecond"`
	PeakHoldDecisionsPerSecond float64 `json:"peakHoldDecisionsPerSecond"` // best one-second sample

	// Latency per endpoint, in ms, measured from when the request was
	// meant to be sent (open loop), so time spent queued in the generator
	// counts.
	Latency map[string]Latency `json:"latency"`
	// SendDelay is how late requests left the generator after their
	// intended time (ms): near zero when the generator kept up.
	SendDelay Latency `json:"sendDelay"`

	// ErrorsByCode counts every error answer by its problem code
	// (refusals included); transport_error: no answer; http_NNN: an error
	// without a code.
	ErrorsByCode map[string]int64 `json:"errorsByCode"`
	// UnexpectedErrors counts the error answers that are not a normal part
	// of a sale (transport errors, 5xx, 429, unknown codes).
	UnexpectedErrors int64 `json:"unexpectedErrors"`

	SoldOut bool `json:"soldOut"`
	// TimeToSellOutSeconds: from on-sale until the live seat map showed no
	// seat available or held; null if it never did.
	TimeToSellOutSeconds *float64 `json:"timeToSellOutSeconds"`
	SeatsSold            int      `json:"seatsSold"` // booked seats on the map at the end

	WaitingRoom WaitingRoom `json:"waitingRoom"`
	Audit       Audit       `json:"audit"`
	Timeline    []Sample    `json:"timeline"` // one sample per second of the sale
	Notes       []string    `json:"notes,omitempty"`
}

// Scenario echoes the settings a run played.
type Scenario struct {
	Buyers             int     `json:"buyers"`
	Arrival            string  `json:"arrival"`
	ArrivalOverSeconds float64 `json:"arrivalOverSeconds"`
	SeatsPerBuyer      string  `json:"seatsPerBuyer"`
	CategorySkew       float64 `json:"categorySkew"`
	PayShare           float64 `json:"payShare"`
	CancelShare        float64 `json:"cancelShare"`
	AbandonShare       float64 `json:"abandonShare"`
	ThinkSeconds       float64 `json:"thinkSeconds"`
	HandPickedShare    float64 `json:"handPickedShare"`
	MaxAttempts        int     `json:"maxAttempts"`
	PatienceSeconds    float64 `json:"patienceSeconds"`
	WaitingRoom        string  `json:"waitingRoom"`
	EventPage          bool    `json:"eventPage"`
	Customers          int     `json:"customers"`
	Connections        int     `json:"connections"`
	StopWhenSoldOut    bool    `json:"stopWhenSoldOut"`
	Seed               uint64  `json:"seed"`
}

// Buyers counts buyers by how their visit ended.
type Buyers struct {
	Planned int `json:"planned"`
	Arrived int `json:"arrived"`
	// Outcomes: booked, cancelled, abandoned (let the hold expire),
	// soldOut (saw nothing left), refused (every hold attempt refused),
	// holdExpired (paid too late), paymentDeclined, queueExpired, failed
	// (errors), interrupted, notArrived.
	Outcomes map[string]int `json:"outcomes"`
	// Watched: buyers who found every seat held and watched the live map
	// for returned seats (Config.Patience); WatchedBooked: of them, those
	// who then booked.
	Watched       int `json:"watched"`
	WatchedBooked int `json:"watchedBooked"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// WaitingRoom is what the buyers saw of the event's waiting room.
type WaitingRoom struct {
	Used           bool `json:"used"` // some buyer joined the queue
	Joined         int  `json:"joined"`
	Admitted       int  `json:"admitted"`
	MaxQueueLength int  `json:"maxQueueLength"` // most buyers waiting at once
	MaxPosition    int  `json:"maxPosition"`    // largest position a buyer was told
}

// Sample is one second of the sale.
type Sample struct {
	T             float64 `json:"t"` // seconds since on-sale, end of the second
	HoldDecisions int64   `json:"holdDecisions"`
	GrantedHolds  int64   `json:"grantedHolds"`
	Bookings      int64   `json:"bookings"`
	SeatsSold     int     `json:"seatsSold"`   // booked seats on the live map
	HoldP99Ms     float64 `json:"holdP99Ms"`   // p99 of the holds answered in this second
	P99Ms         float64 `json:"p99Ms"`       // p99 of every request answered in this second
	QueueLength   int     `json:"queueLength"` // buyers waiting in the waiting room
	Backlog       int     `json:"backlog"`     // requests due but not yet sent by the generator
	InFlight      int     `json:"inFlight"`    // requests sent, not yet answered
}

// Audit is the oversell audit (see AuditSale).
type Audit struct {
	OK                bool     `json:"ok"`
	Bookings          int      `json:"bookings"`          // bookings the server lists
	BookedSeats       int      `json:"bookedSeats"`       // seats in them
	MapBookedSeats    int      `json:"mapBookedSeats"`    // seats booked on the seat map
	ConfirmedBookings int      `json:"confirmedBookings"` // bookings the generator was told of
	DoubleSoldSeats   []string `json:"doubleSoldSeats"`   // seats in more than one booking
	Problems          []string `json:"problems"`
}

// Err is nil when the audit passed, else an error naming the first
// problems (the double-sold seats first).
func (r *Report) Err() error {
	if r.Audit.OK {
		return nil
	}
	if len(r.Audit.Problems) == 0 {
		return errors.New("oversell audit failed")
	}
	const shown = 3
	msg := "oversell audit failed: " + strings.Join(r.Audit.Problems[:min(shown, len(r.Audit.Problems))], "; ")
	if n := len(r.Audit.Problems) - shown; n > 0 {
		msg += fmt.Sprintf("; and %d more", n)
	}
	return errors.New(msg)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people, one figure a line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("boxoffice load: %s (%s, %s seats) at %s\n", r.EventID, r.Venue, thousands(int64(r.Capacity)), r.Target)
	if r.Interrupted {
		p("INTERRUPTED: arrivals stopped early; the figures cover the sale so far\n")
	}
	sc := r.Scenario
	p("scenario      %s buyers, %s arrival", thousands(int64(sc.Buyers)), sc.Arrival)
	if sc.Arrival != ArrivalBurst {
		p(" over %gs", sc.ArrivalOverSeconds)
	}
	p(", seats %s, skew %g, pay/cancel/abandon %g/%g/%g, think %gs, hand-picked %g, %d connections\n",
		sc.SeatsPerBuyer, sc.CategorySkew, sc.PayShare, sc.CancelShare, sc.AbandonShare, sc.ThinkSeconds, sc.HandPickedShare, sc.Connections)
	p("duration      %.2f s (sale %.2f s)\n", r.DurationSeconds, r.SaleSeconds)
	p("buyers        %s arrived of %s:", thousands(int64(r.Buyers.Arrived)), thousands(int64(r.Buyers.Planned)))
	for _, k := range slices.Sorted(maps.Keys(r.Buyers.Outcomes)) {
		p(" %s %s", k, thousands(int64(r.Buyers.Outcomes[k])))
	}
	p("; %s watched for returned seats, %s of them booked\n", thousands(int64(r.Buyers.Watched)), thousands(int64(r.Buyers.WatchedBooked)))
	p("holds         %s decisions/s, %s granted/s (%s decisions: %s granted, %s refused; peak %s decisions/s)\n",
		thousands(int64(r.HoldDecisionsPerSecond+0.5)), thousands(int64(r.GrantedHoldsPerSecond+0.5)),
		thousands(r.HoldDecisions), thousands(r.GrantedHolds), thousands(r.RefusedHolds), thousands(int64(r.PeakHoldDecisionsPerSecond+0.5)))
	p("bookings      %s bookings/s (%s bookings, %s seats)\n", thousands(int64(r.BookingsPerSecond+0.5)), thousands(r.Bookings), thousands(r.SeatsBooked))
	if r.TimeToSellOutSeconds != nil {
		p("sold out      after %.2f s (%s seats sold)\n", *r.TimeToSellOutSeconds, thousands(int64(r.SeatsSold)))
	} else {
		p("sold out      no: %s of %s sellable seats sold\n", thousands(int64(r.SeatsSold)), thousands(int64(r.Sellable)))
	}
	if r.WaitingRoom.Used {
		p("waiting room  %s joined, %s admitted, longest queue %s, largest position %s\n",
			thousands(int64(r.WaitingRoom.Joined)), thousands(int64(r.WaitingRoom.Admitted)),
			thousands(int64(r.WaitingRoom.MaxQueueLength)), thousands(int64(r.WaitingRoom.MaxPosition)))
	}
	b.WriteString("latency (ms, from intended send time)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  endpoint\tcount\tp50\tp90\tp99\tp99.9\tmax\t")
	row := func(name string, l Latency) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, thousands(l.Count), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
	}
	for _, name := range endpointNames {
		if l, ok := r.Latency[name]; ok && l.Count > 0 {
			row(name, l)
		}
	}
	row("(send delay)", r.SendDelay)
	_ = tw.Flush()
	if len(r.ErrorsByCode) == 0 {
		p("errors        none\n")
	} else {
		p("errors        ")
		codes := slices.SortedFunc(maps.Keys(r.ErrorsByCode), func(a, b string) int {
			if d := r.ErrorsByCode[b] - r.ErrorsByCode[a]; d != 0 {
				return int(min(max(d, -1), 1))
			}
			return strings.Compare(a, b)
		})
		for i, c := range codes {
			if i > 0 {
				p(", ")
			}
			p("%s %s", c, thousands(r.ErrorsByCode[c]))
		}
		p(" (%s unexpected)\n", thousands(r.UnexpectedErrors))
	}
	a := r.Audit
	if a.OK {
		p("audit         OK: %s bookings with %s seats, %s seats booked on the map, no seat in two bookings, all %s confirmed bookings present\n",
			thousands(int64(a.Bookings)), thousands(int64(a.BookedSeats)), thousands(int64(a.MapBookedSeats)), thousands(int64(a.ConfirmedBookings)))
	} else {
		p("audit         FAILED: %s bookings with %s seats, %s seats booked on the map, %s confirmed bookings\n",
			thousands(int64(a.Bookings)), thousands(int64(a.BookedSeats)), thousands(int64(a.MapBookedSeats)), thousands(int64(a.ConfirmedBookings)))
		for _, pr := range a.Problems {
			p("  - %s\n", pr)
		}
	}
	for _, n := range r.Notes {
		p("note          %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// report assembles the Report at the end of the run.
func (r *run) report(end time.Time, sellable int, audit Audit, mapStatus map[string]string) *Report {
	cfg := &r.cfg
	rep := &Report{
		Target: cfg.Target, EventID: r.eventID, EventName: r.info.Name, Venue: r.info.Venue,
		Capacity: r.info.Capacity, Sellable: sellable, StartedAt: r.t0.UTC(),
		DurationSeconds: end.Sub(r.t0).Seconds(),
		SaleSeconds:     r.lastSaleEvent.Sub(r.t0).Seconds(),
		Interrupted:     r.stopping,
		Scenario: Scenario{
			Buyers: cfg.Buyers, Arrival: cfg.Arrival, ArrivalOverSeconds: cfg.ArrivalOver.Seconds(),
			SeatsPerBuyer: cfg.SeatsPerBuyer.String(), CategorySkew: cfg.CategorySkew,
			PayShare: cfg.PayShare, CancelShare: cfg.CancelShare, AbandonShare: cfg.AbandonShare,
			ThinkSeconds: cfg.Think.Seconds(), HandPickedShare: cfg.HandPickedShare, MaxAttempts: cfg.MaxAttempts,
			PatienceSeconds: cfg.Patience.Seconds(),
			WaitingRoom:     cfg.WaitingRoom, EventPage: cfg.EventPage, Customers: cfg.Customers,
			Connections: cfg.Connections, StopWhenSoldOut: cfg.StopWhenSoldOut, Seed: cfg.Seed,
		},
		Buyers: Buyers{Planned: cfg.Buyers, Arrived: r.nextArrival, Outcomes: maps.Clone(r.outcomes),
			Watched: r.watched, WatchedBooked: r.watchedBooked},
		HoldDecisions:    r.st.holdDecisions,
		GrantedHolds:     r.st.grantedHolds,
		RefusedHolds:     r.st.refusedHolds,
		Bookings:         r.st.bookings,
		SeatsBooked:      r.st.seatsBooked,
		Latency:          map[string]Latency{},
		SendDelay:        summarize(r.st.sendDelay),
		ErrorsByCode:     maps.Clone(r.st.errorsByCode),
		UnexpectedErrors: r.st.unexpected,
		WaitingRoom:      r.roomReport,
		Audit:            audit,
		Timeline:         r.st.timeline,
		Notes:            r.notes,
	}
	if n := cfg.Buyers - r.nextArrival; n > 0 {
		rep.Buyers.Outcomes[OutcomeNotArrived] = n
	}
	if rep.SaleSeconds > 0 {
		rep.HoldDecisionsPerSecond = float64(rep.HoldDecisions) / rep.SaleSeconds
		rep.GrantedHoldsPerSecond = float64(rep.GrantedHolds) / rep.SaleSeconds
		rep.BookingsPerSecond = float64(rep.Bookings) / rep.SaleSeconds
	}
	for _, s := range rep.Timeline {
		rep.PeakHoldDecisionsPerSecond = max(rep.PeakHoldDecisionsPerSecond, float64(s.HoldDecisions))
	}
	for i, h := range r.st.latency {
		if h.TotalCount() > 0 {
			rep.Latency[endpointNames[i]] = summarize(h)
		}
	}
	// Sold out: nothing available or held on the map read by the audit.
	available := 0
	for _, st := range mapStatus {
		switch st {
		case "booked":
			rep.SeatsSold++
		case "available", "reserved":
			available++
		}
	}
	rep.SoldOut = len(mapStatus) > 0 && available == 0
	switch {
	case r.soldOutAt >= 0:
		t := r.soldOutAt.Seconds()
		rep.TimeToSellOutSeconds = &t
	case rep.SoldOut && !r.lastBooking.IsZero():
		// The live map did not show it in time: the last booking answer
		// sold the last seat.
		t := r.lastBooking.Sub(r.t0).Seconds()
		rep.TimeToSellOutSeconds = &t
		rep.Notes = append(rep.Notes, "time to sell out taken from the last booking: the live map had not shown the sell-out")
	}
	if rep.Timeline == nil {
		rep.Timeline = []Sample{}
	}
	return rep
}

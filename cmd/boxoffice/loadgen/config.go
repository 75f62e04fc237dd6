package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Arrival shapes of Config.Arrival.
const (
	// ArrivalBurst: every buyer arrives at on-sale (t = 0).
	ArrivalBurst = "burst"
	// ArrivalSteady: buyers arrive evenly spaced over Config.ArrivalOver.
	ArrivalSteady = "steady"
	// ArrivalRamp: the arrival rate rises linearly from zero to twice the
	// mean over Config.ArrivalOver (buyer k of n at ArrivalOver·√(k/n)).
	ArrivalRamp = "ramp"
)

// Waiting-room modes of Config.WaitingRoom.
const (
	// WaitingRoomAuto: buyers queue when the event says it has a room
	// (GET /v1/events/{id} "waitingRoom": {"enabled": true}) or when a hold
	// answers 403 admission_required.
	WaitingRoomAuto = "auto"
	// WaitingRoomOff: buyers never queue; admission_required is a failure.
	WaitingRoomOff = "off"
)

// Bounds of a run, checked by Config.Validate.
const (
	BuyersMax      = 10_000_000
	ConnectionsMax = 4096
	// SeatsPerBuyerMax is the largest group a buyer asks for.
	SeatsPerBuyerMax = 4
	// MaxAttemptsMax bounds hold attempts per buyer.
	MaxAttemptsMax = 20
)

// Config is one flash-sale scenario and where to play it. The zero values
// of optional fields mean what their comments say; Validate checks the rest.
type Config struct {
	// Target is the server's base URL (http://host:port).
	Target string
	// EventID is the event to sell. With CreateEvent it is the id to create
	// (empty: the server makes one from the name).
	EventID string
	// AdminToken is the operators' bearer token: the audit reads
	// GET /v1/admin/events/{id}/bookings with it (required).
	AdminToken string
	// CreateEvent, when set, creates a fresh event before the sale.
	CreateEvent *EventSpec

	// Buyers is how many virtual buyers arrive.
	Buyers int
	// Arrival is ArrivalBurst, ArrivalSteady or ArrivalRamp.
	Arrival string
	// ArrivalOver is the arrival window of steady and ramp arrivals.
	ArrivalOver time.Duration
	// SeatsPerBuyer is the distribution of group sizes, 1–4 seats.
	SeatsPerBuyer Distribution
	// CategorySkew is the exponent s of a Zipf preference over the
	// categories ranked by price, most expensive first: a buyer prefers the
	// category of rank r (0-based) with weight 1/(r+1)^s. 0: uniform.
	CategorySkew float64
	// PayShare, CancelShare and AbandonShare split the buyers who get a
	// hold: they pay, cancel, or walk away and let the hold expire. They
	// sum to 1.
	PayShare, CancelShare, AbandonShare float64
	// Think is the mean think time between a granted hold and paying or
	// cancelling, and before a retry; each draw is uniform in
	// [Think/2, 3·Think/2]. 0: none.
	Think time.Duration
	// HandPickedShare is the share of buyers who pick their seats from the
	// live seat map; the others ask for best available.
	HandPickedShare float64
	// MaxAttempts bounds a buyer's hold attempts (refused, or failed).
	MaxAttempts int
	// Patience is how long a buyer who finds every seat held (none
	// available, some not yet sold) keeps watching the live map for seats
	// that come back (cancelled or expired holds). 0: it leaves at once.
	Patience time.Duration
	// WaitingRoom is WaitingRoomAuto or WaitingRoomOff.
	WaitingRoom string
	// EventPage: each buyer first loads the event page (GET
	// /v1/events/{id}) and leaves when it shows the event sold out.
	EventPage bool
	// Customers, when > 0, is the size of a pool of anonymous sessions made
	// before the sale and shared round-robin by the buyers; 0: every buyer
	// makes its own session (POST /v1/sessions) as its first request.
	Customers int
	// Connections bounds concurrent HTTP requests (the worker pool).
	Connections int
	// RequestTimeout bounds one HTTP request.
	RequestTimeout time.Duration
	// StopWhenSoldOut stops arrivals once the seat map shows the event
	// sold out; buyers already there finish.
	StopWhenSoldOut bool
	// MaxDuration bounds the sale: then arrivals stop and buyers are
	// interrupted, as on Ctrl-C. 0: no bound.
	MaxDuration time.Duration
	// PaymentToken is what paying buyers pay with (default tok_visa).
	PaymentToken string
	// Seed seeds the scenario's random choices.
	Seed uint64

	// Progress receives the live progress; nil: none.
	Progress io.Writer
	// ProgressTTY: Progress is a terminal, so draw progress bars; else
	// print a plain line every ProgressEvery.
	ProgressTTY bool
	// ProgressEvery is the interval of plain progress lines (default 5 s).
	ProgressEvery time.Duration
}

// EventSpec is a fresh event to create through POST /v1/admin/events.
type EventSpec struct {
	// Plan is the venue plan, pretix seating-plan JSON.
	Plan []byte
	// Name is the event's title (default "Flash-sale rehearsal — <plan name>").
	Name string
	// Prices per category in minor units; a category missing here gets a
	// default price (the plan's first category 10,000, each next one 1,500
	// less, at least 1,000).
	Prices map[string]int64
	// HoldTTLSeconds is the hold time-to-live (default 60).
	HoldTTLSeconds int
	// MaxSeatsPerCustomer (default 8).
	MaxSeatsPerCustomer int
	// WaitingRoomAdmitPerSecond > 0 asks for a waiting room admitting this
	// many visitors per second. A server without waiting rooms answers 400;
	// the event is then created without one and the report says so.
	WaitingRoomAdmitPerSecond float64
	// WaitingRoomAdmissionTTLSeconds, when > 0, is the room's
	// claimSeconds and admissionTtlSeconds: how long an admission lasts.
	// Buyers who walk away with a hold never say they are done, and the
	// room counts them as shopping until their admission ends (0: the
	// server's defaults, 120 s to claim and 15 minutes in all).
	WaitingRoomAdmissionTTLSeconds int
}

// DefaultConfig is the scenario of `boxoffice load` without flags.
func DefaultConfig() Config {
	return Config{
		Target:          "http://localhost:8080",
		Buyers:          20_000,
		Arrival:         ArrivalSteady,
		ArrivalOver:     10 * time.Second,
		SeatsPerBuyer:   DefaultSeatsPerBuyer(),
		CategorySkew:    1.5,
		PayShare:        0.85,
		CancelShare:     0.10,
		AbandonShare:    0.05,
		Think:           2 * time.Second,
		HandPickedShare: 0.3,
		MaxAttempts:     3,
		Patience:        time.Minute,
		WaitingRoom:     WaitingRoomAuto,
		EventPage:       true,
		Connections:     256,
		RequestTimeout:  10 * time.Second,
		PaymentToken:    "tok_visa",
		Seed:            1,
	}
}

// Validate reports the first setting out of range.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Target)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("--target must be an http(s) URL, not %q", c.Target)
	case c.EventID == "" && c.CreateEvent == nil:
		return errors.New("--event or --create-event-from is required")
	case c.AdminToken == "":
		return errors.New("--admin-token (or BOXOFFICE_ADMIN_TOKEN) is required: the oversell audit reads the bookings with it")
	case c.Buyers < 1 || c.Buyers > BuyersMax:
		return fmt.Errorf("--buyers must be 1–%d, not %d", BuyersMax, c.Buyers)
	case c.Arrival != ArrivalBurst && c.Arrival != ArrivalSteady && c.Arrival != ArrivalRamp:
		return fmt.Errorf("--arrival must be burst, steady or ramp, not %q", c.Arrival)
	case c.Arrival != ArrivalBurst && c.ArrivalOver <= 0:
		return fmt.Errorf("--arrival-over must be positive for %s arrivals", c.Arrival)
	case c.SeatsPerBuyer.total() <= 0:
		return errors.New("--seats-per-buyer needs a positive weight")
	case c.CategorySkew < 0 || c.CategorySkew > 10:
		return fmt.Errorf("--category-skew must be 0–10, not %g", c.CategorySkew)
	case !share(c.PayShare) || !share(c.CancelShare) || !share(c.AbandonShare):
		return errors.New("--pay-share, --cancel-share and --abandon-share must each be 0–1")
	case math.Abs(c.PayShare+c.CancelShare+c.AbandonShare-1) > 1e-6:
		return fmt.Errorf("--pay-share + --cancel-share + --abandon-share must be 1, not %g", c.PayShare+c.CancelShare+c.AbandonShare)
	case c.Patience < 0:
		return errors.New("--patience must not be negative")
	case c.Think < 0:
		return errors.New("--think must not be negative")
	case !share(c.HandPickedShare):
		return errors.New("--hand-picked-share must be 0–1")
	case c.MaxAttempts < 1 || c.MaxAttempts > MaxAttemptsMax:
		return fmt.Errorf("--max-attempts must be 1–%d, not %d", MaxAttemptsMax, c.MaxAttempts)
	case c.WaitingRoom != WaitingRoomAuto && c.WaitingRoom != WaitingRoomOff:
		return fmt.Errorf("--waiting-room must be auto or off, not %q", c.WaitingRoom)
	case c.Customers < 0 || c.Customers > BuyersMax:
		return fmt.Errorf("--customers must be 0–%d", BuyersMax)
	case c.Connections < 1 || c.Connections > ConnectionsMax:
		return fmt.Errorf("--connections must be 1–%d, not %d", ConnectionsMax, c.Connections)
	case c.RequestTimeout <= 0:
		return errors.New("--request-timeout must be positive")
	case c.MaxDuration < 0:
		return errors.New("--max-duration must not be negative")
	case c.PaymentToken == "":
		return errors.New("--payment-token must not be empty")
	}
	if s := c.CreateEvent; s != nil {
		if len(s.Plan) == 0 {
			return errors.New("--create-event-from: the plan is empty")
		}
		if s.HoldTTLSeconds < 0 || s.MaxSeatsPerCustomer < 0 || s.WaitingRoomAdmitPerSecond < 0 || s.WaitingRoomAdmissionTTLSeconds < 0 {
			return errors.New("--hold-ttl, --max-seats-per-customer, --waiting-room-admit-per-second and --waiting-room-admission-ttl must not be negative")
		}
	}
	return nil
}

func share(f float64) bool { return f >= 0 && f <= 1 }

// Distribution is a discrete distribution of seats per buyer: Weights[i]
// is the relative weight of i+1 seats. Its text form, for flags, is
// "1:25,2:45,3:10,4:20" (seats:weight; weights need not sum to 100).
type Distribution struct {
	Weights [SeatsPerBuyerMax]float64
}

// DefaultSeatsPerBuyer: 25% one seat, 45% two, 10% three, 20% four.
func DefaultSeatsPerBuyer() Distribution {
	return Distribution{Weights: [SeatsPerBuyerMax]float64{25, 45, 10, 20}}
}

// UnmarshalText parses "seats:weight,..." with seats 1–4.
func (d *Distribution) UnmarshalText(text []byte) error {
	var out Distribution
	for part := range strings.SplitSeq(string(text), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			return fmt.Errorf("seats per buyer: %q is not seats:weight", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(k))
		if err != nil || n < 1 || n > SeatsPerBuyerMax {
			return fmt.Errorf("seats per buyer: seats must be 1–%d, not %q", SeatsPerBuyerMax, k)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || w < 0 || math.IsInf(w, 0) || math.IsNaN(w) {
			return fmt.Errorf("seats per buyer: weight of %d must be a number ≥ 0, not %q", n, v)
		}
		out.Weights[n-1] = w
	}
	if out.total() <= 0 {
		return errors.New("seats per buyer: no positive weight")
	}
	*d = out
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (d Distribution) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Distribution) String() string {
	var parts []string
	for i, w := range d.Weights {
		if w > 0 {
			parts = append(parts, strconv.Itoa(i+1)+":"+strconv.FormatFloat(w, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

func (d Distribution) total() float64 {
	var t float64
	for _, w := range d.Weights {
		t += w
	}
	return t
}

// Sample maps u in [0, 1) to a number of seats.
func (d Distribution) Sample(u float64) int {
	x := u * d.total()
	for i, w := range d.Weights {
		if x < w {
			return i + 1
		}
		x -= w
	}
	for i := len(d.Weights) - 1; i >= 0; i-- { // u rounding up to the total
		if d.Weights[i] > 0 {
			return i + 1
		}
	}
	return 1
}

// Mean is the expected number of seats per buyer.
func (d Distribution) Mean() float64 {
	var s float64
	for i, w := range d.Weights {
		s += float64(i+1) * w
	}
	return s / d.total()
}

// arrivalOffset is when buyer k of n arrives, after on-sale.
func arrivalOffset(shape string, over time.Duration, k, n int) time.Duration {
	switch shape {
	case ArrivalSteady:
		return time.Duration(float64(over) * float64(k) / float64(n))
	case ArrivalRamp:
		return time.Duration(float64(over) * math.Sqrt(float64(k)/float64(n)))
	}
	return 0
}

// arrivalsDue is how many of n buyers have arrived by elapsed (the inverse
// of arrivalOffset).
func arrivalsDue(shape string, over time.Duration, n int, elapsed time.Duration) int {
	if elapsed < 0 {
		return 0
	}
	var f float64
	switch shape {
	case ArrivalSteady:
		f = float64(elapsed) / float64(over)
	case ArrivalRamp:
		f = float64(elapsed) / float64(over)
		f *= f
	default:
		return n
	}
	return min(int(f*float64(n)+1e-6)+1, n) // 1e-6: the durations of arrivalOffset are truncated to ns
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/boxoffice/boxoffice/cmd/boxoffice/loadgen"
)

// loadCmd is `boxoffice load`: a flash sale played against a running
// server, audited for overselling (see package loadgen).
type loadCmd struct {
	Target     string `default:"http://localhost:8080" env:"BOXOFFICE_TARGET" help:"Base URL of the server to load."`
	Event      string `placeholder:"ID" help:"Event to sell. With --create-event-from: the id to give the new event (empty: the server derives one from its name)."`
	AdminToken string `env:"BOXOFFICE_ADMIN_TOKEN" help:"Operators' bearer token; the oversell audit reads the event's bookings with it (required)."`

	CreateEventFrom           string           `type:"existingfile" placeholder:"PLAN.json" help:"First create a fresh event from this pretix seating-plan JSON (on sale at once), and sell that."`
	Prices                    map[string]int64 `mapsep:"," placeholder:"CATEGORY=CENTS,..." help:"With --create-event-from: price per category in minor units (default: 10000 for the plan's first category, 1500 less for each next one)."`
	HoldTTL                   time.Duration    `name:"hold-ttl" default:"60s" help:"With --create-event-from: how long a hold lasts (whole seconds)."`
	MaxSeatsPerCustomer       int              `default:"8" help:"With --create-event-from: seats one customer may hold and buy."`
	WaitingRoomAdmitPerSecond float64          `placeholder:"N" help:"With --create-event-from: give the event a waiting room admitting N visitors per second (0: none). A server without waiting rooms gets the event without one; the report notes it."`
	WaitingRoomAdmissionTTL   time.Duration    `name:"waiting-room-admission-ttl" help:"With a waiting room: how long an admission lasts, to claim and in all (whole seconds; 0: the server's defaults). Admissions of buyers who walk away hold back the room's inventory-aware admission until they end."`

	Buyers          int                  `default:"20000" help:"Buyers who arrive."`
	Arrival         string               `default:"steady" enum:"burst,steady,ramp" help:"Arrival shape: burst (all at on-sale), steady (evenly over --arrival-over) or ramp (rate rising linearly over --arrival-over)."`
	ArrivalOver     time.Duration        `default:"10s" help:"Arrival window of steady and ramp arrivals."`
	SeatsPerBuyer   loadgen.Distribution `default:"1:25,2:45,3:10,4:20" help:"Distribution of seats per buyer, 1–4, as SEATS:WEIGHT,..."`
	CategorySkew    float64              `default:"1.5" help:"Preference for the best categories: Zipf exponent over categories by price, dearest first (0: no preference)."`
	PayShare        float64              `default:"0.85" help:"Share of buyers with a hold who pay."`
	CancelShare     float64              `default:"0.10" help:"Share of buyers with a hold who cancel it."`
	AbandonShare    float64              `default:"0.05" help:"Share of buyers with a hold who walk away and let it expire (the three shares sum to 1)."`
	Think           time.Duration        `default:"2s" help:"Mean think time before paying or cancelling and before a retry (each draw uniform in 0.5–1.5×)."`
	HandPickedShare float64              `default:"0.3" help:"Share of buyers who pick seats on the live seat map; the rest ask for best available."`
	MaxAttempts     int                  `default:"3" help:"Hold attempts per buyer (a refusal moves to the next cheaper category; the last asks for any, and for fewer seats when no block on the map is big enough)."`
	Patience        time.Duration        `default:"60s" help:"How long a buyer who finds every seat held keeps watching the live map for seats that come back (0: leaves at once)."`
	WaitingRoom     string               `default:"auto" enum:"auto,off" help:"auto: queue when the event has a waiting room or a hold answers admission_required, polling no sooner than pollAfterSeconds; off: never."`
	EventPage       bool                 `default:"true" negatable:"" help:"Each buyer first loads the event page and leaves if it is sold out."`
	Customers       int                  `default:"0" help:"Share a pool of this many customer sessions, made before the sale (0: every buyer makes its own session)."`
	Connections     int                  `default:"256" help:"Concurrent HTTP connections (the generator's worker pool)."`
	RequestTimeout  time.Duration        `default:"10s" help:"Timeout of one request."`
	StopWhenSoldOut bool                 `help:"Stop arrivals once the live seat map shows the event sold out."`
	MaxDuration     time.Duration        `default:"0s" help:"Stop arrivals and interrupt buyers after this long (0: no limit)."`
	PaymentToken    string               `default:"tok_visa" help:"Payment token of paying buyers (the simulated provider's test tokens)."`
	Seed            uint64               `default:"1" help:"Seed of the scenario's random choices."`

	JSON     string `name:"json" placeholder:"FILE" help:"Write the report as JSON to FILE ('-': to stdout, instead of the text report)."`
	Report   string `placeholder:"report.html" help:"Write a self-contained HTML report with charts over time."`
	Progress string `default:"auto" enum:"auto,bars,lines,off" help:"Live progress on stderr: bars (terminal), lines (one every 5 s), auto (bars on a terminal, else lines) or off."`

	Procs      int    `default:"0" help:"Processors the generator itself may use (GOMAXPROCS; 0: all). On a machine shared with the server, 1 can cost less CPU per request (fewer thread wake-ups) but caps the generator at one core."`
	CPUProfile string `name:"cpu-profile" type:"path" placeholder:"FILE" help:"Write a CPU profile of the generator itself (setup, sale and audit) to FILE, for go tool pprof."`
}

// Run plays the sale, prints the report and fails when the audit does.
// Ctrl-C stops arrivals, lets requests in flight finish and still reports
// and audits the sale so far.
func (c *loadCmd) Run(ctx context.Context, out io.Writer) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	// The generator allocates per request and keeps little: collecting
	// less often leaves more of a shared machine to the server under test.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if c.Procs < 0 {
		return errors.New("--procs must be 0 or more")
	}
	if c.Procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.Procs))
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if c.JSON == "-" {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteText(out)
	}
	if err != nil {
		return err
	}
	if c.JSON != "" && c.JSON != "-" {
		if err := writeReportFile(c.JSON, rep.WriteJSON); err != nil {
			return err
		}
	}
	if c.Report != "" {
		if err := writeReportFile(c.Report, rep.WriteHTML); err != nil {
			return err
		}
	}
	return rep.Err()
}

func (c *loadCmd) config() (loadgen.Config, error) {
	cfg := loadgen.DefaultConfig()
	cfg.Target, cfg.EventID, cfg.AdminToken = c.Target, c.Event, c.AdminToken
	if c.CreateEventFrom != "" {
		plan, err := os.ReadFile(c.CreateEventFrom)
		if err != nil {
			return cfg, fmt.Errorf("--create-event-from: %w", err)
		}
		if c.HoldTTL < time.Second || c.HoldTTL%time.Second != 0 {
			return cfg, fmt.Errorf("--hold-ttl must be whole seconds, at least 1s, not %s", c.HoldTTL)
		}
		cfg.CreateEvent = &loadgen.EventSpec{
			Plan: plan, Prices: c.Prices, HoldTTLSeconds: int(c.HoldTTL / time.Second),
			MaxSeatsPerCustomer: c.MaxSeatsPerCustomer, WaitingRoomAdmitPerSecond: c.WaitingRoomAdmitPerSecond,
		}
		if c.WaitingRoomAdmissionTTL%time.Second != 0 || c.WaitingRoomAdmissionTTL < 0 {
			return cfg, fmt.Errorf("--waiting-room-admission-ttl must be whole seconds, not %s", c.WaitingRoomAdmissionTTL)
		}
		cfg.CreateEvent.WaitingRoomAdmissionTTLSeconds = int(c.WaitingRoomAdmissionTTL / time.Second)
	} else if len(c.Prices) > 0 || c.WaitingRoomAdmitPerSecond > 0 || c.WaitingRoomAdmissionTTL > 0 {
		return cfg, errors.New("--prices and --waiting-room-* need --create-event-from")
	}
	cfg.Buyers, cfg.Arrival, cfg.ArrivalOver = c.Buyers, c.Arrival, c.ArrivalOver
	cfg.SeatsPerBuyer, cfg.CategorySkew = c.SeatsPerBuyer, c.CategorySkew
	cfg.PayShare, cfg.CancelShare, cfg.AbandonShare = c.PayShare, c.CancelShare, c.AbandonShare
	cfg.Think, cfg.HandPickedShare, cfg.MaxAttempts, cfg.Patience = c.Think, c.HandPickedShare, c.MaxAttempts, c.Patience
	cfg.WaitingRoom, cfg.EventPage, cfg.Customers = c.WaitingRoom, c.EventPage, c.Customers
	cfg.Connections, cfg.RequestTimeout = c.Connections, c.RequestTimeout
	cfg.StopWhenSoldOut, cfg.MaxDuration = c.StopWhenSoldOut, c.MaxDuration
	cfg.PaymentToken, cfg.Seed = c.PaymentToken, c.Seed
	tty := false
	if fi, err := os.Stderr.Stat(); err == nil {
		tty = fi.Mode()&os.ModeCharDevice != 0
	}
	switch c.Progress {
	case "bars":
		cfg.Progress, cfg.ProgressTTY = os.Stderr, true
	case "lines":
		cfg.Progress = os.Stderr
	case "auto":
		cfg.Progress, cfg.ProgressTTY = os.Stderr, tty
	}
	return cfg, cfg.Validate()
}

// writeReportFile writes one report file through write.
func writeReportFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

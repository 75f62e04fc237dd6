package loadgen

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDistribution(t *testing.T) {
	var d Distribution
	if err := d.UnmarshalText([]byte("1:1, 4:3")); err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != "1:1,4:3" {
		t.Errorf("String %q", got)
	}
	counts := map[int]int{}
	const n = 4000
	for i := range n {
		counts[d.Sample((float64(i)+0.5)/n)]++
	}
	if counts[1] != n/4 || counts[4] != 3*n/4 || len(counts) != 2 {
		t.Errorf("samples %v, want 1000 of 1 and 3000 of 4", counts)
	}
	if got := d.Sample(math.Nextafter(1, 0)); got != 4 {
		t.Errorf("Sample(1-ε) = %d", got)
	}
	if m := d.Mean(); m != 3.25 {
		t.Errorf("Mean %g, want 3.25", m)
	}
	for _, bad := range []string{"", "5:1", "0:1", "1:-1", "1", "a:1", "1:0,2:0", "2:NaN"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestArrivals(t *testing.T) {
	const n = 1000
	over := 10 * time.Second
	for _, shape := range []string{ArrivalBurst, ArrivalSteady, ArrivalRamp} {
		prev := time.Duration(-1)
		for k := range n {
			at := arrivalOffset(shape, over, k, n)
			if at < prev || at > over {
				t.Fatalf("%s: arrival %d at %s after %s", shape, k, at, prev)
			}
			prev = at
			// arrivalsDue counts buyer k as arrived at its own time.
			if due := arrivalsDue(shape, over, n, at); due <= k {
				t.Fatalf("%s: arrivalsDue(%s) = %d, buyer %d arrived then", shape, at, due, k)
			}
		}
	}
	if got := arrivalOffset(ArrivalBurst, over, n-1, n); got != 0 {
		t.Errorf("burst: last buyer at %s", got)
	}
	// A ramp has a quarter of the buyers in the first half of the window.
	if got := arrivalsDue(ArrivalRamp, over, n, over/2); got < n/4 || got > n/4+1 {
		t.Errorf("ramp: %d arrived by half time, want %d", got, n/4)
	}
	if got := arrivalsDue(ArrivalSteady, over, n, over/2); got < n/2 || got > n/2+1 {
		t.Errorf("steady: %d arrived by half time, want %d", got, n/2)
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.EventID, ok.AdminToken = "e", "t"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"target":      {func(c *Config) { c.Target = "localhost:8080" }, "--target"},
		"event":       {func(c *Config) { c.EventID = "" }, "--event"},
		"admin token": {func(c *Config) { c.AdminToken = "" }, "--admin-token"},
		"buyers":      {func(c *Config) { c.Buyers = 0 }, "--buyers"},
		"arrival":     {func(c *Config) { c.Arrival = "wave" }, "--arrival"},
		"over":        {func(c *Config) { c.ArrivalOver = 0 }, "--arrival-over"},
		"shares":      {func(c *Config) { c.PayShare = 0.5 }, "must be 1"},
		"share range": {func(c *Config) { c.HandPickedShare = 2 }, "--hand-picked-share"},
		"attempts":    {func(c *Config) { c.MaxAttempts = 0 }, "--max-attempts"},
		"room":        {func(c *Config) { c.WaitingRoom = "on" }, "--waiting-room"},
		"connections": {func(c *Config) { c.Connections = 0 }, "--connections"},
		"plan":        {func(c *Config) { c.CreateEvent = &EventSpec{} }, "plan is empty"},
	} {
		c := ok
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, tc.want)
		}
	}
	burst := ok
	burst.Arrival, burst.ArrivalOver = ArrivalBurst, 0
	if err := burst.Validate(); err != nil {
		t.Errorf("burst needs no window: %v", err)
	}
}

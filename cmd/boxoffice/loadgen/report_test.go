package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReportFormats: the text, JSON and HTML reports carry every figure,
// and the HTML page is self-contained (nothing fetched, no script).
func TestReportFormats(t *testing.T) {
	_, url := newFakeServer(t, 6)
	cfg := fakeConfig(url)
	cfg.Buyers, cfg.ArrivalOver = 120, 1500*time.Millisecond
	cfg.PayShare, cfg.CancelShare, cfg.AbandonShare = 0.8, 0.2, 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Timeline) == 0 || rep.TimeToSellOutSeconds == nil {
		t.Fatalf("timeline %d samples, time to sell out %v", len(rep.Timeline), rep.TimeToSellOutSeconds)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"decisions/s", "granted/s", "bookings/s", "p50", "p90", "p99", "p99.9", "max",
		"hold", "pay", "cancel", "session", "event", "errors", "sold out      after", "audit         OK"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, &text)
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"holdDecisionsPerSecond", "grantedHoldsPerSecond", "bookingsPerSecond", "latency",
		"errorsByCode", "timeToSellOutSeconds", "audit", "timeline", "buyers", "sendDelay"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}
	hold := m["latency"].(map[string]any)["hold"].(map[string]any)
	for _, key := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := hold[key]; !ok {
			t.Errorf("latency.hold lacks %q: %v", key, hold)
		}
	}
	if audit := m["audit"].(map[string]any); audit["ok"] != true || audit["problems"] == nil {
		t.Errorf("audit %v", audit)
	}

	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	h := page.String()
	if n := strings.Count(h, "<svg"); n != 4 {
		t.Errorf("%d SVG charts, want 4", n)
	}
	for _, want := range []string{"Hold decisions per second", "p99 latency", "Seats sold", "Queue length", "<polyline", "passed"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if ext := regexp.MustCompile(`(?i)<script|<link|src=|href=|@import|url\(`).FindString(h); ext != "" {
		t.Errorf("HTML is not self-contained: %q", ext)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 1000000: "1,000,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

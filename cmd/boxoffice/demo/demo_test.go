package demo

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// TestEmbeddedPlansMatchTestdata keeps the embedded copies byte-identical to
// testdata/venues.
func TestEmbeddedPlansMatchTestdata(t *testing.T) {
	for name, embedded := range map[string][]byte{
		"riverside-concert-hall.json": riversidePlan,
		"harbour-stadium.json":        harbourPlan,
	} {
		want, err := os.ReadFile("../../../testdata/venues/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, want) {
			t.Errorf("embedded %s differs from testdata/venues/%s: copy it again", name, name)
		}
	}
}

// TestEventsAreValid: both demo events pass the engine's validation, price
// every category, and are named after their venue.
func TestEventsAreValid(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, def := range Events(now) {
		ev, _, err := engine.CreateEvent(def, now)
		if err != nil {
			t.Fatalf("%s: %v", def.ID, err)
		}
		info := ev.Info()
		if !strings.Contains(def.Name, info.Venue) {
			t.Errorf("%s: name %q lacks the venue %q", def.ID, def.Name, info.Venue)
		}
		for _, c := range info.Categories {
			if c.PriceCents <= 0 {
				t.Errorf("%s: category %q has no price", def.ID, c.Name)
			}
		}
		if !def.OnSaleAt.Equal(now) || def.StartsAt.Sub(now) != 30*24*time.Hour {
			t.Errorf("%s: on sale %s, starts %s", def.ID, def.OnSaleAt, def.StartsAt)
		}
	}
}

// Package demo holds the two demo events of `boxoffice serve --demo`: their
// venue plans (copies of testdata/venues/*.json, embedded into the binary; a
// test keeps the copies byte-identical) and their definitions.
package demo

import (
	_ "embed"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

var (
	//go:embed venues/riverside-concert-hall.json
	riversidePlan []byte
	//go:embed venues/harbour-stadium.json
	harbourPlan []byte
)

// Settings shared by the demo events.
const (
	holdTTLSeconds      = 600
	maxSeatsPerCustomer = 8
	currency            = "EUR"
	startsAfter         = 30 * 24 * time.Hour
)

// Events returns the demo events as created at now: on sale from now,
// starting 30 days later. Their names contain their venue's name.
func Events(now time.Time) []engine.EventDefinition {
	now = now.UTC().Truncate(time.Second)
	event := func(id, name string, plan []byte, prices map[string]int64) engine.EventDefinition {
		return engine.EventDefinition{
			ID: id, Name: name,
			StartsAt: now.Add(startsAfter), OnSaleAt: now,
			HoldTTLSeconds: holdTTLSeconds, MaxSeatsPerCustomer: maxSeatsPerCustomer,
			Currency: currency, Prices: prices, SeatingPlan: plan,
		}
	}
	return []engine.EventDefinition{
		event("riverside-concert-hall", "Riverside Concert Hall — Demo Night", riversidePlan, map[string]int64{
			"Premium": 12000, "Standard": 6500, "Restricted View": 3500, "Wheelchair": 6500,
		}),
		event("harbour-stadium", "Harbour Stadium — Demo Concert", harbourPlan, map[string]int64{
			"Floor": 15000, "Lower Bowl": 9500, "Club": 18000, "Upper Bowl": 5500, "Accessible": 9500,
		}),
	}
}

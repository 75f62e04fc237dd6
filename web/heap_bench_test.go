package web

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
)

// BenchmarkStadiumHeap measures the heap an event costs: the growth of the
// live heap from creating the 48,568-seat stadium event (engine state, the
// event actor, the hub's seat map) and serving its seat map once. Reported
// as bytes/seat (target ≤ 200).
func BenchmarkStadiumHeap(b *testing.B) {
	plan, err := os.ReadFile("../testdata/venues/harbour-stadium.json")
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		e := newEnv(b)
		def := engine.EventDefinition{
			ID: "stadium", Name: "Heap test at Harbour Stadium",
			StartsAt: e.clock.Now().AddDate(0, 1, 0), OnSaleAt: e.clock.Now(),
			HoldTTLSeconds: 600, MaxSeatsPerCustomer: 8, Currency: "EUR",
			Prices:      map[string]int64{"Floor": 15000, "Lower Bowl": 9500, "Club": 18000, "Upper Bowl": 5500, "Accessible": 9500},
			SeatingPlan: json.RawMessage(plan),
		}
		before := liveHeap()
		if _, err := e.sys.CreateEvent(context.Background(), def); err != nil {
			b.Fatal(err)
		}
		def.SeatingPlan = nil
		b.ReportMetric(float64(liveHeap()-before)/48568, "bytes/seat-before-serving")
		res, err := e.client.Get(e.http.URL + "/v1/events/stadium/seats")
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("seat map: %v %v", res, err)
		}
		res.Body.Close()
		after := liveHeap()
		b.ReportMetric(float64(after-before)/48568, "bytes/seat")
		runtime.KeepAlive(e)
	}
}

func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

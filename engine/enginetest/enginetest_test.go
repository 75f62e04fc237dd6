package enginetest

import (
	"testing"

	"github.com/boxoffice/boxoffice/engine"
)

// The plans must import, with the seats and aisles their docs promise.
func TestPlans(t *testing.T) {
	g, err := engine.ParsePlan(GridPlan(2, 12))
	if err != nil || g.Capacity() != 24 {
		t.Fatalf("GridPlan: %v seats, %v", g, err)
	}
	if _, ok := g.SeatIndex("B12"); !ok {
		t.Fatal("GridPlan has no seat B12")
	}
	a, err := engine.ParsePlan(AislePlan(3))
	if err != nil || a.Capacity() != 60 {
		t.Fatalf("AislePlan: %v, %v", a, err)
	}
	if _, _, ok := a.Stage(); !ok {
		t.Fatal("AislePlan has no stage")
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{{"A-1", "A-2", true}, {"A-2", "A-1", true}, {"A-10", "A-11", false}, {"A-1", "B-1", false}, {"A-1", "A-3", false}} {
		if got := AisleNeighbours(c.a, c.b); got != c.want {
			t.Errorf("AisleNeighbours(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

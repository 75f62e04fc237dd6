// Package enginetest builds small venue plans, in the pretix seating-plan
// format, for the tests of the packages above the engine (actors, web). It is
// test support: nothing in the binary imports it. Standard library only.
package enginetest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

type pos struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// plan marshals a plan of one category "Standard", a Stage zone with a
// STAGE area, and one seated zone with rows (rows[i] = seats of row i).
func plan(name, zone string, rows []map[string]any) json.RawMessage {
	b, err := json.Marshal(map[string]any{
		"name": name, "categories": []map[string]string{{"name": "Standard", "color": "#2980b9"}},
		"zones": []map[string]any{
			{"name": "Stage", "position": pos{}, "rows": []any{}, "areas": []any{map[string]any{"text": "STAGE", "width": 200, "height": 40, "position": pos{200, 10}}}},
			{"name": zone, "position": pos{}, "rows": rows},
		},
	})
	if err != nil {
		panic(err) // only maps, strings and ints
	}
	return b
}

func row(name string, seats []any) map[string]any {
	return map[string]any{"row_number": name, "seats": seats}
}

func seat(id string, number, x, y int) map[string]any {
	return map[string]any{"seat_guid": id, "seat_number": strconv.Itoa(number), "position": pos{x, y}, "category": "Standard"}
}

// GridPlan is rows × perRow seats of category Standard, named row letter +
// number ("A1", "A2", …, then "B1"…), 20 plan units apart, with no aisle.
func GridPlan(rows, perRow int) json.RawMessage {
	var rs []map[string]any
	for r := range rows {
		name := string(rune('A' + r))
		var seats []any
		for n := 1; n <= perRow; n++ {
			seats = append(seats, seat(fmt.Sprintf("%s%d", name, n), n, 20*n, 100+20*r))
		}
		rs = append(rs, row(name, seats))
	}
	return plan("Grid Hall", "Main", rs)
}

// AislePlan is rows × 20 seats of category Standard named "<row>-<n>"
// ("A-1" … "A-20"), 24 plan units apart, with an aisle (a 72-unit gap)
// between seats 10 and 11 of every row.
func AislePlan(rows int) json.RawMessage {
	var rs []map[string]any
	for r := range rows {
		name := string(rune('A' + r))
		var seats []any
		for n := 1; n <= 20; n++ {
			x := 24 * n
			if n > 10 {
				x += 48
			}
			seats = append(seats, seat(fmt.Sprintf("%s-%d", name, n), n, x, 100+30*r))
		}
		rs = append(rs, row(name, seats))
	}
	return plan("Aisle Hall", "Stalls", rs)
}

// AisleNeighbours reports whether two seat ids of AislePlan are adjacent:
// one row, consecutive numbers, not across the aisle after seat 10.
func AisleNeighbours(a, b string) bool {
	ra, na, _ := strings.Cut(a, "-")
	rb, nb, _ := strings.Cut(b, "-")
	x, _ := strconv.Atoi(na)
	y, _ := strconv.Atoi(nb)
	return ra == rb && (x-y == 1 || y-x == 1) && min(x, y) != 10
}

package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/boxoffice/boxoffice/engine"
)

func TestDecodeHoldRequest(t *testing.T) {
	tests := []struct {
		name, body string
		wantErr    string // substring of the message; "" = accepted
	}{
		{"seats", `{"eventId":"e1","seatIds":["a","b"]}`, ""},
		{"best available shape", `{"eventId":"e1","bestAvailable":{"quantity":2,"category":"Floor"}}`, ""},
		{"unknown field", `{"eventId":"e1","seatIds":["a"],"x":1}`, `unknown field "x"`},
		{"customerId", `{"eventId":"e1","seatIds":["a"],"customerId":"U1"}`, "customerId is not accepted"},
		{"customerId other case", `{"eventId":"e1","seatIds":["a"],"CustomerID":"U1"}`, "customerId is not accepted"},
		{"key in another case", `{"EventId":"e1","seatIds":["a"]}`, `unknown field "EventId"`},
		{"key twice", `{"eventId":"e1","eventId":"e2","seatIds":["a"]}`, "given twice"},
		{"duplicate ids", `{"eventId":"e1","seatIds":["a","a"]}`, "duplicates"},
		{"empty list", `{"eventId":"e1","seatIds":[]}`, "empty"},
		{"no seats", `{"eventId":"e1"}`, "empty"},
		{"empty id", `{"eventId":"e1","seatIds":[""]}`, "empty id"},
		{"no event", `{"seatIds":["a"]}`, "eventId is missing"},
		{"both", `{"eventId":"e1","seatIds":["a"],"bestAvailable":{"quantity":1}}`, "not both"},
		{"zero quantity", `{"eventId":"e1","bestAvailable":{"quantity":0}}`, "quantity"},
		{"unknown nested", `{"eventId":"e1","bestAvailable":{"quantity":1,"row":"A"}}`, "unknown field"},
		{"trailing", `{"eventId":"e1","seatIds":["a"]} {}`, "after the JSON object"},
		{"array", `[{"eventId":"e1"}]`, "JSON object"},
		{"null", `null`, "JSON object"},
		{"empty", ``, "malformed"},
		{"syntax", `{"eventId":`, "malformed"},
		{"wrong type", `{"eventId":"e1","seatIds":"a"}`, "must be an array"},
		{"number id", `{"eventId":"e1","seatIds":[1]}`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeHoldRequest([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if engine.CodeOf(err) != engine.CodeInvalidRequest || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want invalid_request containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeEventDefinition(t *testing.T) {
	valid := func(edit func(m map[string]any)) string {
		m := map[string]any{
			"id": "e1", "name": "Gala", "startsAt": "2026-12-01T19:30:00+01:00", "onSaleAt": "2026-11-01T10:00:00Z",
			"holdTtlSeconds": 600, "maxSeatsPerCustomer": 8, "currency": "EUR",
			"prices": map[string]int64{"A": 100}, "seatingPlan": map[string]any{"name": "Hall"},
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	def, err := decodeEventDefinition([]byte(valid(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if def.StartsAt.Location().String() != "UTC" || def.StartsAt.Hour() != 18 || def.ID != "e1" || def.HoldTTLSeconds != 600 {
		t.Errorf("def = %+v", def)
	}
	noID, err := decodeEventDefinition([]byte(valid(func(m map[string]any) { delete(m, "id"); m["name"] = "Riverside Gala: Night!" })))
	if err != nil || !strings.HasPrefix(noID.ID, "riverside-gala-night-") || !engine.ValidEventID(noID.ID) {
		t.Errorf("generated id %q, err %v", noID.ID, err)
	}
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string
	}{
		{"accepted extras", func(m map[string]any) {
			m["orphanSeats"] = "prevent"
			m["focalPoint"] = map[string]any{"x": 1, "y": 2}
			m["waitingRoom"] = map[string]any{"enabled": false, "admitPerSecond": 5}
			m["maxHoldSeconds"] = 1800
			m["paymentGraceSeconds"] = 300
			m["salesEndAt"] = "2026-12-01T18:00:00Z"
		}, ""},
		{"no name", func(m map[string]any) { delete(m, "name") }, "name is missing"},
		{"no plan", func(m map[string]any) { delete(m, "seatingPlan") }, "seatingPlan is missing"},
		{"null plan", func(m map[string]any) { m["seatingPlan"] = nil }, "seatingPlan is missing"},
		{"plan not object", func(m map[string]any) { m["seatingPlan"] = "x" }, "pretix"},
		{"no prices", func(m map[string]any) { delete(m, "prices") }, "prices is missing"},
		{"no ttl", func(m map[string]any) { delete(m, "holdTtlSeconds") }, "holdTtlSeconds is missing"},
		{"bad time", func(m map[string]any) { m["startsAt"] = "tomorrow" }, "malformed"},
		{"unknown", func(m map[string]any) { m["venue"] = "x" }, `unknown field "venue"`},
		{"bad orphans", func(m map[string]any) { m["orphanSeats"] = "maybe" }, "orphanSeats"},
		{"waiting room", func(m map[string]any) { m["waitingRoom"] = map[string]any{"enabled": true, "admitPerSecond": 5} }, ""},
		{"waiting room bad", func(m map[string]any) { m["waitingRoom"] = map[string]any{"enabled": true, "admitPerSecond": "x"} }, "admitPerSecond"},
		{"focal point half", func(m map[string]any) { m["focalPoint"] = map[string]any{"x": 1} }, "focalPoint"},
		{"long id", func(m map[string]any) { m["id"] = strings.Repeat("x", 65) }, "id:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEventDefinition([]byte(valid(tt.edit)))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzHoldRequest: the decoder never panics, and what it accepts is a
// well-formed hold: an event id and either unique, non-empty seat ids or a
// best-available quantity.
func FuzzHoldRequest(f *testing.F) {
	for _, s := range []string{
		`{"eventId":"e1","seatIds":["a","b"]}`, `{"eventId":"e1","seatIds":["a","a"]}`,
		`{"eventId":"e1","bestAvailable":{"quantity":2}}`, `{"eventId":"e1","customerId":"x"}`,
		`{"eventId":"e1","seatIds":[]}`, `[]`, `{"eventId":"\u00e9","seatIds":["\ud800"]}`, `{"a":{"b":[1,2,{}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeHoldRequest(body)
		if err != nil {
			if engine.CodeOf(err) != engine.CodeInvalidRequest {
				t.Fatalf("error code %q: %v", engine.CodeOf(err), err)
			}
			return
		}
		if !json.Valid(body) || req.EventID == "" || len(req.EventID) > eventIDBytesMax {
			t.Fatalf("accepted %q as %+v", body, req)
		}
		if req.BestAvailable != nil {
			if req.SeatIDs != nil || req.BestAvailable.Quantity < 1 {
				t.Fatalf("accepted %q as %+v", body, req)
			}
			return
		}
		seen := map[string]bool{}
		for _, id := range req.SeatIDs {
			if id == "" || seen[id] {
				t.Fatalf("accepted %q with seats %q", body, req.SeatIDs)
			}
			seen[id] = true
		}
		if len(seen) == 0 {
			t.Fatalf("accepted %q without seats", body)
		}
	})
}

// FuzzEventDefinition: the admin event decoder never panics; what it accepts
// has every required field.
func FuzzEventDefinition(f *testing.F) {
	f.Add([]byte(`{"id":"e1","name":"n","startsAt":"2026-12-01T19:30:00Z","onSaleAt":"2026-11-01T10:00:00Z","holdTtlSeconds":600,"maxSeatsPerCustomer":8,"currency":"EUR","prices":{},"seatingPlan":{"name":"x"}}`))
	f.Add([]byte(`{"name":"n","startsAt":"2026-12-01T19:30:00Z","onSaleAt":"2026-11-01T10:00:00Z","holdTtlSeconds":1,"maxSeatsPerCustomer":1,"currency":"EUR","prices":{"A":1},"seatingPlan":{},"waitingRoom":{"enabled":true}}`))
	f.Add([]byte(`{"seatingPlan":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		def, err := decodeEventDefinition(body)
		if err != nil {
			if c := engine.CodeOf(err); c != engine.CodeInvalidRequest && c != engine.CodeInvalidPlan {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		if def.ID == "" || def.Name == "" || def.Currency == "" || def.Prices == nil || len(def.SeatingPlan) == 0 ||
			def.StartsAt.Location().String() != "UTC" || def.OnSaleAt.Location().String() != "UTC" {
			t.Fatalf("accepted %q as %+v", body, def)
		}
	})
}

// FuzzAppendJSONString: the seat map's string encoder agrees with
// encoding/json byte for byte.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "stalls-A-1", `a"b\c`, "<&>", "\u2028\u2029", "\x00\x1f\x7f", "é€😀", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestCheckSeatIDsNamesDuplicates(t *testing.T) {
	err := checkSeatIDs([]string{"a", "b", "a", "c", "b"})
	var e *engine.Error
	if !errors.As(err, &e) || fmt.Sprint(e.Seats) != "[a b]" {
		t.Fatalf("err = %#v", err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatal("invalid UTF-8")
	}
}

// FuzzPayRequest: the pay decoder never panics; what it accepts is valid
// JSON with a token of 1 to paymentTokenBytesMax bytes.
func FuzzPayRequest(f *testing.F) {
	for _, s := range []string{
		`{"paymentToken":"tok_visa"}`, `{"paymentToken":""}`, `{"paymentToken":1}`, `{"paymentToken":"a","x":1}`,
		`{"paymentToken":"tok_visa"} {}`, `null`, `{"paymentToken":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePayRequest(body)
		if err != nil {
			if engine.CodeOf(err) != engine.CodeInvalidRequest {
				t.Fatalf("error code %q: %v", engine.CodeOf(err), err)
			}
			return
		}
		if !json.Valid(body) || req.PaymentToken == "" || len(req.PaymentToken) > paymentTokenBytesMax {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}

// FuzzSeatIDsRequest: the block/unblock decoder never panics; what it
// accepts is a non-empty list of unique, non-empty seat ids.
func FuzzSeatIDsRequest(f *testing.F) {
	for _, s := range []string{`{"seatIds":["a"]}`, `{"seatIds":["a","a"]}`, `{"seatIds":[]}`, `{"seatIds":[""]}`, `{}`, `{"seatIds":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeSeatIDsRequest(body)
		if err != nil {
			if engine.CodeOf(err) != engine.CodeInvalidRequest {
				t.Fatalf("error code %q: %v", engine.CodeOf(err), err)
			}
			return
		}
		seen := map[string]bool{}
		for _, id := range req.SeatIDs {
			if id == "" || seen[id] {
				t.Fatalf("accepted %q with seats %q", body, req.SeatIDs)
			}
			seen[id] = true
		}
		if !json.Valid(body) || len(seen) == 0 {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}

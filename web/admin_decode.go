package web

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// createEventRequest is the body of POST /v1/admin/events (API.md,
// Operators). Pointers mark fields whose absence must be seen.
//
// Accepted but without effect yet, because nothing they steer exists yet:
// focalPoint (it only ranks seats for best available), orphanSeats "allow"
// (the default), and a waitingRoom with enabled false. Asking for behaviour
// that does not exist — orphanSeats "prevent" or an enabled waiting room —
// is a 400, so that an operator is never told a sale is protected when it is
// not.
type createEventRequest struct {
	ID                  *string             `json:"id"`
	Name                string              `json:"name"`
	StartsAt            *time.Time          `json:"startsAt"`
	OnSaleAt            *time.Time          `json:"onSaleAt"`
	SalesEndAt          *time.Time          `json:"salesEndAt"`
	HoldTTLSeconds      *int                `json:"holdTtlSeconds"`
	MaxSeatsPerCustomer *int                `json:"maxSeatsPerCustomer"`
	Currency            string              `json:"currency"`
	Prices              map[string]int64    `json:"prices"`
	SeatingPlan         json.RawMessage     `json:"seatingPlan"`
	MaxHoldSeconds      *int                `json:"maxHoldSeconds"`
	PaymentGraceSeconds *int                `json:"paymentGraceSeconds"`
	OrphanSeats         *string             `json:"orphanSeats"`
	FocalPoint          *focalPointRequest  `json:"focalPoint"`
	WaitingRoom         *waitingRoomRequest `json:"waitingRoom"`
}

type focalPointRequest struct {
	X *float64 `json:"x"`
	Y *float64 `json:"y"`
}

type waitingRoomRequest struct {
	Enabled             bool    `json:"enabled"`
	AdmitPerSecond      float64 `json:"admitPerSecond"`
	MaxActive           *int    `json:"maxActive"`
	ClaimSeconds        *int    `json:"claimSeconds"`
	AdmissionTTLSeconds *int    `json:"admissionTtlSeconds"`
}

// decodeEventDefinition decodes an admin event body into the definition the
// actor system creates. It checks presence and shape; the engine checks
// ranges and the plan (invalid_request, invalid_plan). An absent id is
// generated from the name.
func decodeEventDefinition(body []byte) (engine.EventDefinition, error) {
	var req createEventRequest
	if err := decodeStrict(body, &req); err != nil {
		return engine.EventDefinition{}, err
	}
	missing := func(field string) error {
		return errorf(engine.CodeInvalidRequest, "%s is missing", field)
	}
	switch {
	case req.Name == "":
		return engine.EventDefinition{}, missing("name")
	case req.StartsAt == nil:
		return engine.EventDefinition{}, missing("startsAt")
	case req.OnSaleAt == nil:
		return engine.EventDefinition{}, missing("onSaleAt")
	case req.HoldTTLSeconds == nil:
		return engine.EventDefinition{}, missing("holdTtlSeconds")
	case req.MaxSeatsPerCustomer == nil:
		return engine.EventDefinition{}, missing("maxSeatsPerCustomer")
	case req.Currency == "":
		return engine.EventDefinition{}, missing("currency")
	case req.Prices == nil:
		return engine.EventDefinition{}, missing("prices")
	case len(bytes.TrimSpace(req.SeatingPlan)) == 0 || bytes.Equal(bytes.TrimSpace(req.SeatingPlan), []byte("null")):
		return engine.EventDefinition{}, missing("seatingPlan")
	}
	if p := bytes.TrimSpace(req.SeatingPlan); p[0] != '{' {
		return engine.EventDefinition{}, errorf(engine.CodeInvalidPlan, "seatingPlan must be a pretix seating-plan JSON object")
	}
	if req.OrphanSeats != nil {
		switch *req.OrphanSeats {
		case "allow":
		case "prevent":
			return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, `orphanSeats "prevent" is not supported yet; use "allow" or leave it out`)
		default:
			return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, `orphanSeats must be "allow" or "prevent"`)
		}
	}
	if fp := req.FocalPoint; fp != nil && (fp.X == nil || fp.Y == nil) {
		return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, "focalPoint needs x and y")
	}
	if req.WaitingRoom != nil && req.WaitingRoom.Enabled {
		return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, "the waiting room is not supported yet; leave waitingRoom out or set enabled to false")
	}
	def := engine.EventDefinition{
		Name:                req.Name,
		StartsAt:            req.StartsAt.UTC(),
		OnSaleAt:            req.OnSaleAt.UTC(),
		HoldTTLSeconds:      *req.HoldTTLSeconds,
		MaxSeatsPerCustomer: *req.MaxSeatsPerCustomer,
		Currency:            req.Currency,
		Prices:              req.Prices,
		SeatingPlan:         req.SeatingPlan,
	}
	if req.ID != nil {
		if err := checkEventID(*req.ID); err != nil {
			return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, "id: %s", err.(*engine.Error).Message)
		}
		def.ID = *req.ID
	} else {
		def.ID = newEventID(req.Name)
	}
	if req.SalesEndAt != nil {
		def.SalesEndAt = req.SalesEndAt.UTC()
	}
	if req.MaxHoldSeconds != nil {
		def.MaxHoldSeconds = *req.MaxHoldSeconds
	}
	if req.PaymentGraceSeconds != nil {
		def.PaymentGraceSeconds = *req.PaymentGraceSeconds
	}
	return def, nil
}

// newEventID makes an id from an event's name: a lowercase ASCII slug and a
// random suffix, e.g. "riverside-gala-3f9c2a".
func newEventID(name string) string {
	const slugBytesMax = 40
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
		default:
			dash = true
		}
		if b.Len() >= slugBytesMax {
			break
		}
	}
	slug := b.String()
	if slug == "" {
		slug = "event"
	}
	return slug + "-" + strings.ToLower(rand.Text()[:6])
}

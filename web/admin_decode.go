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
	if req.OrphanSeats != nil && *req.OrphanSeats != engine.OrphanAllow && *req.OrphanSeats != engine.OrphanPrevent {
		return engine.EventDefinition{}, errorf(engine.CodeInvalidRequest, `orphanSeats must be "allow" or "prevent"`)
	}
	fp, err := req.FocalPoint.point()
	if err != nil {
		return engine.EventDefinition{}, err
	}
	def := engine.EventDefinition{
		WaitingRoom:         req.WaitingRoom.engine(),
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
	if req.OrphanSeats != nil {
		def.OrphanSeats = *req.OrphanSeats
	}
	def.FocalPoint = fp
	return def, nil
}

// point checks a focal point's shape (the engine checks its range); nil
// stays nil (the default: the stage).
func (fp *focalPointRequest) point() (*engine.FocalPoint, error) {
	if fp == nil {
		return nil, nil
	}
	if fp.X == nil || fp.Y == nil {
		return nil, errorf(engine.CodeInvalidRequest, "focalPoint needs x and y")
	}
	return &engine.FocalPoint{X: *fp.X, Y: *fp.Y}, nil
}

// engine is the waiting room as the engine takes it (nil: none); the
// engine checks the ranges (invalid_request naming the field).
func (wr *waitingRoomRequest) engine() *engine.WaitingRoom {
	if wr == nil {
		return nil
	}
	out := &engine.WaitingRoom{Enabled: wr.Enabled, AdmitPerSecond: wr.AdmitPerSecond}
	for _, f := range []struct {
		from *int
		to   *int
	}{{wr.MaxActive, &out.MaxActive}, {wr.ClaimSeconds, &out.ClaimSeconds}, {wr.AdmissionTTLSeconds, &out.AdmissionTTLSeconds}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	return out
}

// eventPatchRequest is the body of PATCH /v1/admin/events/{eventId}
// (API.md, Operators): every field optional, none unknown. Fields are kept
// raw so that null is seen: null resets salesEndAt (sales run until
// startsAt), maxHoldSeconds (3 × holdTtlSeconds) and focalPoint (the
// stage), and is refused for the others.
type eventPatchRequest struct {
	Name                json.RawMessage `json:"name"`
	OnSaleAt            json.RawMessage `json:"onSaleAt"`
	SalesEndAt          json.RawMessage `json:"salesEndAt"`
	HoldTTLSeconds      json.RawMessage `json:"holdTtlSeconds"`
	MaxSeatsPerCustomer json.RawMessage `json:"maxSeatsPerCustomer"`
	MaxHoldSeconds      json.RawMessage `json:"maxHoldSeconds"`
	OrphanSeats         json.RawMessage `json:"orphanSeats"`
	FocalPoint          json.RawMessage `json:"focalPoint"`
	Status              json.RawMessage `json:"status"`
	WaitingRoom         json.RawMessage `json:"waitingRoom"`
}

// decodeEventPatch decodes a PATCH body strictly: unknown, repeated or
// case-mismatched fields, a value of the wrong type, null where it cannot
// reset anything, an orphanSeats or status the API does not know — each a
// 400 naming the field. The engine checks the values against the event
// (ranges, the sale window's order), naming the field too.
func decodeEventPatch(body []byte) (engine.EventPatch, error) {
	var req eventPatchRequest
	if err := decodeStrict(body, &req); err != nil {
		return engine.EventPatch{}, err
	}
	var p engine.EventPatch
	var err error
	reset := func(field string, raw json.RawMessage) bool {
		if string(raw) == "null" {
			p.Reset = append(p.Reset, field)
			return true
		}
		return false
	}
	if p.Name, err = patchField[string]("name", req.Name); err != nil {
		return p, err
	}
	if p.OnSaleAt, err = patchField[time.Time]("onSaleAt", req.OnSaleAt); err != nil {
		return p, err
	}
	if !reset("salesEndAt", req.SalesEndAt) {
		if p.SalesEndAt, err = patchField[time.Time]("salesEndAt", req.SalesEndAt); err != nil {
			return p, err
		}
	}
	if p.HoldTTLSeconds, err = patchField[int]("holdTtlSeconds", req.HoldTTLSeconds); err != nil {
		return p, err
	}
	if p.MaxSeatsPerCustomer, err = patchField[int]("maxSeatsPerCustomer", req.MaxSeatsPerCustomer); err != nil {
		return p, err
	}
	if !reset("maxHoldSeconds", req.MaxHoldSeconds) {
		if p.MaxHoldSeconds, err = patchField[int]("maxHoldSeconds", req.MaxHoldSeconds); err != nil {
			return p, err
		}
	}
	if p.OrphanSeats, err = patchField[string]("orphanSeats", req.OrphanSeats); err != nil {
		return p, err
	}
	if p.OrphanSeats != nil && *p.OrphanSeats != engine.OrphanAllow && *p.OrphanSeats != engine.OrphanPrevent {
		return p, errorf(engine.CodeInvalidRequest, `orphanSeats must be "allow" or "prevent"`)
	}
	if !reset("focalPoint", req.FocalPoint) {
		fp, err := patchField[focalPointRequest]("focalPoint", req.FocalPoint)
		if err != nil {
			return p, err
		}
		if p.FocalPoint, err = fp.point(); err != nil {
			return p, err
		}
	}
	if p.Status, err = patchField[string]("status", req.Status); err != nil {
		return p, err
	}
	if p.Status != nil && *p.Status != engine.EventCancelled {
		return p, errorf(engine.CodeInvalidRequest, `status: only "cancelled" can be set (cancelling is final)`)
	}
	wr, err := patchField[waitingRoomRequest]("waitingRoom", req.WaitingRoom)
	if err != nil {
		return p, err
	}
	p.WaitingRoom = wr.engine()
	return p, nil
}

// patchField decodes one raw field of a PATCH body: nil when absent, a 400
// naming the field when null or of the wrong shape.
func patchField[T any](field string, raw json.RawMessage) (*T, error) {
	if raw == nil {
		return nil, nil
	}
	if string(raw) == "null" {
		return nil, errorf(engine.CodeInvalidRequest, "%s cannot be null", field)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, errorf(engine.CodeInvalidRequest, "%s: %s", field, jsonErrorText(err))
	}
	return &v, nil
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

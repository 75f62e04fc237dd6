package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/boxoffice/boxoffice/engine"
)

// Request body bounds (API.md, Conventions).
const (
	bodyBytesMax      = 64 << 10
	adminBodyBytesMax = 16 << 20
	seatIDBytesMax    = 128 // as the plan importer's bound on seat_guid
	eventIDBytesMax   = 64  // as engine's bound on an event id
	nameBytesMax      = 256 // as the plan importer's bound on category and zone names
)

// readBody reads the whole request body, at most limit bytes. A longer body
// is a 413 body_too_large.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(codeBodyTooLarge, "the request body is over the %d-byte limit", limit)
		}
		return nil, errorf(engine.CodeInvalidRequest, "reading the request body: %v", err)
	}
	return body, nil
}

// decodeStrict decodes one JSON object into v, which must point to a struct.
// It rejects what encoding/json lets through: keys that match a field only
// case-insensitively, keys given twice, anything after the object, and —
// with its own message — a customer id, since the customer is always the
// token's subject (API.md). Every failure is a 400 invalid_request.
func decodeStrict(body []byte, v any) error {
	fields := jsonFieldNames(reflect.TypeOf(v).Elem())
	if err := checkObjectKeys(body, fields); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(engine.CodeInvalidRequest, "malformed JSON body: %s", jsonErrorText(err))
	}
	return nil
}

// checkObjectKeys checks that body is exactly one JSON object whose keys are
// all in fields (exact spelling) and none repeated.
func checkObjectKeys(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return errorf(engine.CodeInvalidRequest, "malformed JSON body: %s", jsonErrorText(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errorf(engine.CodeInvalidRequest, "the body must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errorf(engine.CodeInvalidRequest, "malformed JSON body: %s", jsonErrorText(err))
		}
		key, _ := tok.(string) // inside an object the decoder only yields string keys
		switch {
		case strings.EqualFold(key, "customerId"):
			return errorf(engine.CodeInvalidRequest, "customerId is not accepted: the customer is the subject of the bearer token")
		case !fields[key]:
			return errorf(engine.CodeInvalidRequest, "unknown field %q", key)
		case seen[key]:
			return errorf(engine.CodeInvalidRequest, "field %q is given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errorf(engine.CodeInvalidRequest, "malformed JSON body: %s", jsonErrorText(err))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return errorf(engine.CodeInvalidRequest, "malformed JSON body: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(engine.CodeInvalidRequest, "malformed JSON body: data after the JSON object")
	}
	return nil
}

// jsonErrorText makes encoding/json's errors readable without Go type names.
func jsonErrorText(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
		}
		return fmt.Sprintf("expected %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "an RFC 3339 time"
		}
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

var fieldNamesCache sync.Map // reflect.Type → map[string]bool

// jsonFieldNames returns the JSON names of a struct's fields.
func jsonFieldNames(t reflect.Type) map[string]bool {
	if m, ok := fieldNamesCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
	fieldNamesCache.Store(t, m)
	return m
}

// holdRequest is the body of POST /v1/reservations.
type holdRequest struct {
	EventID       string                `json:"eventId"`
	SeatIDs       []string              `json:"seatIds"`
	BestAvailable *bestAvailableRequest `json:"bestAvailable"`
}

type bestAvailableRequest struct {
	Quantity int    `json:"quantity"`
	Category string `json:"category"`
	Zone     string `json:"zone"`
}

// decodeHoldRequest decodes and checks the shape of a hold: an eventId and
// either seatIds (non-empty, no duplicates) or bestAvailable.
func decodeHoldRequest(body []byte) (holdRequest, error) {
	var req holdRequest
	if err := decodeStrict(body, &req); err != nil {
		return holdRequest{}, err
	}
	if err := checkEventID(req.EventID); err != nil {
		return holdRequest{}, err
	}
	switch {
	case req.SeatIDs != nil && req.BestAvailable != nil:
		return holdRequest{}, errorf(engine.CodeInvalidRequest, "give either seatIds or bestAvailable, not both")
	case req.BestAvailable != nil:
		ba := req.BestAvailable
		switch {
		case ba.Quantity < 1:
			return holdRequest{}, errorf(engine.CodeInvalidRequest, "bestAvailable.quantity must be at least 1")
		case len(ba.Category) > nameBytesMax:
			return holdRequest{}, errorf(engine.CodeInvalidRequest, "bestAvailable.category is over %d bytes", nameBytesMax)
		case len(ba.Zone) > nameBytesMax:
			return holdRequest{}, errorf(engine.CodeInvalidRequest, "bestAvailable.zone is over %d bytes", nameBytesMax)
		}
		return req, nil
	}
	if err := checkSeatIDs(req.SeatIDs); err != nil {
		return holdRequest{}, err
	}
	return req, nil
}

// seatIDsRequest is the body of the admin block and unblock endpoints.
type seatIDsRequest struct {
	SeatIDs []string `json:"seatIds"`
}

func decodeSeatIDsRequest(body []byte) (seatIDsRequest, error) {
	var req seatIDsRequest
	if err := decodeStrict(body, &req); err != nil {
		return seatIDsRequest{}, err
	}
	if err := checkSeatIDs(req.SeatIDs); err != nil {
		return seatIDsRequest{}, err
	}
	return req, nil
}

// payRequest is the body of POST /v1/reservations/{id}/pay.
type payRequest struct {
	PaymentToken string `json:"paymentToken"`
}

const paymentTokenBytesMax = 255 // as the engine journals it

func decodePayRequest(body []byte) (payRequest, error) {
	var req payRequest
	if err := decodeStrict(body, &req); err != nil {
		return payRequest{}, err
	}
	if req.PaymentToken == "" {
		return payRequest{}, errorf(engine.CodeInvalidRequest, "paymentToken is missing")
	}
	if len(req.PaymentToken) > paymentTokenBytesMax {
		return payRequest{}, errorf(engine.CodeInvalidRequest, "paymentToken is over %d bytes", paymentTokenBytesMax)
	}
	return req, nil
}

func checkEventID(id string) error {
	if id == "" {
		return errorf(engine.CodeInvalidRequest, "eventId is missing")
	}
	if len(id) > eventIDBytesMax {
		return errorf(engine.CodeInvalidRequest, "eventId is over %d bytes", eventIDBytesMax)
	}
	return nil
}

// checkSeatIDs rejects an empty list, empty or over-long ids, and duplicates
// (naming them).
func checkSeatIDs(ids []string) error {
	if len(ids) == 0 {
		return errorf(engine.CodeInvalidRequest, "seatIds is missing or empty")
	}
	seen := make(map[string]bool, len(ids))
	var dups []string
	for _, id := range ids {
		if id == "" || len(id) > seatIDBytesMax {
			return errorf(engine.CodeInvalidRequest, "seatIds contains an empty id or one over %d bytes", seatIDBytesMax)
		}
		if seen[id] {
			dups = append(dups, id)
		}
		seen[id] = true
	}
	if len(dups) > 0 {
		return &engine.Error{Code: engine.CodeInvalidRequest, Message: "seatIds contains duplicates", Seats: dups}
	}
	return nil
}

// readRequest reads a body of at most limit bytes and decodes it strictly
// with decode, answering 413 or 400 itself; ok is false when it answered.
func readRequest[T any](s *Server, w http.ResponseWriter, r *http.Request, limit int64, decode func([]byte) (T, error)) (body []byte, req T, ok bool) {
	body, err := readBody(w, r, limit)
	if err == nil {
		req, err = decode(body)
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, req, false
	}
	return body, req, true
}

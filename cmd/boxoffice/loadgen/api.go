package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// endpoint is one kind of request a buyer makes; latency is kept per
// endpoint.
type endpoint uint8

const (
	epEvent       endpoint = iota // GET /v1/events/{id}: the event page
	epSession                     // POST /v1/sessions
	epQueueJoin                   // POST /v1/events/{id}/queue
	epQueuePoll                   // GET /v1/events/{id}/queue/{ticket}
	epHold                        // POST /v1/reservations
	epPay                         // POST /v1/reservations/{id}/pay
	epReservation                 // GET /v1/reservations/{id} (a payment confirmed later)
	epCancel                      // DELETE /v1/reservations/{id}
	epQueueLeave                  // DELETE /v1/events/{id}/queue/{ticket}
	endpointCount
)

// endpointNames are the report's names of the endpoints.
var endpointNames = [endpointCount]string{"event", "session", "queueJoin", "queuePoll", "hold", "pay", "reservation", "cancel", "queueLeave"}

func (e endpoint) String() string { return endpointNames[e] }

// Codes the generator gives answers that carry none of the server's.
const (
	codeTransport = "transport_error" // no HTTP answer (connection refused, reset, timeout)
	codeNoCode    = "http_"           // + status: an error answer without a problem code
)

// responseBytesMax bounds a response body the generator reads (the seat
// map of the stadium is 6.3 MB; every buyer answer is small).
const responseBytesMax = 64 << 20

// apiClient speaks the HTTP API of API.md over one bounded connection
// pool (conn.go).
type apiClient struct {
	base     string // without a trailing slash
	host     string // Host header
	basePath string // path of the target, without a trailing slash
	pool     *connPool
	timeout  time.Duration
}

func newAPIClient(target string, connections int, timeout time.Duration) *apiClient {
	c := &apiClient{base: strings.TrimRight(target, "/"), timeout: timeout}
	u, err := url.Parse(c.base)
	if err != nil || u.Host == "" {
		u = &url.URL{Scheme: "http", Host: "invalid.invalid"} // Validate refuses such a target before
	}
	c.host, c.basePath = u.Host, strings.TrimRight(u.EscapedPath(), "/")
	c.pool = newConnPool(u, connections)
	return c
}

func (c *apiClient) close() { c.pool.close() }

// answer is what one request brought back.
type answer struct {
	status     int
	code       string        // problem code (or codeTransport, codeNoCode+status)
	retryAfter time.Duration // from Retry-After
	body       []byte        // valid until the exchange's next request
}

// do sends one request, outside the sale's hot path, and copies the
// answer's body into buf. A transport error is an answer with code
// transport_error, not an error: it is part of the measurement.
func (c *apiClient) do(ctx context.Context, method, path, token string, body []byte, hdr [][2]string, buf *bytes.Buffer) answer {
	x := c.newExchange(false)
	a := x.do(ctx, method, path, token, body, hdr)
	buf.Reset()
	buf.Write(a.body)
	a.body = buf.Bytes()
	return a
}

// setCode sets the problem code of an error answer from its body, or
// http_NNN when it has none. Buyers' answers get it from the one decode of
// the body instead.
func (a *answer) setCode(code string) {
	switch {
	case a.status == 0 || a.status < 400:
	case code != "":
		a.code = code
	default:
		a.code = codeNoCode + strconv.Itoa(a.status)
	}
}

func (a *answer) decodeCode() {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(a.body, &p) // not JSON: no code
	a.setCode(p.Code)
}

// getJSON is a setup or audit read: an error unless 200.
func (c *apiClient) getJSON(ctx context.Context, path, token string, out any) error {
	var buf bytes.Buffer
	a := c.do(ctx, http.MethodGet, path, token, nil, nil, &buf)
	a.decodeCode()
	if a.status != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, describe(a))
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func describe(a answer) string {
	if a.status == 0 {
		return "no answer (" + a.code + ")"
	}
	s := strconv.Itoa(a.status)
	if a.code != "" {
		s += " " + a.code
	}
	if a.status >= 400 {
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(a.body, &p) == nil && p.Detail != "" {
			s += ": " + p.Detail
		}
	}
	return s
}

// eventInfo is what the generator reads of GET /v1/events/{id}.
type eventInfo struct {
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	Venue               string    `json:"venue"`
	OnSaleAt            time.Time `json:"onSaleAt"`
	HoldTTLSeconds      int       `json:"holdTtlSeconds"`
	MaxSeatsPerCustomer int       `json:"maxSeatsPerCustomer"`
	Categories          []struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"priceCents"`
	} `json:"categories"`
	Capacity int `json:"capacity"`
	Counts   struct {
		Available int `json:"available"`
		Reserved  int `json:"reserved"`
		Booked    int `json:"booked"`
		Blocked   int `json:"blocked"`
	} `json:"counts"`
	// WaitingRoom is not in API.md's event yet; a server that reports its
	// room this way makes buyers queue before their first hold.
	WaitingRoom *struct {
		Enabled bool `json:"enabled"`
	} `json:"waitingRoom"`
}

func (e *eventInfo) hasRoom() bool { return e.WaitingRoom != nil && e.WaitingRoom.Enabled }

// seatList is GET /v1/events/{id}/seats.
type seatList struct {
	Version uint64 `json:"version"`
	Seats   []struct {
		ID       string  `json:"id"`
		Zone     string  `json:"zone"`
		Row      string  `json:"row"`
		Number   string  `json:"number"`
		X        float64 `json:"x"`
		Y        float64 `json:"y"`
		Category string  `json:"category"`
		Status   string  `json:"status"`
	} `json:"seats"`
}

// bookingList is GET /v1/admin/events/{id}/bookings.
type bookingList struct {
	Bookings []Booking `json:"bookings"`
}

// Booking is one booking as the server lists it (the fields the audit
// needs).
type Booking struct {
	ID            string   `json:"id"`
	ReservationID string   `json:"reservationId"`
	Seats         []string `json:"seats"`
}

// holdRequest is the body of POST /v1/reservations.
type holdRequest struct {
	EventID       string         `json:"eventId"`
	SeatIDs       []string       `json:"seatIds,omitempty"`
	BestAvailable *bestAvailable `json:"bestAvailable,omitempty"`
}

type bestAvailable struct {
	Quantity int    `json:"quantity"`
	Category string `json:"category,omitempty"`
}

// buyerAnswer decodes every buyer answer: a session, a reservation, a
// queue ticket or the event page (only the fields the generator uses).
type buyerAnswer struct {
	Code             string   `json:"code"` // of a problem
	Token            string   `json:"token"`
	ID               string   `json:"id"`
	Status           string   `json:"status"`
	Seats            []string `json:"seats"`
	BookingID        string   `json:"bookingId"`
	Ticket           string   `json:"ticket"`
	Position         *int     `json:"position"`
	PollAfterSeconds float64  `json:"pollAfterSeconds"`
	AdmissionToken   string   `json:"admissionToken"`
	Reason           string   `json:"reason"`
	Counts           *struct {
		Available int `json:"available"`
		Reserved  int `json:"reserved"`
	} `json:"counts"`
	WaitingRoom *struct {
		Enabled bool `json:"enabled"`
	} `json:"waitingRoom"`
}

// decode fills d from a buyer answer's body, reading only the fields
// above (no reflection: this runs for every answer of the sale). A body
// that is not a JSON object, or a field of another type, leaves the zero
// value. p is the caller's; d's strings do not alias body.
func (d *buyerAnswer) decode(p *fastjson.Parser, body []byte) {
	*d = buyerAnswer{}
	v, err := p.ParseBytes(body)
	if err != nil {
		return
	}
	o, err := v.Object()
	if err != nil {
		return
	}
	o.Visit(func(key []byte, v *fastjson.Value) {
		switch string(key) {
		case "code":
			d.Code = internString(v)
		case "token":
			d.Token = jsonString(v)
		case "id":
			d.ID = jsonString(v)
		case "status":
			d.Status = internString(v)
		case "seats":
			d.Seats = nil
			if vs, err := v.Array(); err == nil {
				d.Seats = make([]string, 0, len(vs))
				for _, s := range vs {
					if b, err := s.StringBytes(); err == nil {
						d.Seats = append(d.Seats, string(b))
					}
				}
			}
		case "bookingId":
			d.BookingID = jsonString(v)
		case "ticket":
			d.Ticket = jsonString(v)
		case "position":
			d.Position = nil
			if n, err := v.Int(); err == nil {
				d.Position = &n
			}
		case "pollAfterSeconds":
			d.PollAfterSeconds, _ = v.Float64()
		case "admissionToken":
			d.AdmissionToken = jsonString(v)
		case "reason":
			d.Reason = jsonString(v)
		case "counts":
			d.Counts = nil
			if v.Type() == fastjson.TypeObject {
				d.Counts = &struct {
					Available int `json:"available"`
					Reserved  int `json:"reserved"`
				}{}
				d.Counts.Available, _ = v.Get("available").Int()
				d.Counts.Reserved, _ = v.Get("reserved").Int()
			}
		case "waitingRoom":
			d.WaitingRoom = nil
			if v.Type() == fastjson.TypeObject {
				d.WaitingRoom = &struct {
					Enabled bool `json:"enabled"`
				}{}
				d.WaitingRoom.Enabled, _ = v.Get("enabled").Bool()
			}
		}
	})
}

// jsonString is v's string, or "" when v is not a string.
func jsonString(v *fastjson.Value) string {
	b, err := v.StringBytes()
	if err != nil {
		return ""
	}
	return string(b)
}

// internString is jsonString, without an allocation for a frequent code
// or status.
func internString(v *fastjson.Value) string {
	b, err := v.StringBytes()
	if err != nil {
		return ""
	}
	if c, ok := knownCodes[string(b)]; ok {
		return c
	}
	return string(b)
}

var knownCodes = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{
		"seat_unavailable", "no_adjacent_seats", "orphan_seat", "limit_exceeded", "admission_required",
		"sales_not_open", "sales_closed", "event_cancelled", "event_not_found", "reservation_expired",
		"reservation_released", "payment_declined", "payment_in_progress", "ticket_not_found",
		"not_found", "method_not_allowed", "held", "booked", "paying", "released", "cancelled",
		"admitted", "pre_queue", "waiting", "sold_out", "expired", "left",
	} {
		m[c] = c
	}
	return m
}()

// appendHoldRequest appends the JSON of req to dst (as json.Marshal
// would write it, without reflection: one hold is made per decision).
func appendHoldRequest(dst []byte, req *holdRequest) []byte {
	dst = append(dst, `{"eventId":`...)
	dst = appendJSONString(dst, req.EventID)
	if len(req.SeatIDs) > 0 {
		dst = append(dst, `,"seatIds":[`...)
		for i, id := range req.SeatIDs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, id)
		}
		dst = append(dst, ']')
	}
	if b := req.BestAvailable; b != nil {
		dst = append(dst, `,"bestAvailable":{"quantity":`...)
		dst = strconv.AppendInt(dst, int64(b.Quantity), 10)
		if b.Category != "" {
			dst = append(dst, `,"category":`...)
			dst = appendJSONString(dst, b.Category)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, as json.Marshal would.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string: cannot fail
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// createEvent creates spec's event (POST /v1/admin/events) and returns its
// id. A server that refuses the waiting room (400 naming waitingRoom) gets
// the event without one; note says so.
func (c *apiClient) createEvent(ctx context.Context, adminToken, id string, spec *EventSpec, now time.Time) (eventID, note string, err error) {
	var plan struct {
		Name       string `json:"name"`
		Categories []struct {
			Name string `json:"name"`
		} `json:"categories"`
	}
	if err := json.Unmarshal(spec.Plan, &plan); err != nil {
		return "", "", fmt.Errorf("venue plan: %w", err)
	}
	prices := map[string]int64{}
	for i, cat := range plan.Categories {
		p, ok := spec.Prices[cat.Name]
		if !ok {
			p = max(10_000-1_500*int64(i), 1_000)
		}
		prices[cat.Name] = p
	}
	for name := range spec.Prices {
		if _, ok := prices[name]; !ok {
			return "", "", fmt.Errorf("--prices names %q, which is not a category of the plan", name)
		}
	}
	name := spec.Name
	if name == "" {
		name = "Flash-sale rehearsal — " + plan.Name
	}
	body := map[string]any{
		"name":                name,
		"startsAt":            now.UTC().Add(30 * 24 * time.Hour).Truncate(time.Second),
		"onSaleAt":            now.UTC().Add(-time.Second).Truncate(time.Second),
		"holdTtlSeconds":      cmpOr(spec.HoldTTLSeconds, 60),
		"maxSeatsPerCustomer": cmpOr(spec.MaxSeatsPerCustomer, 8),
		"currency":            "EUR",
		"prices":              prices,
		"seatingPlan":         json.RawMessage(spec.Plan),
	}
	if id != "" {
		body["id"] = id
	}
	if spec.WaitingRoomAdmitPerSecond > 0 {
		room := map[string]any{"enabled": true, "admitPerSecond": spec.WaitingRoomAdmitPerSecond}
		if ttl := spec.WaitingRoomAdmissionTTLSeconds; ttl > 0 {
			room["claimSeconds"], room["admissionTtlSeconds"] = ttl, ttl
		}
		body["waitingRoom"] = room
	}
	post := func() (answer, error) {
		data, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		var buf bytes.Buffer
		// Creating the stadium parses a 6 MB plan: give it a minute.
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		a := c.do(ctx, http.MethodPost, "/v1/admin/events", adminToken, data, nil, &buf)
		a.decodeCode()
		return a, nil
	}
	a, err := post()
	if err != nil {
		return "", "", err
	}
	if a.status == http.StatusBadRequest && spec.WaitingRoomAdmitPerSecond > 0 && bytes.Contains(a.body, []byte("waitingRoom")) {
		note = "the server refused the waiting room (" + describe(a) + "); the event was created without one"
		delete(body, "waitingRoom")
		if a, err = post(); err != nil {
			return "", "", err
		}
	}
	if a.status != http.StatusCreated {
		return "", "", fmt.Errorf("create event: %s", describe(a))
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.body, &created); err != nil || created.ID == "" {
		return "", "", fmt.Errorf("create event: no id in %.200s", a.body)
	}
	return created.ID, note, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// liveURL is the WebSocket address of the event's live seat map.
func (c *apiClient) liveURL(eventID string, since uint64) (string, error) {
	u, err := url.Parse(c.base + "/v1/events/" + url.PathEscape(eventID) + "/live")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", errors.New("target is not http(s)")
	}
	if since > 0 {
		u.RawQuery = "since=" + strconv.FormatUint(since, 10)
	}
	return u.String(), nil
}

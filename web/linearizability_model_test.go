package web

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The sequential specification that TestLinearizability checks histories
// against: the inventory of a small venue (linSeats seats, one category)
// as API.md describes it to customers, written from the contract rather
// than from the engine's code. Operations: a hand-picked hold, a cancel, a
// payment, a read of one reservation (all by the customer who owns it), and
// the test's clock moving forward — the clock is part of the history, so
// every operation is judged at the time it was decided.
//
// Outcomes a client never heard (a 503 during a restart, a cancelled
// request) are "unknown": their return time is infinite, so the checker may
// place them anywhere after their call, including after everything else
// (not applied).
//
// A payment is two steps, as in the server: it starts (the reservation is
// paying, which other customers see as a taken seat, past the hold's own
// expiry) and later settles (booked; or, declined, back to held until the
// hold's expiry, or released if that has passed). A payment whose answer
// the client heard is two operations with the same call and return, begin
// and settle, so both fall inside the call. One in flight across a restart
// is finished by the server on its own (the journal is its outbox): the
// model keeps such a reservation paying and lets it settle before any
// later step.

const (
	linSeats          = 6
	linHoldTTLSeconds = 60
	linMaxHoldSeconds = 3 * linHoldTTLSeconds // API.md's default
	linMaxPerCustomer = 3
	// linGraceSeconds is the payment grace period: longer than any run
	// moves the clock, so that a reservation never lapses while paying.
	linGraceSeconds = 3600
)

const (
	tokVisa     = "tok_visa"
	tokDeclined = "tok_chargeDeclined"
)

type linKind uint8

const (
	linHold linKind = iota
	linCancel
	linPay
	linRead
	linClock
	linPaySettle // the second half of a pay whose answer was heard
)

// linInput is one operation as called.
type linInput struct {
	Kind   linKind
	Client int    // the customer (one per client)
	Op     int    // unique per operation: names the reservation of a hold whose answer was lost
	Seats  uint8  // hold: the seats asked for, bit i = seat A<i+1>
	ID     string // cancel, pay, read: the reservation
	Token  string // pay
	At     int64  // clock: the new time, Unix ms
}

// linOutput is what the client heard.
type linOutput struct {
	Unknown   bool // no answer, or a 5xx: the operation may or may not have been applied
	Status    int
	Code      string // problem code
	ID        string // the reservation in a 2xx body
	ResStatus string // its status
	Reason    string // its release reason
	Seats     uint8  // its seats; for seat_unavailable the unavailable seats
	ExpiresAt int64  // its expiresAt, Unix ms
}

// linRes is one reservation in the model.
type linRes struct {
	ID        string // "?<op>" for a hold whose answer was lost, until a read names it
	Client    int
	Seats     uint8
	Status    string // held, paying, booked, released
	Reason    string
	ExpiresAt int64 // while paying: the hold's own expiry, which a failed payment returns to
	HoldStart int64
	Token     string // paying: the token of the payment in flight
	PayOp     int    // paying: the operation that started it
	// Declined: a payment of this hold was declined. If it lapses, the
	// release may read payment_failed (the decline was decided after the
	// hold's expiry) rather than expired.
	Declined bool
}

// linState is the model's state; never mutated once returned from Step.
type linState struct {
	Now int64
	Res []linRes // sorted by ID
	key string
}

func placeholder(id string) bool { return strings.HasPrefix(id, "?") }

func (s linState) clone() linState {
	return linState{Now: s.Now, Res: slices.Clone(s.Res)}
}

// seal sorts the reservations and computes the canonical key.
func (s linState) seal() linState {
	slices.SortFunc(s.Res, func(a, b linRes) int { return strings.Compare(a.ID, b.ID) })
	var b strings.Builder
	fmt.Fprintf(&b, "t=%d", s.Now)
	for _, r := range s.Res {
		fmt.Fprintf(&b, "|%s c%d s%b %s %s e%d h%d %s/%d %t", r.ID, r.Client, r.Seats, r.Status, r.Reason, r.ExpiresAt, r.HoldStart, r.Token, r.PayOp, r.Declined)
	}
	s.key = b.String()
	return s
}

func (s linState) owned(client int, id string) int {
	for i, r := range s.Res {
		if r.ID == id && r.Client == client {
			return i
		}
	}
	return -1
}

func (s linState) exists(id string) bool {
	return slices.ContainsFunc(s.Res, func(r linRes) bool { return r.ID == id })
}

func occupies(r linRes) bool {
	return r.Status == "held" || r.Status == "paying" || r.Status == "booked"
}

// holderOf is the index of the reservation that holds or booked seat bit, or -1.
func (s linState) holderOf(bit uint8) int {
	for i, r := range s.Res {
		if occupies(r) && r.Seats&bit != 0 {
			return i
		}
	}
	return -1
}

func (s linState) customerSeats(client int) int {
	n := 0
	for _, r := range s.Res {
		if r.Client == client && occupies(r) {
			n += bits.OnesCount8(r.Seats)
		}
	}
	return n
}

// expire releases every held reservation whose expiry is at or before now.
// Doing it when the clock moves is the same, to every observer, as the
// engine's doing it when the next command touches the event: a lapsed hold
// reads as released/expired either way.
func (s *linState) expire() {
	for i := range s.Res {
		if r := &s.Res[i]; r.Status == "held" && r.ExpiresAt <= s.Now {
			r.Status, r.Reason = "released", "expired"
		}
	}
}

// settle finishes the payment in flight of reservation i as the provider
// answers its token.
func (s *linState) settle(i int) {
	r := &s.Res[i]
	token := r.Token
	r.Token, r.PayOp = "", 0
	if token == tokVisa {
		r.Status = "booked"
		return
	}
	r.Status, r.Declined = "held", true
	s.expire()
}

// expand returns s and every state in which some of its payments in
// flight have settled.
func (s linState) expand() []linState {
	var paying []int
	for i, r := range s.Res {
		if r.Status == "paying" {
			paying = append(paying, i)
		}
	}
	if len(paying) == 0 {
		return []linState{s}
	}
	out := make([]linState, 0, 1<<len(paying))
	for mask := 0; mask < 1<<len(paying); mask++ {
		n := s.clone()
		for j, i := range paying {
			if mask&(1<<j) != 0 {
				n.settle(i)
			}
		}
		out = append(out, n)
	}
	return out
}

// linStep is the nondeterministic step function.
func linStep(state, input, output any) []any {
	s0, in, out := state.(linState), input.(linInput), output.(linOutput)
	var next []any
	for _, s := range s0.expand() {
		for _, n := range s.step(in, out) {
			next = append(next, n.seal())
		}
	}
	return next
}

func (s linState) step(in linInput, out linOutput) []linState {
	switch in.Kind {
	case linClock:
		n := s.clone()
		n.Now = max(n.Now, in.At)
		n.expire()
		return []linState{n}
	case linHold:
		return s.hold(in, out)
	case linCancel:
		return s.cancel(in, out)
	case linPay:
		return s.pay(in, out)
	case linPaySettle:
		return s.paySettle(in, out)
	case linRead:
		return s.read(in, out)
	}
	return nil
}

// refused is s if out is the refusal (status, code) or unknown.
func (s linState) refused(out linOutput, status int, code string) []linState {
	if out.Unknown || (out.Status == status && out.Code == code) {
		return []linState{s}
	}
	return nil
}

func (s linState) hold(in linInput, out linOutput) []linState {
	want := in.Seats
	var replaced []int
	for i, r := range s.Res {
		if r.Client == in.Client && r.Status == "held" && r.Seats&want != 0 {
			replaced = append(replaced, i)
		}
	}
	expires, holdStart, freed := s.Now+linHoldTTLSeconds*1000, s.Now, 0
	if len(replaced) > 0 {
		first := s.Res[replaced[0]]
		soonest := first.ExpiresAt
		holdStart = first.HoldStart
		for _, i := range replaced {
			holdStart, soonest = min(holdStart, s.Res[i].HoldStart), min(soonest, s.Res[i].ExpiresAt)
			freed += bits.OnesCount8(s.Res[i].Seats)
		}
		// A re-hold lasts holdTtl from now, but never past the first
		// hold's start + maxHoldSeconds (API.md, C06).
		expires = min(s.Now+linHoldTTLSeconds*1000, holdStart+linMaxHoldSeconds*1000)
		if capMs := holdStart + linMaxHoldSeconds*1000; capMs < soonest {
			expires = min(s.Now+linHoldTTLSeconds*1000, soonest)
		}
		if len(replaced) == 1 && first.Seats == want && expires <= first.ExpiresAt {
			// The cap is reached: the reservation as it is.
			if out.Unknown {
				return []linState{s}
			}
			if out.Status != 201 || out.ResStatus != "held" || out.Seats != want || out.ExpiresAt != first.ExpiresAt {
				return nil
			}
			if out.ID == first.ID {
				return []linState{s}
			}
			if placeholder(first.ID) && !s.exists(out.ID) {
				n := s.clone()
				n.Res[replaced[0]].ID = out.ID
				return []linState{n}
			}
			return nil
		}
	}
	if s.customerSeats(in.Client)-freed+bits.OnesCount8(want) > linMaxPerCustomer {
		return s.refused(out, 422, "limit_exceeded")
	}
	var taken uint8
	for b := uint8(1); b != 0 && b < 1<<linSeats; b <<= 1 {
		if want&b == 0 {
			continue
		}
		if h := s.holderOf(b); h >= 0 && !slices.Contains(replaced, h) {
			taken |= b
		}
	}
	if taken != 0 {
		if !out.Unknown && out.Status == 409 && out.Code == "seat_unavailable" && out.Seats != taken {
			return nil
		}
		return s.refused(out, 409, "seat_unavailable")
	}
	id := fmt.Sprintf("?%d", in.Op)
	if !out.Unknown {
		if out.Status != 201 || out.ResStatus != "held" || out.Seats != want || out.ExpiresAt != expires || s.exists(out.ID) {
			return nil
		}
		id = out.ID
	}
	n := s.clone()
	for _, i := range replaced {
		n.Res[i].Status, n.Res[i].Reason = "released", "cancelled"
	}
	n.Res = append(n.Res, linRes{ID: id, Client: in.Client, Seats: want, Status: "held", ExpiresAt: expires, HoldStart: holdStart})
	return []linState{n}
}

func (s linState) cancel(in linInput, out linOutput) []linState {
	i := s.owned(in.Client, in.ID)
	if i < 0 {
		return s.refused(out, 404, "reservation_not_found")
	}
	switch s.Res[i].Status {
	case "booked":
		return s.refused(out, 409, "already_booked")
	case "paying":
		return s.refused(out, 409, "payment_in_progress")
	case "released":
		if out.Unknown || out.Status == 204 {
			return []linState{s}
		}
		return nil
	}
	if !out.Unknown && out.Status != 204 {
		return nil
	}
	n := s.clone()
	n.Res[i].Status, n.Res[i].Reason = "released", "cancelled"
	return []linState{n}
}

func (s linState) pay(in linInput, out linOutput) []linState {
	i := s.owned(in.Client, in.ID)
	if i < 0 {
		return s.refused(out, 404, "reservation_not_found")
	}
	r := s.Res[i]
	switch r.Status {
	case "booked":
		if out.Unknown || (out.Status == 200 && out.ResStatus == "booked" && out.ID == r.ID) {
			return []linState{s}
		}
		return nil
	case "paying":
		return s.refused(out, 409, "payment_in_progress")
	case "released":
		if r.Reason == "expired" && (!r.Declined || out.Code != "reservation_released") {
			return s.refused(out, 410, "reservation_expired")
		}
		return s.refused(out, 409, "reservation_released")
	}
	switch {
	case out.Unknown,
		out.Status == 202 && out.ResStatus == "paying" && out.ID == r.ID,
		out.Status == 200 && out.ResStatus == "booked" && out.ID == r.ID && in.Token == tokVisa,
		out.Status == 402 && out.Code == "payment_declined" && in.Token == tokDeclined:
		n := s.clone()
		n.Res[i].Status, n.Res[i].Token, n.Res[i].PayOp = "paying", in.Token, in.Op
		return []linState{n}
	}
	return nil
}

// paySettle is the end of a payment whose answer (200 booked, 402
// declined) the client heard: by then it has settled.
func (s linState) paySettle(in linInput, out linOutput) []linState {
	i := s.owned(in.Client, in.ID)
	if i < 0 {
		return nil
	}
	n := s.clone()
	if r := n.Res[i]; r.Status == "paying" && r.PayOp == in.Op {
		n.settle(i)
	}
	r := n.Res[i]
	switch {
	case out.Status == 200 && r.Status == "booked",
		out.Status == 402 && r.Declined && (r.Status == "held" || r.Status == "released"):
		return []linState{n}
	}
	return nil
}

func (s linState) read(in linInput, out linOutput) []linState {
	if out.Unknown {
		return []linState{s}
	}
	if i := s.owned(in.Client, in.ID); i >= 0 {
		if s.Res[i].matches(out) {
			return []linState{s}
		}
		return nil
	}
	if out.Status == 404 && out.Code == "reservation_not_found" {
		return []linState{s}
	}
	// A reservation the client never heard of: made by one of its holds
	// whose answer was lost. Any such hold of the same seats may be it.
	var next []linState
	for i, r := range s.Res {
		if r.Client == in.Client && placeholder(r.ID) && r.Seats == out.Seats && !s.exists(in.ID) {
			n := s.clone()
			n.Res[i].ID = in.ID
			if n.Res[i].matches(out) {
				next = append(next, n)
			}
		}
	}
	return next
}

// matches reports whether a read's answer shows r.
func (r linRes) matches(out linOutput) bool {
	if out.Status != 200 || out.ID != r.ID || out.Seats != r.Seats || out.ResStatus != r.Status {
		return false
	}
	switch r.Status {
	case "held":
		return out.ExpiresAt == r.ExpiresAt
	case "released":
		return out.Reason == r.Reason || (r.Declined && r.Reason == "expired" && out.Reason == "payment_failed")
	}
	return true
}

func linModel(start int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{linState{Now: start}.seal()} },
		Step: linStep,
		Equal: func(a, b any) bool {
			return a.(linState).key == b.(linState).key
		},
		Hash: func(s any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(s.(linState).key))
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			var call string
			switch in.Kind {
			case linHold:
				call = fmt.Sprintf("hold(c%d, %s)", in.Client, seatNames(in.Seats))
			case linCancel:
				call = fmt.Sprintf("cancel(c%d, %s)", in.Client, in.ID)
			case linPay:
				call = fmt.Sprintf("pay(c%d, %s, %s)", in.Client, in.ID, in.Token)
			case linPaySettle:
				call = fmt.Sprintf("pay settles(c%d, %s, %s)", in.Client, in.ID, in.Token)
			case linRead:
				call = fmt.Sprintf("read(c%d, %s)", in.Client, in.ID)
			case linClock:
				return fmt.Sprintf("clock → %d", in.At)
			}
			switch {
			case out.Unknown:
				return call + " → ?"
			case out.Code != "":
				return fmt.Sprintf("%s → %d %s %s", call, out.Status, out.Code, seatNames(out.Seats))
			}
			return fmt.Sprintf("%s → %d %s %s %s %s e%d", call, out.Status, out.ID, out.ResStatus, out.Reason, seatNames(out.Seats), out.ExpiresAt)
		},
		DescribeState: func(state any) string { return state.(linState).key },
	}
	return nm.ToModel()
}

// seatNames lists the seats of a mask ("A1,A3").
func seatNames(mask uint8) string {
	var names []string
	for i := range linSeats {
		if mask&(1<<i) != 0 {
			names = append(names, fmt.Sprintf("A%d", i+1))
		}
	}
	return strings.Join(names, ",")
}

// TestLinearizabilityModel: the model accepts the histories the contract
// allows and rejects each kind of fault the check exists for. Times are
// logical; T is the clock at the start, in Unix ms.
func TestLinearizabilityModel(t *testing.T) {
	const T = int64(1_800_000_000_000)
	ttl := int64(linHoldTTLSeconds * 1000)
	hold := func(c int, op int, seats uint8) linInput {
		return linInput{Kind: linHold, Client: c, Op: op, Seats: seats}
	}
	held := func(id string, seats uint8, expires int64) linOutput {
		return linOutput{Status: 201, ID: id, ResStatus: "held", Seats: seats, ExpiresAt: expires}
	}
	read := func(c int, id string) linInput { return linInput{Kind: linRead, Client: c, ID: id} }
	view := func(id, status, reason string, seats uint8, expires int64) linOutput {
		return linOutput{Status: 200, ID: id, ResStatus: status, Reason: reason, Seats: seats, ExpiresAt: expires}
	}
	clock := func(at int64) linInput { return linInput{Kind: linClock, At: at} }
	taken := func(seats uint8) linOutput { return linOutput{Status: 409, Code: "seat_unavailable", Seats: seats} }
	unknown := linOutput{Unknown: true}
	op := func(call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: in.Client, Input: in, Call: call, Output: out, Return: ret}
	}
	const A1, A2 = 1, 2
	inf := int64(math.MaxInt64)
	cases := []struct {
		name    string
		legal   bool
		history []porcupine.Operation
	}{
		{"one winner", true, []porcupine.Operation{
			op(1, 4, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(2, 3, hold(1, 2, A1), taken(A1)),
		}},
		{"double sale", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, hold(1, 2, A1|A2), held("r2", A1|A2, T+ttl)),
		}},
		{"refusal names a seat that is free", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, hold(1, 2, A1|A2), taken(A1|A2)),
		}},
		{"an acknowledged hold is lost", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, read(0, "r1"), linOutput{Status: 404, Code: "reservation_not_found"}),
		}},
		{"an expired hold still blocks its seat", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, clock(T+ttl), linOutput{}),
			op(5, 6, hold(1, 2, A1), taken(A1)),
		}},
		{"an expired hold reads as held", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, clock(T+ttl), linOutput{}),
			op(5, 6, read(0, "r1"), view("r1", "held", "", A1, T+ttl)),
		}},
		{"expiry while the clock moves: either side", true, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 6, clock(T+ttl), linOutput{}),
			op(4, 5, hold(1, 2, A1), held("r2", A1, T+2*ttl)),
		}},
		{"a hold whose answer was lost took the seat", true, []porcupine.Operation{
			op(1, inf, hold(0, 1, A1), unknown),
			op(2, 3, hold(1, 2, A1), taken(A1)),
			op(4, 5, read(0, "rX"), view("rX", "held", "", A1, T+ttl)),
		}},
		{"a hold whose answer was lost, and a second winner", false, []porcupine.Operation{
			op(1, inf, hold(0, 1, A1), unknown),
			op(2, 3, hold(1, 2, A1), held("r2", A1, T+ttl)),
			op(4, 5, read(0, "rX"), view("rX", "held", "", A1, T+ttl)),
		}},
		{"a declined payment keeps the seat until it settles, past the hold's expiry", true, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 10, linInput{Kind: linPay, Client: 0, Op: 2, ID: "r1", Token: tokDeclined}, linOutput{Status: 402, Code: "payment_declined"}),
			op(3, 10, linInput{Kind: linPaySettle, Client: 0, Op: 2, ID: "r1", Token: tokDeclined}, linOutput{Status: 402, Code: "payment_declined"}),
			op(4, 5, clock(T+ttl+10_000), linOutput{}),
			op(6, 7, hold(1, 3, A1), taken(A1)),
			op(11, 12, read(0, "r1"), view("r1", "released", "payment_failed", A1, T+ttl)),
			op(13, 14, hold(1, 4, A1), held("r4", A1, T+2*ttl+10_000)),
		}},
		{"a declined payment keeps the seat after it answered", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, linInput{Kind: linPay, Client: 0, Op: 2, ID: "r1", Token: tokDeclined}, linOutput{Status: 402, Code: "payment_declined"}),
			op(3, 4, linInput{Kind: linPaySettle, Client: 0, Op: 2, ID: "r1", Token: tokDeclined}, linOutput{Status: 402, Code: "payment_declined"}),
			op(5, 6, clock(T+ttl), linOutput{}),
			op(7, 8, hold(1, 3, A1), taken(A1)),
		}},
		{"a payment across a restart books later", true, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, inf, linInput{Kind: linPay, Client: 0, Op: 2, ID: "r1", Token: tokVisa}, unknown),
			op(4, 5, read(0, "r1"), view("r1", "paying", "", A1, T+3600_000)),
			op(6, 7, clock(T+2*ttl), linOutput{}),
			op(8, 9, hold(1, 3, A1), taken(A1)),
			op(10, 11, read(0, "r1"), view("r1", "booked", "", A1, 0)),
		}},
		{"re-holds replace, capped at maxHoldSeconds, then return the reservation as it is", true, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, clock(T+50_000), linOutput{}),
			op(5, 6, hold(0, 2, A1), held("r2", A1, T+50_000+ttl)),
			op(7, 8, clock(T+100_000), linOutput{}),
			op(9, 10, hold(0, 3, A1), held("r3", A1, T+100_000+ttl)),
			op(11, 12, clock(T+150_000), linOutput{}),
			op(13, 14, hold(0, 4, A1|A2), held("r4", A1|A2, T+linMaxHoldSeconds*1000)),
			op(15, 16, clock(T+170_000), linOutput{}),
			op(17, 18, hold(0, 5, A1|A2), held("r4", A1|A2, T+linMaxHoldSeconds*1000)),
			op(19, 20, read(0, "r2"), view("r2", "released", "cancelled", A1, 0)),
		}},
		{"a re-hold past the cap gets a longer expiry", false, []porcupine.Operation{
			op(1, 2, hold(0, 1, A1), held("r1", A1, T+ttl)),
			op(3, 4, clock(T+50_000), linOutput{}),
			op(5, 6, hold(0, 2, A1), held("r2", A1, T+50_000+ttl)),
			op(7, 8, clock(T+100_000), linOutput{}),
			op(9, 10, hold(0, 3, A1), held("r3", A1, T+100_000+ttl)),
			op(11, 12, clock(T+150_000), linOutput{}),
			op(13, 14, hold(0, 4, A1|A2), held("r4", A1|A2, T+150_000+ttl)),
		}},
	}
	model := linModel(T)
	for _, c := range cases {
		if got := porcupine.CheckOperations(model, c.history); got != c.legal {
			t.Errorf("%s: linearizable = %t, want %t", c.name, got, c.legal)
		}
	}
}

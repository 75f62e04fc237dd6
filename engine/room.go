package engine

import (
	"container/heap"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Room is the waiting room of one event as a pure, deterministic state
// machine (DESIGN.md, Waiting room), built like Event: commands take the
// current time from the caller, decide, apply their own records and return
// them; Apply replays a record; MarshalSnapshot is byte-exact. A Room is not
// safe for concurrent use: its owner (the waiting-room actor) serialises
// every call, journals the records each command returns (persist, then
// reply), and answers from the state they explain.
//
// The queue. Visitors Join with a ticket id the caller chooses (one place
// per customer: joining again returns the same ticket). Until the draw they
// are in the pre-queue (status pre_queue, no position). The draw (Draw,
// due at onSaleAt, with a seed the caller draws from crypto/rand) shuffles
// the visitors who joined before onSaleAt with that seed, which is
// journaled, so anyone holding the journal can recompute the order; the
// visitors who joined at or after onSaleAt queue behind them in arrival
// order, and so does everyone who joins later. From then on a visitor's
// position (its 1-based rank among the waiting) never increases: visitors
// only leave the queue ahead of it or are admitted, and newcomers queue
// behind.
//
// Polling. Poll suggests when to poll again (PollAfterSeconds, growing with
// the distance to the front). A visitor who misses RoomMissedPollsMax
// suggested polls in a row (no poll for RoomMissedPollsMax × its last
// suggestion + RoomPollSlackSeconds) is abandoned by the next Tick, which
// journals it. Poll times are kept in memory only — a poll never writes to
// the journal — so a restarted room does not know them: Resume (or the
// first command after NewRoom or RestoreRoom) gives every waiting visitor a
// fresh grace, and the downtime never counts against anyone.
//
// Admission. Every Tick admits the next waiting visitors, in queue order,
// as far as all of these allow: the rate (a token bucket of AdmitPerSecond,
// holding at most one second's worth, at least one visitor), MaxActive
// (admitted and not done), the inventory (admitted and not done × average
// seats per buyer ≤ 2 × seats available, or as many as the seats
// available if that is more), and none at all while the event
// is sold out (then every waiting visitor reads sold_out). An admission is
// claimed (Claim) by the first successful hold made with its token; one not
// claimed within ClaimSeconds lapses at the next Tick, which frees its
// place for the next visitor; a claimed one ends when the buyer is Done or
// when the token expires (AdmissionTTLSeconds).
//
// The wait estimate is the position divided by the measured admission rate
// (an integer moving average over 5-second windows, capped by
// AdmitPerSecond; windows in which the queue ran empty do not count).
// Since a position never increases, the estimate of a waiting visitor never
// grows between two polls unless the rate fell, and then by at most the
// factor it fell by — without remembering what it told anyone. An operator
// moving onSaleAt later adds that delay to it, in plain sight.
//
// What the caller (the waiting-room actor) does:
//
//  1. Creates the room (CreateRoom) when the event gets a waiting room, or
//     rebuilds it after a restart (NewRoom or RestoreRoom, then Apply for
//     every later record) and calls Resume at once, before it answers
//     anything: reads (Poll, Admission) do not resume by themselves.
//  2. Journals every record a command returns — also when the command
//     returns an error — and replies only once they are durable.
//  3. At onSaleAt (DrawDue) draws 32 bytes from crypto/rand and calls Draw.
//  4. Calls Tick on a steady period (250 ms to 1 s) with the event's
//     inventory, and at once when the event sells out or seats come back.
//  5. Calls Claim when the first hold made with a customer's admission
//     token is durable, and Done when the customer's booking is (or when
//     the buyer says they are finished).
//
// The admission token (signed by the web layer) carries the ticket's
// AdmissionExpiresAt and SeatBudget; Admission tells the reservation path
// whether a customer's admission is in force right now.
type Room struct {
	eventID string
	cfg     RoomConfig
	cfgRate int64 // cfg.AdmitPerSecond in milli-visitors per second
	seq     uint64
	// resumed is false for a room rebuilt by NewRoom or RestoreRoom until
	// its first command journals RoomRecordResumed.
	resumed bool

	vs        roomVisitors      // by visitor number (join order)
	tickets   map[string]uint32 // ticket id → visitor number
	customers map[string]uint32 // customer id → their latest visitor number

	drawn     bool
	drawnAt   int64
	seed      [32]byte
	drawCount uint32
	pre       int // visitors in the pre-queue

	slots   []uint32    // the queue order: slot → visitor number
	gone    roomFenwick // per slot: 1 once its visitor no longer waits
	head    int         // every slot before head is gone
	waiting int         // visitors waiting (placed, not admitted, not gone)

	adms   []admission
	due    []uint32 // heap of active admissions (indexes into adms) by deadline, then visitor
	active int      // admissions admitted or claimed, not ended

	soldOut     bool
	creditMilli int64 // admission credit (milli-visitors) as of creditAt
	creditAt    int64
	meter       roomMeter
	doneBuyers  int64 // Done buyers
	doneSeats   int64 // seats they booked

	// Poll bookkeeping, in memory only: a timing wheel of one-second
	// buckets by abandonment deadline, each a list linked through
	// visitor.prev/next. Every deadline is within roomGraceMilliMax of
	// the poll that set it, so roomWheelSize buckets never alias a due
	// visitor with a later one that is not checked.
	wheel    [roomWheelSize]uint32 // 1 + the first visitor of each bucket
	wheelSec int64                 // buckets up to this Unix second are processed
}

// RoomConfig is how a waiting room meters an event's sale: the event's
// onSaleAt and maxSeatsPerCustomer, and the waitingRoom object of POST and
// PATCH /v1/admin/events (API.md, Operators). Zero optional fields take
// their defaults when CreateRoom or Update validates the config; records
// and snapshots hold the resolved values.
type RoomConfig struct {
	// OnSaleAt is the event's on-sale moment: visitors who join before it
	// wait in the pre-queue and are drawn at it; admissions start at it.
	// Required, 1970–9999; kept to whole milliseconds, UTC. It may move
	// after the draw: admissions then wait for it, positions stay.
	OnSaleAt time.Time
	// AdmitPerSecond is the admission rate in visitors per second,
	// 0.001–RoomAdmitPerSecondMax, kept to thousandths.
	AdmitPerSecond float64
	// MaxActive caps the admitted visitors still shopping (admitted and
	// not done); 0 means no cap beyond the rate and the inventory, else
	// 1–RoomMaxActiveMax. Lowering it below the current count admits no
	// one until enough are done.
	MaxActive int
	// ClaimSeconds: an admission not claimed by a successful hold within
	// it lapses; 0 means RoomClaimSecondsDefault, else
	// 1–RoomClaimSecondsMax.
	ClaimSeconds int
	// AdmissionTTLSeconds is the admission (and its token's) lifetime from
	// admission; 0 means RoomAdmissionTTLSecondsDefault or ClaimSeconds,
	// whichever is longer, else ClaimSeconds–RoomAdmissionTTLSecondsMax.
	AdmissionTTLSeconds int
	// MaxSeatsPerCustomer is the event's limit, 1–MaxSeatsPerCustomerMax:
	// the seat budget of each admission, and the prior (half of it,
	// rounded up) for the average seats per buyer.
	MaxSeatsPerCustomer int
}

// Bounds and defaults of a waiting room.
const (
	// RoomTicketsMax bounds the tickets one room issues over its life
	// (every join, including the ended ones it keeps readable).
	RoomTicketsMax                 = 5_000_000
	RoomAdmitPerSecondMax          = 100_000
	RoomMaxActiveMax               = 1_000_000
	RoomClaimSecondsDefault        = 120
	RoomClaimSecondsMax            = 60 * 60
	RoomAdmissionTTLSecondsDefault = 15 * 60
	RoomAdmissionTTLSecondsMax     = 24 * 60 * 60
	// RoomPollAfterSecondsMin and RoomPollAfterSecondsMax bound the
	// suggested poll interval: ETA ÷ 4, clamped.
	RoomPollAfterSecondsMin = 2
	RoomPollAfterSecondsMax = 60
	// RoomMissedPollsMax suggested polls missed in a row abandon a place;
	// RoomPollSlackSeconds more are allowed for the network.
	RoomMissedPollsMax   = 3
	RoomPollSlackSeconds = 5
	// RoomETASecondsMax caps the wait estimate (also what an unknown wait,
	// with nobody admitted lately, reads as).
	RoomETASecondsMax = 24 * 60 * 60

	roomTicketIDBytesMax = 128
	roomOnSaleMilliMax   = 253402300799999 // 9999-12-31T23:59:59.999Z
	roomRateWindowMilli  = 5000            // the meter's window
	roomDecayWindowsMax  = 64              // empty windows after which the measured rate is 0
	roomSeatsPriorWeight = 10              // the prior average counts as this many buyers
	roomAvgSeatsMilliMin = 250             // the average seats per buyer never reads below a quarter seat
	roomGapMilliMax      = 60 * 60 * 1000  // credit accrues over at most this gap (it is capped far sooner)
	roomGraceMilliMax    = (RoomMissedPollsMax*RoomPollAfterSecondsMax + RoomPollSlackSeconds) * 1000
	roomWheelSize        = 256 // one-second buckets; more than roomGraceMilliMax covers
	roomPollJitter       = 16  // pre-queue polls spread over this many seconds after the draw
)

// RoomInventory is what the event actor tells Tick about the event's seats.
type RoomInventory struct {
	// Available is the number of seats available now (Counts.Available).
	Available int
	// SoldOut is true when no seat is available and none can come back
	// (Counts.Available and Counts.Reserved both 0), or sales have ended:
	// then nobody is admitted and every waiting visitor reads sold_out.
	// It may turn false again (a refund, an unblock): admissions resume.
	SoldOut bool
}

// TicketStatus is what a visitor's ticket reads (API.md, Waiting room).
type TicketStatus string

// Ticket statuses.
const (
	TicketPreQueue TicketStatus = "pre_queue" // joined before the draw: no position yet
	TicketWaiting  TicketStatus = "waiting"   // in the queue, with a position
	TicketAdmitted TicketStatus = "admitted"  // may reserve with its admission token until AdmissionExpiresAt (unclaimed: until ClaimBy)
	TicketSoldOut  TicketStatus = "sold_out"  // the event is sold out; the place is kept should seats come back
	TicketExpired  TicketStatus = "expired"   // the place or admission ended (Reason says why); join again for a new place
	TicketLeft     TicketStatus = "left"      // the visitor deleted the ticket
)

// TicketView is the read model of a ticket (API.md, POST and GET
// /v1/events/{eventId}/queue): what Join, Poll, Claim and Admission return.
type TicketView struct {
	Ticket     string
	CustomerID string
	Status     TicketStatus
	// Reason is why an ended ticket ended (status expired: abandoned,
	// lapsed, expired or done; status left: left), else RoomReasonNone.
	Reason RoomReason
	// Position is the 1-based rank among waiting visitors; 0 unless the
	// status is waiting (API.md: null).
	Position int
	// ETASeconds estimates the wait until admission: for waiting
	// visitors position ÷ AdmitPerSecond (plus any time left before
	// onSaleAt), for the pre-queue the time left before onSaleAt plus the
	// wait at the middle of the pre-queue; 0 otherwise. At most
	// RoomETASecondsMax.
	ETASeconds int
	// PollAfterSeconds is how long to wait before polling again: for
	// the pre-queue the time left before onSaleAt (spread over 16 s), for
	// waiting visitors ETASeconds ÷ 4, both within
	// RoomPollAfterSecondsMin–RoomPollAfterSecondsMax; 60 s when sold out;
	// 0 when there is nothing left to wait for (admitted, expired, left).
	PollAfterSeconds int
	// AdmitPerSecond is the admission rate the estimate assumes (visitors
	// per second): the measured rate capped by the configured one.
	AdmitPerSecond float64
	JoinedAt       time.Time
	// The admission, once admitted (zero before): when, the claim
	// deadline, the expiry and seat budget its token carries, and whether
	// a hold claimed it.
	AdmittedAt         time.Time
	ClaimBy            time.Time
	AdmissionExpiresAt time.Time
	SeatBudget         int
	Claimed            bool
}

// RoomStats are a room's counts, for metrics and operators.
type RoomStats struct {
	Seq            uint64
	Drawn          bool
	SoldOut        bool
	Tickets        int     // tickets issued (every join)
	PreQueue       int     // visitors in the pre-queue
	Waiting        int     // visitors waiting with a position
	Active         int     // admissions not ended (admitted or claimed)
	AdmitPerSecond float64 // the rate wait estimates assume now (visitors per second)
	// SeatsPerBuyer is the average seats per admission the inventory
	// limit assumes: booked seats of Done buyers, with the prior.
	SeatsPerBuyer float64
}

// RoomDraw is the journaled draw, for audits: when, with which seed, and
// how many pre-queue visitors it shuffled.
type RoomDraw struct {
	At    time.Time
	Seed  [32]byte
	Count int
}

type visitorStatus uint8

// Visitor statuses; numeric values appear in snapshots: never renumber.
const (
	vPre       visitorStatus = 0 // in the pre-queue
	vWaiting   visitorStatus = 1 // placed in the queue
	vAdmitted  visitorStatus = 2 // admitted, not claimed
	vClaimed   visitorStatus = 3 // admitted and claimed by a hold
	vLeft      visitorStatus = 4
	vAbandoned visitorStatus = 5
	vDone      visitorStatus = 6
	vLapsed    visitorStatus = 7
	vExpired   visitorStatus = 8
	vStatusMax               = vExpired
)

func (s visitorStatus) queued() bool { return s == vPre || s == vWaiting }
func (s visitorStatus) active() bool { return s == vAdmitted || s == vClaimed }
func (s visitorStatus) live() bool   { return s <= vClaimed }

type visitor struct {
	ticket   string
	customer string
	joinedAt int64
	slot     uint32 // 1 + its place in the queue order; 0 if never placed
	adm      uint32 // 1 + its admission's index in Room.adms; 0 if never admitted
	status   visitorStatus
	// Poll bookkeeping, in memory only.
	inWheel    bool
	deadline   int64  // abandonment deadline (Unix ms) while inWheel
	prev, next uint32 // 1 + the neighbours in its wheel bucket
}

// roomVisitors stores visitors in chunks of roomChunkVisitors, so that a
// join never copies the whole population (a doubling slice would copy
// ~90 MB at a million visitors, stalling the actor for tens of
// milliseconds).
type roomVisitors struct {
	chunks [][]visitor
	n      int
}

const roomChunkBits = 12

// roomChunkVisitors is the visitors of one chunk.
const roomChunkVisitors = 1 << roomChunkBits

func (s *roomVisitors) len() int { return s.n }

func (s *roomVisitors) at(v uint32) *visitor {
	return &s.chunks[v>>roomChunkBits][v&(roomChunkVisitors-1)]
}

func (s *roomVisitors) push(x visitor) {
	if s.n&(roomChunkVisitors-1) == 0 && s.n>>roomChunkBits == len(s.chunks) {
		// The first chunk grows like a slice (small rooms stay small);
		// the others are allocated whole.
		c := 0
		if len(s.chunks) > 0 {
			c = roomChunkVisitors
		}
		s.chunks = append(s.chunks, make([]visitor, 0, c))
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = append(*last, x)
	s.n++
}

type admission struct {
	visitor   uint32
	at        int64
	claimBy   int64
	expiresAt int64
	budget    uint32
	claimed   bool
	heapIdx   int // index in Room.due while active, else -1
}

// resolved returns c validated, with defaults filled in, OnSaleAt in whole
// milliseconds UTC and AdmitPerSecond in thousandths. Errors:
// invalid_request naming the field.
func (c RoomConfig) resolved() (RoomConfig, error) {
	bad := func(format string, args ...any) (RoomConfig, error) {
		return RoomConfig{}, Errorf(CodeInvalidRequest, format, args...)
	}
	ms := c.OnSaleAt.UnixMilli()
	switch {
	case c.OnSaleAt.IsZero():
		return bad("onSaleAt is required")
	case ms < 0 || ms > roomOnSaleMilliMax:
		return bad("onSaleAt must be between 1970 and 9999")
	case math.IsNaN(c.AdmitPerSecond) || c.AdmitPerSecond < 0.001 || c.AdmitPerSecond > RoomAdmitPerSecondMax:
		return bad("waitingRoom.admitPerSecond must be 0.001–%d", RoomAdmitPerSecondMax)
	case c.MaxActive < 0 || c.MaxActive > RoomMaxActiveMax:
		return bad("waitingRoom.maxActive must be 1–%d, or absent for no cap", RoomMaxActiveMax)
	case c.ClaimSeconds < 0 || c.ClaimSeconds > RoomClaimSecondsMax:
		return bad("waitingRoom.claimSeconds must be 1–%d", RoomClaimSecondsMax)
	case c.MaxSeatsPerCustomer < 1 || c.MaxSeatsPerCustomer > MaxSeatsPerCustomerMax:
		return bad("maxSeatsPerCustomer must be 1–%d", MaxSeatsPerCustomerMax)
	}
	if c.ClaimSeconds == 0 {
		c.ClaimSeconds = RoomClaimSecondsDefault
	}
	if c.AdmissionTTLSeconds == 0 {
		c.AdmissionTTLSeconds = max(RoomAdmissionTTLSecondsDefault, c.ClaimSeconds)
	}
	if c.AdmissionTTLSeconds < c.ClaimSeconds || c.AdmissionTTLSeconds > RoomAdmissionTTLSecondsMax {
		return bad("waitingRoom.admissionTtlSeconds must be from claimSeconds (%d) to %d", c.ClaimSeconds, RoomAdmissionTTLSecondsMax)
	}
	c.OnSaleAt = time.UnixMilli(ms).UTC()
	c.AdmitPerSecond = math.Round(c.AdmitPerSecond*1000) / 1000
	return c, nil
}

// same reports whether two configs are equal (the same instant for
// OnSaleAt, whatever its location).
func (c RoomConfig) same(o RoomConfig) bool {
	return c.OnSaleAt.Equal(o.OnSaleAt) && c.AdmitPerSecond == o.AdmitPerSecond && c.MaxActive == o.MaxActive &&
		c.ClaimSeconds == o.ClaimSeconds && c.AdmissionTTLSeconds == o.AdmissionTTLSeconds &&
		c.MaxSeatsPerCustomer == o.MaxSeatsPerCustomer
}

// canonicalRoomConfig returns c resolved if c is exactly what resolved
// writes (a journaled config), else an error message.
func canonicalRoomConfig(c RoomConfig) (RoomConfig, string) {
	r, err := c.resolved()
	if err != nil {
		return c, err.Error()
	}
	if !r.same(c) || math.Float64bits(r.AdmitPerSecond) != math.Float64bits(c.AdmitPerSecond) {
		return c, "config is not in resolved form"
	}
	return r, ""
}

// CreateRoom validates cfg and returns the new waiting room of event
// eventID with its RoomRecordCreated record (Seq 1), which holds the
// resolved config. Errors: invalid_request naming the field (an event id
// that ValidEventID refuses, a config out of RoomConfig's ranges).
func CreateRoom(eventID string, cfg RoomConfig, now time.Time) (*Room, []RoomRecord, error) {
	if !ValidEventID(eventID) {
		return nil, nil, Errorf(CodeInvalidRequest, "event id is invalid")
	}
	c, err := cfg.resolved()
	if err != nil {
		return nil, nil, err
	}
	rec := RoomRecord{Seq: 1, Type: RoomRecordCreated, AtUnixMilli: now.UnixMilli(), EventID: strings.Clone(eventID), Config: c}
	r := newRoom(rec.EventID, c)
	r.resumed = true
	return r, []RoomRecord{rec}, nil
}

// NewRoom rebuilds a room from its RoomRecordCreated record (the first of
// its journal), at Seq 1; the rest of the journal is then replayed with
// Apply. The rebuilt room journals RoomRecordResumed with its first command
// (see Resume). Errors: corrupt_record when created is not a valid
// RoomRecordCreated at Seq 1.
func NewRoom(created RoomRecord) (*Room, error) {
	if created.Type != RoomRecordCreated || created.Seq != 1 {
		return nil, Errorf(CodeCorruptRecord, "first room record is %s at seq %d, want RoomCreated at seq 1", created.Type, created.Seq)
	}
	if !ValidEventID(created.EventID) {
		return nil, Errorf(CodeCorruptRecord, "room record 1: event id %q is invalid", created.EventID)
	}
	c, msg := canonicalRoomConfig(created.Config)
	if msg != "" {
		return nil, Errorf(CodeCorruptRecord, "room record 1: %s", msg)
	}
	return newRoom(created.EventID, c), nil
}

func newRoom(eventID string, c RoomConfig) *Room {
	r := &Room{eventID: eventID, seq: 1, tickets: make(map[string]uint32), customers: make(map[string]uint32)}
	r.setConfig(c)
	return r
}

func (r *Room) setConfig(c RoomConfig) {
	r.cfg = c
	r.cfgRate = int64(math.Round(c.AdmitPerSecond * 1000))
}

// EventID is the id of the event the room meters.
func (r *Room) EventID() string { return r.eventID }

// Seq is the sequence number of the last record applied.
func (r *Room) Seq() uint64 { return r.seq }

// Config is the room's config in effect (resolved).
func (r *Room) Config() RoomConfig { return r.cfg }

// Drawn returns the draw, once it happened.
func (r *Room) Drawn() (RoomDraw, bool) {
	if !r.drawn {
		return RoomDraw{}, false
	}
	return RoomDraw{At: roomTime(r.drawnAt), Seed: r.seed, Count: int(r.drawCount)}, true
}

// DrawDue reports whether the draw is due: now is at or after onSaleAt and
// the room has not drawn yet. The caller then draws a seed and calls Draw.
func (r *Room) DrawDue(now time.Time) bool {
	return !r.drawn && now.UnixMilli() >= r.cfg.OnSaleAt.UnixMilli()
}

// Stats returns the room's counts at now.
func (r *Room) Stats(now time.Time) RoomStats {
	return RoomStats{
		Seq: r.seq, Drawn: r.drawn, SoldOut: r.soldOut, Tickets: r.vs.len(),
		PreQueue: r.pre, Waiting: r.waiting, Active: r.active,
		AdmitPerSecond: float64(r.etaRate(now.UnixMilli())) / 1000,
		SeatsPerBuyer:  float64(r.seatsPerBuyerMilli()) / 1000,
	}
}

// emit gives rec the next sequence number, applies it and appends it to
// out. The room's own decisions must always apply: failure is a
// programming error, so it panics.
func (r *Room) emit(out []RoomRecord, rec RoomRecord) []RoomRecord {
	rec.Seq = r.seq + 1
	if err := r.Apply(rec); err != nil {
		panic(fmt.Sprintf("engine: own room record does not apply: %v", err))
	}
	return append(out, rec)
}

// Resume tells a room rebuilt by NewRoom or RestoreRoom (and Apply) that it
// runs again at now, after a stop of unknown length. It journals one
// RoomRecordResumed, which gives every unclaimed admission a fresh claim
// window (its claim deadline becomes at least now + ClaimSeconds, never
// past its expiry) and keeps the downtime out of the measured admission
// rate; and it gives every queued visitor a fresh poll grace (the longest:
// RoomMissedPollsMax × RoomPollAfterSecondsMax + RoomPollSlackSeconds), so
// the downtime never counts as missed polls. Call it right after
// recovery, before serving reads: Poll and Admission read a room that has
// not resumed as the journal left it (claim deadlines not yet renewed).
// Every command of a rebuilt room resumes it first anyway. On a running
// room (CreateRoom, or resumed) it does nothing and returns nil.
func (r *Room) Resume(now time.Time) []RoomRecord {
	return r.resume(nil, now.UnixMilli())
}

func (r *Room) resume(out []RoomRecord, now int64) []RoomRecord {
	if r.resumed {
		return out
	}
	r.resumed = true
	out = r.emit(out, RoomRecord{Type: RoomRecordResumed, AtUnixMilli: now})
	grace := roomAddMilli(now, roomGraceMilliMax)
	for i := range uint32(r.vs.len()) {
		if r.vs.at(i).status.queued() {
			r.wheelPut(i, grace)
		}
	}
	r.wheelSec = roomFloorDiv(now, 1000)
	return out
}

// Join gives customerID a place in the queue under ticketID (chosen by the
// caller, unique in the room, 1–128 bytes of [A-Za-z0-9._-]) and returns
// the ticket as read at now. A customer who already has a live ticket
// (pre-queue, waiting, sold out, admitted) gets that ticket back and no new
// place: the call counts as a poll and ticketID is not used. A customer
// whose earlier ticket ended (left, abandoned, lapsed, expired, done) gets
// a new place at the back.
//
// The records, when there are any, are a RoomRecordResumed (a rebuilt
// room's first command), the end of the customer's admission if it ran out
// at now (RoomRecordAdmissionEnded), and a RoomRecordJoined when a new
// place was taken; they must be journaled whatever the error. Errors:
// invalid_request (a customer id empty or over 256 bytes, an invalid
// ticket id, a ticket id already issued), queue_full (RoomTicketsMax
// tickets issued).
func (r *Room) Join(now time.Time, customerID, ticketID string) ([]RoomRecord, TicketView, error) {
	switch {
	case !validRoomCustomer(customerID):
		return nil, TicketView{}, Errorf(CodeInvalidRequest, "customer id is invalid")
	case !validID(ticketID, roomTicketIDBytesMax):
		return nil, TicketView{}, Errorf(CodeInvalidRequest, "ticket id is invalid")
	}
	nowMs := now.UnixMilli()
	out := r.resume(nil, nowMs)
	if v, ok := r.customers[customerID]; ok {
		out = r.settle(out, v, nowMs)
		if r.vs.at(v).status.live() {
			return out, r.poll(v, nowMs), nil
		}
	}
	if _, dup := r.tickets[ticketID]; dup {
		return out, TicketView{}, Errorf(CodeInvalidRequest, "ticket id %q is already issued", ticketID)
	}
	if r.vs.len() >= RoomTicketsMax {
		return out, TicketView{}, Errorf(CodeQueueFull, "the waiting room has issued its %d tickets", RoomTicketsMax)
	}
	out = r.emit(out, RoomRecord{Type: RoomRecordJoined, AtUnixMilli: nowMs,
		Ticket: strings.Clone(ticketID), CustomerID: strings.Clone(customerID)})
	return out, r.poll(uint32(r.vs.len()-1), nowMs), nil
}

func validRoomCustomer(id string) bool { return id != "" && len(id) <= customerIDBytesMax }

// Poll reads ticket at now and counts as the visitor's poll: the next one
// is due within the PollAfterSeconds it returns (RoomMissedPollsMax of them
// missed abandon the place). It journals nothing: poll times live in
// memory only. Errors: ticket_not_found.
func (r *Room) Poll(now time.Time, ticket string) (TicketView, error) {
	v, ok := r.tickets[ticket]
	if !ok {
		return TicketView{}, Errorf(CodeTicketNotFound, "no ticket %q in the waiting room of %s", ticket, r.eventID)
	}
	return r.poll(v, now.UnixMilli()), nil
}

// poll reads visitor v and records the poll.
func (r *Room) poll(v uint32, now int64) TicketView {
	tv := r.look(v, now)
	if r.vs.at(v).status.queued() {
		r.wheelPut(v, roomAddMilli(now, roomGraceMilli(tv.PollAfterSeconds)))
	}
	return tv
}

// Admission returns customerID's ticket if it holds an admission that is
// valid at now: admitted and either claimed before its expiry or unclaimed
// before its claim deadline. It is what the reservation path checks before
// a hold with an admission token (the token's signature and expiry are the
// web layer's). It journals nothing. Errors: admission_required, with the
// ticket as read at now when the customer has one (its Status and Reason
// say why: not admitted yet, or expired).
func (r *Room) Admission(now time.Time, customerID string) (TicketView, error) {
	v, ok := r.customers[customerID]
	if !ok {
		return TicketView{}, Errorf(CodeAdmissionRequired, "customer %q is not in the waiting room of %s", customerID, r.eventID)
	}
	tv := r.look(v, now.UnixMilli())
	if tv.Status != TicketAdmitted {
		return tv, admissionError(tv)
	}
	return tv, nil
}

func admissionError(tv TicketView) error {
	switch tv.Status {
	case TicketExpired:
		return Errorf(CodeAdmissionRequired, "the admission of ticket %q expired (%s)", tv.Ticket, tv.Reason)
	case TicketLeft:
		return Errorf(CodeAdmissionRequired, "ticket %q left the waiting room", tv.Ticket)
	}
	return Errorf(CodeAdmissionRequired, "ticket %q is not admitted yet (%s)", tv.Ticket, tv.Status)
}

// Claim records that customerID's admission was claimed by its first
// successful hold (the caller calls it once that hold is durable). Claiming
// again is a no-op; an unclaimed admission then lives until its expiry
// instead of its claim deadline. Records: as for Join (resume, the end of
// an admission that ran out at now), then RoomRecordClaimed. Errors:
// admission_required when the customer holds no admission valid at now
// (never admitted, lapsed, expired, done, left), with the ticket as read
// at now when there is one.
func (r *Room) Claim(now time.Time, customerID string) ([]RoomRecord, TicketView, error) {
	nowMs := now.UnixMilli()
	v, ok := r.customers[customerID]
	if !ok {
		return nil, TicketView{}, Errorf(CodeAdmissionRequired, "customer %q is not in the waiting room of %s", customerID, r.eventID)
	}
	out := r.resume(nil, nowMs)
	out = r.settle(out, v, nowMs)
	switch r.vs.at(v).status {
	case vAdmitted:
		out = r.emit(out, RoomRecord{Type: RoomRecordClaimed, AtUnixMilli: nowMs, Visitors: []uint32{v}})
	case vClaimed:
	default:
		tv := r.look(v, nowMs)
		return out, tv, admissionError(tv)
	}
	tv := r.look(v, nowMs)
	return out, tv, nil
}

// Done ends customerID's admission because the buyer finished — booked
// (seatsBooked: how many seats, 0–MaxSeatsPerCustomerMax) or gave up — so
// that its place among the MaxActive shoppers goes to the next visitor,
// and feeds seatsBooked into the average seats per buyer. A customer
// without an admission in force is a no-op (no records, no error), so the
// event actor may call it for every booking. The ticket then reads expired
// with reason done; the customer may join again. Records: as for Join, then
// RoomRecordAdmissionEnded (done). Errors: invalid_request for seatsBooked
// out of range.
func (r *Room) Done(now time.Time, customerID string, seatsBooked int) ([]RoomRecord, error) {
	if seatsBooked < 0 || seatsBooked > MaxSeatsPerCustomerMax {
		return nil, Errorf(CodeInvalidRequest, "seats booked must be 0–%d", MaxSeatsPerCustomerMax)
	}
	nowMs := now.UnixMilli()
	v, ok := r.customers[customerID]
	if !ok {
		return nil, nil
	}
	out := r.resume(nil, nowMs)
	out = r.settle(out, v, nowMs)
	if !r.vs.at(v).status.active() {
		return out, nil
	}
	return r.emit(out, RoomRecord{Type: RoomRecordAdmissionEnded, AtUnixMilli: nowMs, Visitors: []uint32{v},
		Reason: RoomReasonDone, Count: uint32(seatsBooked)}), nil
}

// Leave takes ticket out of the room (DELETE of the ticket): a queued
// visitor leaves the queue, an admitted one gives back the admission. A
// ticket that already ended is a no-op. Records: as for Join, then
// RoomRecordLeft (left). Errors: ticket_not_found.
func (r *Room) Leave(now time.Time, ticket string) ([]RoomRecord, error) {
	v, ok := r.tickets[ticket]
	if !ok {
		return nil, Errorf(CodeTicketNotFound, "no ticket %q in the waiting room of %s", ticket, r.eventID)
	}
	nowMs := now.UnixMilli()
	out := r.resume(nil, nowMs)
	out = r.settle(out, v, nowMs)
	if !r.vs.at(v).status.live() {
		return out, nil
	}
	return r.emit(out, RoomRecord{Type: RoomRecordLeft, AtUnixMilli: nowMs, Visitors: []uint32{v}, Reason: RoomReasonLeft}), nil
}

// Update replaces the config (an operator's PATCH, or the event's onSaleAt
// or maxSeatsPerCustomer changing) and journals it as one
// RoomRecordConfigUpdated; a config that changes nothing journals nothing.
// The new rate applies from now (credit earned before stays); new claim
// and admission lifetimes and seat budget apply to later admissions.
// Errors: invalid_request naming the field.
func (r *Room) Update(now time.Time, cfg RoomConfig) ([]RoomRecord, error) {
	c, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	out := r.resume(nil, nowMs)
	if c.same(r.cfg) {
		return out, nil
	}
	return r.emit(out, RoomRecord{Type: RoomRecordConfigUpdated, AtUnixMilli: nowMs, Config: c}), nil
}

// Draw shuffles the pre-queue with seed and journals it (RoomRecordDrawn,
// with the seed): the caller draws the seed from crypto/rand at onSaleAt
// (DrawDue), so nobody can know the order before, and anyone with the
// journal can recompute it after. Drawing again is a no-op.
//
// The order, exactly (the audit's contract): let P be the visitors still
// in the pre-queue who joined before onSaleAt, in join order, and n its
// length. Seed a math/rand/v2 ChaCha8 with the 32-byte seed (the
// chacha8rand stream, C2SP). For i from n−1 down to 1, let m = i+1: draw
// x = Uint64() and take the high and low words hi, lo of the 128-bit
// product x·m; while lo < (2⁶⁴ − m) mod m draw again (Lemire's unbiased
// bounded draw); swap P[i] and P[hi]. The queue is then P, followed by the
// visitors still in the pre-queue who joined at or after onSaleAt, in join
// order.
//
// Records: as for Join, then RoomRecordDrawn. Errors: sales_not_open
// before onSaleAt.
func (r *Room) Draw(now time.Time, seed [32]byte) ([]RoomRecord, error) {
	nowMs := now.UnixMilli()
	onSale := r.cfg.OnSaleAt.UnixMilli()
	if nowMs < onSale {
		return nil, Errorf(CodeSalesNotOpen, "the draw is at onSaleAt (%s)", r.cfg.OnSaleAt.Format(time.RFC3339))
	}
	out := r.resume(nil, nowMs)
	if r.drawn {
		return out, nil
	}
	early, _ := r.preQueue(onSale)
	return r.emit(out, RoomRecord{Type: RoomRecordDrawn, AtUnixMilli: nowMs, Seed: seed, Count: uint32(len(early))}), nil
}

// preQueue returns the visitors in the pre-queue who joined before onSale
// and the others, each in join order.
func (r *Room) preQueue(onSale int64) (early, late []uint32) {
	for i := range uint32(r.vs.len()) {
		if x := r.vs.at(i); x.status == vPre {
			if x.joinedAt < onSale {
				early = append(early, uint32(i))
			} else {
				late = append(late, uint32(i))
			}
		}
	}
	return early, late
}

// roomShuffle is the draw's Fisher–Yates shuffle (see Draw).
func roomShuffle(vs []uint32, seed [32]byte) {
	src := rand.NewChaCha8(seed)
	for i := len(vs) - 1; i > 0; i-- {
		m := uint64(i + 1)
		hi, lo := bits.Mul64(src.Uint64(), m)
		if lo < m {
			thresh := -m % m
			for lo < thresh {
				hi, lo = bits.Mul64(src.Uint64(), m)
			}
		}
		vs[i], vs[hi] = vs[hi], vs[i]
	}
}

// Tick does what time makes due, and admits. In order: it resumes a
// rebuilt room; ends every admission whose claim deadline (unclaimed:
// RoomReasonLapsed) or expiry (claimed: RoomReasonExpired) is at or before
// now; abandons every queued visitor whose poll grace ran out
// (RoomRecordLeft, RoomReasonAbandoned); journals a change of inv.SoldOut
// (RoomRecordSoldOut); then, once drawn, at or after onSaleAt and not sold
// out, admits the next waiting visitors in queue order (RoomRecordAdmitted,
// claim deadline now + ClaimSeconds, expiry now + AdmissionTTLSeconds,
// budget MaxSeatsPerCustomer), as many as the rate's credit, MaxActive and
// the inventory (admitted and not done × seats per buyer ≤ 2 ×
// inv.Available, or up to inv.Available if that is more) all allow. The caller ticks on a steady period (say every
// 250 ms to 1 s) and whenever the event's inventory changes much (its
// sold-out state above all). Each record lists at most
// RoomRecordVisitorsMax visitors; nil when nothing was due.
func (r *Room) Tick(now time.Time, inv RoomInventory) []RoomRecord {
	nowMs := now.UnixMilli()
	out := r.resume(nil, nowMs)
	out = r.endDue(out, nowMs)
	out = r.abandonDue(out, nowMs)
	if inv.SoldOut != r.soldOut {
		out = r.emit(out, RoomRecord{Type: RoomRecordSoldOut, AtUnixMilli: nowMs, SoldOut: inv.SoldOut})
	}
	return r.admit(out, nowMs, inv)
}

// settle ends visitor v's admission if it ran out at now.
func (r *Room) settle(out []RoomRecord, v uint32, now int64) []RoomRecord {
	x := r.vs.at(v)
	if !x.status.active() {
		return out
	}
	a := &r.adms[x.adm-1]
	reason := RoomReasonNone
	switch {
	case x.status == vAdmitted && a.claimBy <= now:
		reason = RoomReasonLapsed
	case a.expiresAt <= now:
		reason = RoomReasonExpired
	default:
		return out
	}
	return r.emit(out, RoomRecord{Type: RoomRecordAdmissionEnded, AtUnixMilli: now, Visitors: []uint32{v}, Reason: reason})
}

// endDue ends every admission whose deadline is at or before now.
func (r *Room) endDue(out []RoomRecord, now int64) []RoomRecord {
	if len(r.due) == 0 || r.deadlineOf(&r.adms[r.due[0]]) > now {
		return out
	}
	var lapsed, expired []uint32
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(r.due) {
			continue
		}
		a := &r.adms[r.due[i]]
		if r.deadlineOf(a) > now {
			continue // and so is every admission below it in the heap
		}
		if r.vs.at(a.visitor).status == vAdmitted {
			lapsed = append(lapsed, a.visitor)
		} else {
			expired = append(expired, a.visitor)
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	out = r.emitVisitors(out, now, RoomRecordAdmissionEnded, RoomReasonLapsed, lapsed)
	return r.emitVisitors(out, now, RoomRecordAdmissionEnded, RoomReasonExpired, expired)
}

// abandonDue abandons every queued visitor whose poll grace ran out by now.
func (r *Room) abandonDue(out []RoomRecord, now int64) []RoomRecord {
	nowSec := roomFloorDiv(now, 1000)
	from := r.wheelSec + 1
	if from < nowSec-roomWheelSize+1 {
		from = nowSec - roomWheelSize + 1 // each bucket once
	}
	var gone []uint32
	for s := from; s <= nowSec; s++ {
		for x := r.wheel[uint8(s)]; x != 0; x = r.vs.at(x - 1).next {
			if r.vs.at(x-1).deadline <= now {
				gone = append(gone, x-1)
			}
		}
	}
	r.wheelSec = max(r.wheelSec, nowSec)
	return r.emitVisitors(out, now, RoomRecordLeft, RoomReasonAbandoned, gone)
}

// emitVisitors journals vs (sorted) in records of at most
// RoomRecordVisitorsMax visitors.
func (r *Room) emitVisitors(out []RoomRecord, now int64, typ RoomRecordType, reason RoomReason, vs []uint32) []RoomRecord {
	slices.Sort(vs)
	for len(vs) > 0 {
		n := min(len(vs), RoomRecordVisitorsMax)
		out = r.emit(out, RoomRecord{Type: typ, AtUnixMilli: now, Visitors: slices.Clone(vs[:n]), Reason: reason})
		vs = vs[n:]
	}
	return out
}

// admit admits the next waiting visitors, as many as every limit allows.
func (r *Room) admit(out []RoomRecord, now int64, inv RoomInventory) []RoomRecord {
	if !r.drawn || r.soldOut || r.waiting == 0 || now < r.cfg.OnSaleAt.UnixMilli() {
		return out
	}
	k := min(int64(r.waiting), r.credit(now)/1000, r.inventoryActiveMax(inv.Available)-int64(r.active))
	if r.cfg.MaxActive > 0 {
		k = min(k, int64(r.cfg.MaxActive-r.active))
	}
	claimBy := roomAddMilli(now, int64(r.cfg.ClaimSeconds)*1000)
	expiresAt := roomAddMilli(now, int64(r.cfg.AdmissionTTLSeconds)*1000)
	for k > 0 {
		n := min(k, RoomRecordVisitorsMax)
		vs := make([]uint32, 0, n)
		for j := r.head; int64(len(vs)) < n; j++ {
			if v := r.slots[j]; r.vs.at(v).status == vWaiting {
				vs = append(vs, v)
			}
		}
		out = r.emit(out, RoomRecord{Type: RoomRecordAdmitted, AtUnixMilli: now, Visitors: vs,
			ClaimByUnixMilli: claimBy, ExpiresAtUnixMilli: expiresAt, SeatBudget: uint32(r.cfg.MaxSeatsPerCustomer)})
		k -= n
	}
	return out
}

// credit is the admission credit at `at`, in milli-visitors: the bucket
// fills at the configured rate up to one second's worth (at least one
// visitor).
func (r *Room) credit(at int64) int64 {
	ceiling := max(1000, r.cfgRate)
	c := r.creditMilli
	if c >= ceiling {
		return ceiling
	}
	gap := at - r.creditAt
	if at < r.creditAt || gap < 0 {
		return c
	}
	gap = min(gap, roomGapMilliMax)
	return min(ceiling, c+r.cfgRate*gap/1000)
}

// seatsPerBuyerMilli is the average seats per admission (milli-seats): the
// seats Done buyers booked, with the prior (half the per-customer maximum,
// rounded up) counting as roomSeatsPriorWeight buyers.
func (r *Room) seatsPerBuyerMilli() int64 {
	prior := int64(max(1, (r.cfg.MaxSeatsPerCustomer+1)/2)) * 1000
	avg := (r.doneSeats*1000 + prior*roomSeatsPriorWeight) / (r.doneBuyers + roomSeatsPriorWeight)
	return max(avg, roomAvgSeatsMilliMin)
}

// inventoryActiveMax is how many admissions may be active with available
// seats left: active × seats per buyer ≤ 2 × available, but never fewer
// than the seats available — each buyer takes at least one seat, so that
// many never admits a buyer for whom no seat can be left, and the last seats
// of a sale whose buyers average more than two seats still sell, several
// buyers at a time (one by one, each waiting for the previous to claim or
// lapse, the tail of a sale took minutes).
func (r *Room) inventoryActiveMax(available int) int64 {
	a := min(max(int64(available), 0), 1<<40)
	return max(a, 2*a*1000/r.seatsPerBuyerMilli())
}

// etaRate is the admission rate wait estimates assume at now, in
// milli-visitors per second: the measured rate capped by the configured
// one (the configured one before the draw).
func (r *Room) etaRate(now int64) uint32 {
	rate := r.cfgRate
	if r.drawn {
		m := r.meter
		m.roll(now, r.waiting)
		rate = min(rate, m.rateMilli)
	}
	return uint32(min(max(rate, 0), math.MaxUint32))
}

// roomETA is the wait, in seconds, for n admissions at rate milli-visitors
// per second, at most RoomETASecondsMax.
func roomETA(n int64, rate uint32) int64 {
	if n <= 0 {
		return 0
	}
	if rate == 0 {
		return RoomETASecondsMax
	}
	return min(roomCeilDiv(n*1000, int64(rate)), RoomETASecondsMax)
}

// look reads visitor v at now, without counting as a poll.
func (r *Room) look(v uint32, now int64) TicketView {
	x := r.vs.at(v)
	tv := TicketView{Ticket: x.ticket, CustomerID: x.customer, JoinedAt: roomTime(x.joinedAt)}
	var a *admission
	if x.adm != 0 {
		a = &r.adms[x.adm-1]
		tv.AdmittedAt, tv.ClaimBy, tv.AdmissionExpiresAt = roomTime(a.at), roomTime(a.claimBy), roomTime(a.expiresAt)
		tv.SeatBudget, tv.Claimed = int(a.budget), a.claimed
	}
	rate := r.etaRate(now)
	tv.AdmitPerSecond = float64(rate) / 1000
	untilSec := roomCeilDiv(max(roomSubMilli(r.cfg.OnSaleAt.UnixMilli(), now), 0), 1000)
	ended := func(reason RoomReason) {
		tv.Status, tv.Reason = TicketExpired, reason
	}
	switch x.status {
	case vPre, vWaiting:
		if r.soldOut {
			tv.Status, tv.PollAfterSeconds = TicketSoldOut, RoomPollAfterSecondsMax
			break
		}
		if x.status == vPre {
			tv.Status = TicketPreQueue
			tv.ETASeconds = int(min(untilSec+roomETA(int64(r.pre+1)/2, rate), RoomETASecondsMax))
			tv.PollAfterSeconds = roomClampPoll(untilSec + int64(v%roomPollJitter))
			break
		}
		// The estimate needs no memory of what it said before: the
		// position never increases, so position ÷ rate grows only when
		// the rate falls, and then by at most the factor it fell by
		// (rounding up both times keeps that). A later onSaleAt, the one
		// other cause, adds its delay in plain sight.
		tv.Status = TicketWaiting
		tv.Position = r.position(v)
		eta := min(untilSec+roomETA(int64(tv.Position), rate), RoomETASecondsMax)
		tv.ETASeconds = int(eta)
		tv.PollAfterSeconds = roomClampPoll(eta / 4)
	case vAdmitted:
		if now >= a.claimBy {
			ended(RoomReasonLapsed)
		} else {
			tv.Status = TicketAdmitted
		}
	case vClaimed:
		if now >= a.expiresAt {
			ended(RoomReasonExpired)
		} else {
			tv.Status = TicketAdmitted
		}
	case vDone:
		ended(RoomReasonDone)
	case vLapsed:
		ended(RoomReasonLapsed)
	case vExpired:
		ended(RoomReasonExpired)
	case vAbandoned:
		ended(RoomReasonAbandoned)
	case vLeft:
		tv.Status, tv.Reason = TicketLeft, RoomReasonLeft
	}
	return tv
}

func roomClampPoll(s int64) int {
	return int(min(max(s, RoomPollAfterSecondsMin), RoomPollAfterSecondsMax))
}

// roomGraceMilli is how long a visitor told to poll again after
// pollAfterSeconds may stay silent before it is abandoned.
func roomGraceMilli(pollAfterSeconds int) int64 {
	return int64(RoomMissedPollsMax*pollAfterSeconds+RoomPollSlackSeconds) * 1000
}

// position is waiting visitor v's 1-based rank among the waiting: the
// slots up to its own, less those whose visitors no longer wait.
func (r *Room) position(v uint32) int {
	q := int(r.vs.at(v).slot) - 1
	return q + 1 - int(r.gone.prefix(q))
}

// Apply replays rec, a record of this room's journal, through the same
// transitions the commands use. It checks that the record fits the state —
// the sequence is contiguous, the visitors exist and are in the status the
// record needs, an admission names exactly the next waiting visitors in
// queue order, a draw is at or after onSaleAt and counts the pre-queue
// right — and returns an *Error with code corrupt_record otherwise, having
// changed nothing. It never panics.
func (r *Room) Apply(rec RoomRecord) error {
	if rec.Seq != r.seq+1 {
		return Errorf(CodeCorruptRecord, "room record %d (%s) after %d: sequence gap", rec.Seq, rec.Type, r.seq)
	}
	bad := func(format string, args ...any) error {
		return Errorf(CodeCorruptRecord, "room record %d (%s): %s", rec.Seq, rec.Type, fmt.Sprintf(format, args...))
	}
	at := rec.AtUnixMilli
	if msg := r.checkVisitors(rec); msg != "" {
		return bad("%s", msg)
	}
	switch rec.Type {
	case RoomRecordConfigUpdated:
		c, msg := canonicalRoomConfig(rec.Config)
		if msg != "" {
			return bad("%s", msg)
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		if r.drawn {
			r.creditMilli, r.creditAt = r.credit(at), max(r.creditAt, at)
		}
		r.setConfig(c)
	case RoomRecordJoined:
		switch {
		case !validID(rec.Ticket, roomTicketIDBytesMax) || !validRoomCustomer(rec.CustomerID):
			return bad("ticket or customer id is invalid")
		case r.vs.len() >= RoomTicketsMax:
			return bad("more than %d tickets", RoomTicketsMax)
		}
		if _, dup := r.tickets[rec.Ticket]; dup {
			return bad("ticket %q is already issued", rec.Ticket)
		}
		if p, ok := r.customers[rec.CustomerID]; ok && r.vs.at(p).status.live() {
			return bad("customer %q already has live ticket %q", rec.CustomerID, r.vs.at(p).ticket)
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		r.applyJoined(rec)
	case RoomRecordDrawn:
		onSale := r.cfg.OnSaleAt.UnixMilli()
		if r.drawn || at < onSale {
			return bad("drawn already, or before onSaleAt")
		}
		early, late := r.preQueue(onSale)
		if uint64(rec.Count) != uint64(len(early)) {
			return bad("count %d, but %d visitors are in the pre-queue", rec.Count, len(early))
		}
		r.applyDrawn(rec, early, late)
	case RoomRecordAdmitted:
		switch {
		case !r.drawn:
			return bad("admission before the draw")
		case rec.SeatBudget < 1 || rec.SeatBudget > MaxSeatsPerCustomerMax:
			return bad("seat budget %d out of range", rec.SeatBudget)
		case rec.ClaimByUnixMilli < at || rec.ExpiresAtUnixMilli < rec.ClaimByUnixMilli:
			return bad("claim deadline or expiry out of order")
		}
		j := r.head
		for _, v := range rec.Visitors {
			for j < len(r.slots) && r.vs.at(r.slots[j]).status != vWaiting {
				j++
			}
			if j == len(r.slots) || r.slots[j] != v {
				return bad("visitor %d is not the next waiting in queue order", v)
			}
			j++
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		r.applyAdmitted(rec)
	case RoomRecordClaimed:
		if len(rec.Visitors) != 1 || r.vs.at(rec.Visitors[0]).status != vAdmitted {
			return bad("not one admitted, unclaimed visitor")
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		v := rec.Visitors[0]
		r.vs.at(v).status = vClaimed
		a := &r.adms[r.vs.at(v).adm-1]
		a.claimed = true
		heap.Fix(roomDue{r}, a.heapIdx)
	case RoomRecordLeft:
		for _, v := range rec.Visitors {
			st := r.vs.at(v).status
			if rec.Reason == RoomReasonAbandoned && !st.queued() || rec.Reason == RoomReasonLeft && !st.live() ||
				rec.Reason != RoomReasonAbandoned && rec.Reason != RoomReasonLeft {
				return bad("visitor %d cannot leave (%s) from status %d", v, rec.Reason, st)
			}
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		for _, v := range rec.Visitors {
			r.depart(v, rec.Reason)
		}
		r.advanceHead()
	case RoomRecordAdmissionEnded:
		switch {
		case rec.Reason == RoomReasonDone && (len(rec.Visitors) != 1 || rec.Count > MaxSeatsPerCustomerMax):
			return bad("done names one visitor and at most %d seats", MaxSeatsPerCustomerMax)
		case rec.Reason != RoomReasonDone && rec.Count != 0:
			return bad("seats booked outside done")
		}
		for _, v := range rec.Visitors {
			x := r.vs.at(v)
			if !x.status.active() {
				return bad("visitor %d holds no admission in force", v)
			}
			a := &r.adms[x.adm-1]
			switch rec.Reason {
			case RoomReasonDone:
			case RoomReasonLapsed:
				if x.status != vAdmitted || at < a.claimBy {
					return bad("visitor %d: claimed, or lapsed before its claim deadline", v)
				}
			case RoomReasonExpired:
				if at < a.expiresAt {
					return bad("visitor %d: expired before its expiry", v)
				}
			default:
				return bad("reason %d is not an end of admission", rec.Reason)
			}
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		for _, v := range rec.Visitors {
			r.endAdmission(v, rec.Reason, rec.Count)
		}
	case RoomRecordSoldOut:
		if rec.SoldOut == r.soldOut {
			return bad("sold-out state unchanged")
		}
		r.meter.rollIf(r.drawn, at, r.waiting)
		r.soldOut = rec.SoldOut
	case RoomRecordResumed:
		r.applyResumed(at)
	default:
		return bad("unexpected record type")
	}
	if r.drawn && r.waiting == 0 {
		r.meter.drained = true
	}
	r.seq = rec.Seq
	return nil
}

// checkVisitors checks that a record names visitors exactly when its type
// does, each one existing and at most once.
func (r *Room) checkVisitors(rec RoomRecord) string {
	switch rec.Type {
	case RoomRecordAdmitted, RoomRecordClaimed, RoomRecordLeft, RoomRecordAdmissionEnded:
	default:
		if len(rec.Visitors) != 0 {
			return "visitors on a record that names none"
		}
		return ""
	}
	if len(rec.Visitors) == 0 || len(rec.Visitors) > RoomRecordVisitorsMax {
		return "visitor count out of range"
	}
	for _, v := range rec.Visitors {
		if uint64(v) >= uint64(r.vs.len()) {
			return fmt.Sprintf("no visitor %d", v)
		}
	}
	if len(rec.Visitors) > 1 {
		s := slices.Clone(rec.Visitors)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(rec.Visitors) {
			return "a visitor is named twice"
		}
	}
	return ""
}

func (r *Room) applyJoined(rec RoomRecord) {
	v := uint32(r.vs.len())
	r.vs.push(visitor{ticket: rec.Ticket, customer: rec.CustomerID, joinedAt: rec.AtUnixMilli, status: vPre})
	r.tickets[rec.Ticket] = v
	r.customers[rec.CustomerID] = v
	if r.drawn {
		r.place(v)
	} else {
		r.pre++
	}
	r.wheelPut(v, roomAddMilli(rec.AtUnixMilli, roomGraceMilliMax))
}

func (r *Room) applyDrawn(rec RoomRecord, early, late []uint32) {
	roomShuffle(early, rec.Seed)
	r.slots = slices.Grow(r.slots, len(early)+len(late))
	for _, v := range early {
		r.place(v)
	}
	for _, v := range late {
		r.place(v)
	}
	r.pre = 0
	r.drawn, r.drawnAt, r.seed, r.drawCount = true, rec.AtUnixMilli, rec.Seed, rec.Count
	r.creditMilli, r.creditAt = max(1000, r.cfgRate), rec.AtUnixMilli // a full bucket
	r.meter = roomMeter{rateMilli: r.cfgRate, winStart: rec.AtUnixMilli}
}

// place appends visitor v to the queue order.
func (r *Room) place(v uint32) {
	r.slots = append(r.slots, v)
	r.gone.push(0)
	r.vs.at(v).slot = uint32(len(r.slots))
	r.vs.at(v).status = vWaiting
	r.waiting++
}

func (r *Room) applyAdmitted(rec RoomRecord) {
	at := rec.AtUnixMilli
	r.creditMilli = r.credit(at) - int64(len(rec.Visitors))*1000
	r.creditAt = max(r.creditAt, at)
	for _, v := range rec.Visitors {
		x := r.vs.at(v)
		x.status = vAdmitted
		r.waiting--
		r.gone.add(int(x.slot)-1, 1)
		r.wheelDel(v)
		r.adms = append(r.adms, admission{visitor: v, at: at, claimBy: rec.ClaimByUnixMilli,
			expiresAt: rec.ExpiresAtUnixMilli, budget: rec.SeatBudget, heapIdx: -1})
		x.adm = uint32(len(r.adms))
		heap.Push(roomDue{r}, uint32(len(r.adms)-1))
		r.active++
	}
	r.meter.winCount += int64(len(rec.Visitors))
	r.advanceHead()
}

// depart takes visitor v out of the room (left or abandoned).
func (r *Room) depart(v uint32, reason RoomReason) {
	x := r.vs.at(v)
	switch x.status {
	case vPre:
		r.pre--
	case vWaiting:
		r.waiting--
		r.gone.add(int(x.slot)-1, 1)
	case vAdmitted, vClaimed:
		r.active--
		heap.Remove(roomDue{r}, r.adms[x.adm-1].heapIdx)
	}
	x.status = vLeft
	if reason == RoomReasonAbandoned {
		x.status = vAbandoned
	}
	r.wheelDel(v)
}

func (r *Room) endAdmission(v uint32, reason RoomReason, seats uint32) {
	x := r.vs.at(v)
	r.active--
	heap.Remove(roomDue{r}, r.adms[x.adm-1].heapIdx)
	switch reason {
	case RoomReasonDone:
		x.status = vDone
		r.doneBuyers++
		r.doneSeats += int64(seats)
	case RoomReasonLapsed:
		x.status = vLapsed
	default:
		x.status = vExpired
	}
}

func (r *Room) applyResumed(at int64) {
	if r.drawn && at > r.meter.winStart {
		r.meter.winStart = at // the downtime is no empty window
	}
	claim := int64(r.cfg.ClaimSeconds) * 1000
	for _, ai := range r.due {
		if a := &r.adms[ai]; !a.claimed {
			a.claimBy = min(a.expiresAt, max(a.claimBy, roomAddMilli(at, claim)))
		}
	}
	heap.Init(roomDue{r})
}

// advanceHead moves head past the slots whose visitors no longer wait.
func (r *Room) advanceHead() {
	for r.head < len(r.slots) && r.vs.at(r.slots[r.head]).status != vWaiting {
		r.head++
	}
}

func (r *Room) deadlineOf(a *admission) int64 {
	if a.claimed {
		return a.expiresAt
	}
	return a.claimBy
}

// roomDue is the heap of active admissions, earliest deadline first, then
// lowest visitor number (so that ties pop in one order everywhere).
type roomDue struct{ r *Room }

func (h roomDue) Len() int { return len(h.r.due) }
func (h roomDue) Less(i, j int) bool {
	a, b := &h.r.adms[h.r.due[i]], &h.r.adms[h.r.due[j]]
	da, db := h.r.deadlineOf(a), h.r.deadlineOf(b)
	return da < db || da == db && a.visitor < b.visitor
}
func (h roomDue) Swap(i, j int) {
	d := h.r.due
	d[i], d[j] = d[j], d[i]
	h.r.adms[d[i]].heapIdx = i
	h.r.adms[d[j]].heapIdx = j
}
func (h roomDue) Push(x any) {
	ai := x.(uint32)
	h.r.adms[ai].heapIdx = len(h.r.due)
	h.r.due = append(h.r.due, ai)
}
func (h roomDue) Pop() any {
	d := h.r.due
	ai := d[len(d)-1]
	h.r.adms[ai].heapIdx = -1
	h.r.due = d[:len(d)-1]
	return ai
}

// roomMeter measures the admission rate: an exponentially weighted moving
// average (weight ¼) over 5-second windows, in integers so that a replay on
// any machine computes the same value. A window in which the queue ran
// empty does not count (nobody was there to admit, so it says nothing of
// the rate); windows without admissions while visitors waited count as 0.
type roomMeter struct {
	rateMilli int64 // milli-visitors per second
	winStart  int64 // Unix ms: the start of the current window
	winCount  int64 // admissions in the current window
	drained   bool  // nobody waited at some moment of the current window
}

func (m *roomMeter) rollIf(drawn bool, at int64, waiting int) {
	if drawn {
		m.roll(at, waiting)
	}
}

// roll closes the windows that ended by at; waiting is the number of
// visitors who waited since the last record.
func (m *roomMeter) roll(at int64, waiting int) {
	if at < m.winStart {
		return
	}
	d := at - m.winStart
	if d < 0 { // overflow: an absurd gap
		d = math.MaxInt64
	}
	if d < roomRateWindowMilli {
		return
	}
	n := d / roomRateWindowMilli
	if !m.drained {
		sample := m.winCount * (1_000_000 / roomRateWindowMilli)
		m.rateMilli += (sample - m.rateMilli) / 4
	}
	if waiting > 0 {
		for i := int64(1); i < n && m.rateMilli > 0; i++ {
			m.rateMilli -= m.rateMilli / 4
			if m.rateMilli < 4 || i >= roomDecayWindowsMax {
				m.rateMilli = 0
			}
		}
	}
	m.winStart = at - d%roomRateWindowMilli
	m.winCount = 0
	m.drained = waiting == 0
}

// roomFenwick is a Fenwick (binary indexed) tree of int32 over slots that
// grows by appending.
type roomFenwick struct{ t []int32 } // t[0] unused; element i lives at t[i+1]

// push appends an element of value v.
func (f *roomFenwick) push(v int32) {
	if len(f.t) == 0 {
		f.t = append(f.t, 0)
	}
	i := len(f.t)
	s := v
	for j := i - 1; j > i-(i&-i); j -= j & -j {
		s += f.t[j]
	}
	f.t = append(f.t, s)
}

// add adds d to element i.
func (f *roomFenwick) add(i int, d int32) {
	for j := i + 1; j < len(f.t); j += j & -j {
		f.t[j] += d
	}
}

// prefix is the sum of elements 0..i.
func (f *roomFenwick) prefix(i int) int32 {
	s := int32(0)
	for j := i + 1; j > 0; j -= j & -j {
		s += f.t[j]
	}
	return s
}

// The poll wheel.

func (r *Room) wheelPut(v uint32, deadline int64) {
	r.wheelDel(v)
	x := r.vs.at(v)
	b := uint8(roomCeilDiv(deadline, 1000))
	x.deadline, x.inWheel, x.prev, x.next = deadline, true, 0, r.wheel[b]
	if x.next != 0 {
		r.vs.at(x.next - 1).prev = v + 1
	}
	r.wheel[b] = v + 1
}

func (r *Room) wheelDel(v uint32) {
	x := r.vs.at(v)
	if !x.inWheel {
		return
	}
	if x.prev != 0 {
		r.vs.at(x.prev - 1).next = x.next
	} else {
		r.wheel[uint8(roomCeilDiv(x.deadline, 1000))] = x.next
	}
	if x.next != 0 {
		r.vs.at(x.next - 1).prev = x.prev
	}
	x.prev, x.next, x.inWheel = 0, 0, false
}

// Arithmetic on Unix milliseconds that saturates instead of wrapping
// (journaled times are whatever the journal says).

func roomAddMilli(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

func roomSubMilli(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return roomAddMilli(a, -b)
}

func roomCeilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

func roomFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func roomTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

package engine

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestPropertyRoom drives a waiting room with random joins, polls, leaves,
// ticks (with a changing inventory), claims, dones, config changes, the
// draw and crash-restarts, and checks after every step what the room
// promises, from the outside (its views and records):
//
//   - positions of waiting visitors are exactly 1..n, in queue order, and a
//     visitor's position never increases (restarts included);
//   - one live ticket per customer: joining again returns it;
//   - admissions follow the queue order and every limit: the rate (over any
//     span, at most one second's credit plus rate × span), MaxActive, the
//     inventory (active × seats per buyer ≤ 2 × available), none before the
//     draw, before onSaleAt or while sold out;
//   - while sold out every queued visitor reads sold_out;
//   - a visitor is abandoned only once its grace (RoomMissedPollsMax ×
//     its last suggested interval + slack, or the fresh grace of a
//     restart) ran out, and no later than the next tick after that;
//   - an unclaimed admission is ended at the first tick after its claim
//     deadline;
//   - the wait estimate of a visitor does not grow between two polls
//     unless the rate fell, and then by at most the factor it fell by;
//   - replaying the journal, or restoring a snapshot and replaying the
//     rest, gives the live room's snapshot byte for byte.
func TestPropertyRoom(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		claim := rapid.IntRange(3, 40).Draw(rt, "claimSeconds")
		cfg := RoomConfig{
			OnSaleAt:            roomT0,
			AdmitPerSecond:      rapid.SampledFrom([]float64{0.5, 1, 2.5, 10}).Draw(rt, "rate"),
			MaxActive:           rapid.IntRange(0, 5).Draw(rt, "maxActive"),
			ClaimSeconds:        claim,
			AdmissionTTLSeconds: rapid.IntRange(claim, 120).Draw(rt, "ttlSeconds"),
			MaxSeatsPerCustomer: rapid.IntRange(1, 6).Draw(rt, "maxSeats"),
		}
		m := &roomModel{
			rt: rt, h: newRoomHarness(rt, cfg), cfg: cfg,
			nowMs:    roomT0.UnixMilli() - int64(rapid.IntRange(0, 20_000).Draw(rt, "startBeforeMs")),
			inv:      RoomInventory{Available: 20},
			lastPos:  map[string]int{},
			lastETA:  map[string][2]int64{},
			deadline: map[string]int64{},
		}
		rt.Repeat(map[string]func(*rapid.T){
			"join":    m.join,
			"poll":    m.poll,
			"leave":   m.leave,
			"tick":    m.tick,
			"advance": m.advance,
			"claim":   m.claim,
			"done":    m.done,
			"draw":    m.draw,
			"restart": m.restart,
			"update":  m.update,
			"":        m.check,
		})
		m.h.checkReplay()
	})
}

var roomPropCustomers = []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11"}

type roomModel struct {
	rt       *rapid.T
	h        *roomHarness
	cfg      RoomConfig
	nowMs    int64
	nextID   int
	inv      RoomInventory
	soldOut  bool
	lastPos  map[string]int      // last position each waiting ticket read
	lastETA  map[string][2]int64 // estimate and rate (milli) at each ticket's last poll as waiting, restarts included
	deadline map[string]int64    // when each queued ticket may be abandoned
	admits   [][2]int64          // every admission record: at, count
	buyers   int64               // Done buyers and the seats they booked
	seats    int64
}

// observe follows the records a command returned.
func (m *roomModel) observe(recs []RoomRecord) {
	r := m.h.r
	for _, rec := range recs {
		switch rec.Type {
		case RoomRecordResumed:
			for i := range uint32(r.vs.len()) {
				if r.vs.at(i).status.queued() {
					m.deadline[r.vs.at(i).ticket] = rec.AtUnixMilli + roomGraceMilliMax
				}
			}
		case RoomRecordAdmitted:
			m.checkRate(rec)
			for _, v := range rec.Visitors {
				delete(m.deadline, r.vs.at(v).ticket)
			}
		case RoomRecordLeft:
			for _, v := range rec.Visitors {
				tk := r.vs.at(v).ticket
				if d, ok := m.deadline[tk]; rec.Reason == RoomReasonAbandoned && (!ok || rec.AtUnixMilli < d) {
					m.rt.Fatalf("%s abandoned at %d, its grace runs to %d (known %v)", tk, rec.AtUnixMilli, d, ok)
				}
				delete(m.deadline, tk)
			}
		case RoomRecordAdmissionEnded:
			if rec.Reason == RoomReasonDone {
				m.buyers++
				m.seats += int64(rec.Count)
			}
		case RoomRecordSoldOut:
			m.soldOut = rec.SoldOut
		}
	}
}

// checkRate checks the new admission record against every earlier one:
// over any span the admissions are at most one second's credit plus the
// rate times the span.
func (m *roomModel) checkRate(rec RoomRecord) {
	rate := int64(math.Round(m.cfg.AdmitPerSecond * 1000))
	ceiling := max(1000, rate)
	m.admits = append(m.admits, [2]int64{rec.AtUnixMilli, int64(len(rec.Visitors))})
	sum := int64(0)
	for i := len(m.admits) - 1; i >= 0; i-- {
		sum += m.admits[i][1]
		span := rec.AtUnixMilli - m.admits[i][0]
		if sum*1000*1000 > ceiling*1000+rate*span {
			m.rt.Fatalf("%d admitted over %d ms at %d milli-visitors per second", sum, span, rate)
		}
	}
}

// seen checks a view read as a poll: the estimate, and the grace it sets.
func (m *roomModel) seen(tv TicketView) {
	switch tv.Status {
	case TicketPreQueue, TicketWaiting, TicketSoldOut:
		m.deadline[tv.Ticket] = m.nowMs + roomGraceMilli(tv.PollAfterSeconds)
		if tv.PollAfterSeconds < RoomPollAfterSecondsMin || tv.PollAfterSeconds > RoomPollAfterSecondsMax {
			m.rt.Fatalf("poll after %d s", tv.PollAfterSeconds)
		}
	}
	if tv.Status != TicketWaiting {
		return
	}
	rate := int64(math.Round(tv.AdmitPerSecond * 1000))
	eta := int64(tv.ETASeconds)
	if last, ok := m.lastETA[tv.Ticket]; ok {
		bound := last[0]
		if rate < last[1] {
			bound = math.MaxInt64
			if rate > 0 {
				bound = roomCeilDiv(last[0]*last[1], rate)
			}
		}
		if eta > bound {
			m.rt.Fatalf("%s: estimate %d s after %d s, rate %d after %d", tv.Ticket, eta, last[0], rate, last[1])
		}
	}
	m.lastETA[tv.Ticket] = [2]int64{eta, rate}
}

func (m *roomModel) anyTicket(t *rapid.T) string {
	if m.h.r.vs.len() == 0 {
		t.Skip("no tickets yet")
	}
	return m.h.r.vs.at(uint32(rapid.IntRange(0, m.h.r.vs.len()-1).Draw(t, "visitor"))).ticket
}

func (m *roomModel) join(t *rapid.T) {
	cust := rapid.SampledFrom(roomPropCustomers).Draw(t, "cust")
	// A restarted room resumes first (renewing claim windows): then the
	// customer's ticket is read.
	recs := m.h.r.Resume(roomTime(m.nowMs))
	m.h.absorb("resume", recs, nil)
	m.observe(recs)
	var want string // the live ticket the customer must get back
	if v, ok := m.h.r.customers[cust]; ok {
		tv := m.h.r.look(v, m.nowMs)
		if tv.Status != TicketExpired && tv.Status != TicketLeft {
			want = tv.Ticket
		}
	}
	m.nextID++
	tk := fmt.Sprint("t", m.nextID)
	recs, tv, err := m.h.r.Join(roomTime(m.nowMs), cust, tk)
	if len(recs) > 0 && recs[0].Type == RoomRecordResumed {
		t.Fatal("a resumed room resumed again")
	}
	m.h.absorb("join", recs, err)
	m.observe(recs)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if want != "" && tv.Ticket != want || want == "" && tv.Ticket != tk {
		t.Fatalf("%s joined as %s, want %q (new: %s)", cust, tv.Ticket, want, tk)
	}
	m.seen(tv)
}

func (m *roomModel) poll(t *rapid.T) {
	tk := m.anyTicket(t)
	tv, err := m.h.r.Poll(roomTime(m.nowMs), tk)
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	m.seen(tv)
}

func (m *roomModel) leave(t *rapid.T) {
	recs, err := m.h.r.Leave(roomTime(m.nowMs), m.anyTicket(t))
	m.h.absorb("leave", recs, err)
	m.observe(recs)
	if err != nil {
		t.Fatalf("leave: %v", err)
	}
}

func (m *roomModel) advance(t *rapid.T) {
	if rapid.IntRange(0, 9).Draw(t, "long") == 0 {
		m.nowMs += int64(rapid.IntRange(0, 300_000).Draw(t, "ms"))
	} else {
		m.nowMs += int64(rapid.IntRange(0, 3000).Draw(t, "ms"))
	}
}

func (m *roomModel) tick(t *rapid.T) {
	m.advance(t)
	if rapid.IntRange(0, 3).Draw(t, "newInventory") == 0 {
		m.inv = RoomInventory{Available: rapid.IntRange(0, 30).Draw(t, "available"), SoldOut: rapid.IntRange(0, 9).Draw(t, "soldOut") == 0}
	}
	r := m.h.r
	// The queue order before the tick.
	var order []string
	for _, v := range r.slots {
		if r.vs.at(v).status == vWaiting {
			order = append(order, r.vs.at(v).ticket)
		}
	}
	recs := r.Tick(roomTime(m.nowMs), m.inv)
	m.h.absorb("tick", recs, nil)
	m.observe(recs)
	var admitted, abandoned []string
	for _, rec := range recs {
		for _, v := range rec.Visitors {
			switch {
			case rec.Type == RoomRecordAdmitted:
				admitted = append(admitted, r.vs.at(v).ticket)
			case rec.Type == RoomRecordLeft:
				abandoned = append(abandoned, r.vs.at(v).ticket)
			}
		}
	}
	order = slices.DeleteFunc(order, func(tk string) bool { return slices.Contains(abandoned, tk) })
	if len(admitted) > 0 {
		if !slices.Equal(admitted, order[:len(admitted)]) {
			t.Fatalf("admitted %q, the queue's front was %q", admitted, order[:len(admitted)])
		}
		switch {
		case !r.drawn || m.soldOut || m.nowMs < m.cfg.OnSaleAt.UnixMilli():
			t.Fatalf("admitted while not drawn, sold out or before onSaleAt")
		case m.cfg.MaxActive > 0 && r.active > m.cfg.MaxActive:
			t.Fatalf("%d active, max %d", r.active, m.cfg.MaxActive)
		}
		prior := int64(max(1, (m.cfg.MaxSeatsPerCustomer+1)/2)) * 1000
		avg := max((m.seats*1000+prior*10)/(m.buyers+10), 250)
		// The inventory allows active × avg ≤ 2 × available, or as many
		// shoppers as seats available.
		if int64(r.active)*avg > 2*int64(m.inv.Available)*1000 && r.active > m.inv.Available {
			t.Fatalf("%d active × %d milli-seats > 2 × %d available", r.active, avg, m.inv.Available)
		}
	}
	// Everything due was done.
	nowSec := roomFloorDiv(m.nowMs, 1000) * 1000
	for tk, d := range m.deadline {
		if d <= nowSec {
			t.Fatalf("%s still queued after its grace ran out (%d ≤ %d)", tk, d, m.nowMs)
		}
	}
	for i := range uint32(r.vs.len()) {
		x := r.vs.at(i)
		if x.status == vAdmitted && r.adms[x.adm-1].claimBy <= m.nowMs || x.status.active() && r.adms[x.adm-1].expiresAt <= m.nowMs {
			t.Fatalf("%s still admitted after its claim deadline or expiry", x.ticket)
		}
	}
}

func (m *roomModel) claim(t *rapid.T) {
	cust := rapid.SampledFrom(roomPropCustomers).Draw(t, "cust")
	if rapid.Bool().Draw(t, "resumeFirst") {
		// Reads of a restarted room precede the renewal of its claim
		// windows: the actor resumes before it serves them.
		recs := m.h.r.Resume(roomTime(m.nowMs))
		m.h.absorb("resume", recs, nil)
		m.observe(recs)
	} else if !m.h.r.resumed {
		t.Skip("not resumed")
	}
	_, aerr := m.h.r.Admission(roomTime(m.nowMs), cust)
	recs, tv, err := m.h.r.Claim(roomTime(m.nowMs), cust)
	m.h.absorb("claim", recs, err)
	m.observe(recs)
	if (aerr == nil) != (err == nil) || err != nil && CodeOf(err) != CodeAdmissionRequired {
		t.Fatalf("claim: %v, but admission: %v", err, aerr)
	}
	if err == nil && (!tv.Claimed || tv.Status != TicketAdmitted) {
		t.Fatalf("claimed ticket reads %+v", tv)
	}
}

func (m *roomModel) done(t *rapid.T) {
	cust := rapid.SampledFrom(roomPropCustomers).Draw(t, "cust")
	recs, err := m.h.r.Done(roomTime(m.nowMs), cust, rapid.IntRange(0, m.cfg.MaxSeatsPerCustomer).Draw(t, "seats"))
	m.h.absorb("done", recs, err)
	m.observe(recs)
	if err != nil {
		t.Fatalf("done: %v", err)
	}
}

func (m *roomModel) draw(t *rapid.T) {
	if !m.h.r.DrawDue(roomTime(m.nowMs)) {
		t.Skip("no draw due")
	}
	var seed [32]byte
	copy(seed[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "seed"))
	recs, err := m.h.r.Draw(roomTime(m.nowMs), seed)
	m.h.absorb("draw", recs, err)
	m.observe(recs)
	if err != nil {
		t.Fatalf("draw: %v", err)
	}
	// Independently, from the journal: the queue order.
	var order []string
	for _, v := range m.h.r.slots {
		order = append(order, m.h.r.vs.at(v).ticket)
	}
	if audit := roomAuditOrder(m.h.recs); !slices.Equal(order, audit) {
		t.Fatalf("queue order %q, audited %q", order, audit)
	}
}

func (m *roomModel) restart(t *rapid.T) {
	m.h.restart(rapid.Bool().Draw(t, "midway"))
}

func (m *roomModel) update(t *rapid.T) {
	cfg := m.cfg
	cfg.MaxActive = rapid.IntRange(0, 5).Draw(t, "maxActive")
	cfg.ClaimSeconds = rapid.IntRange(3, 40).Draw(t, "claimSeconds")
	cfg.AdmissionTTLSeconds = rapid.IntRange(cfg.ClaimSeconds, 120).Draw(t, "ttlSeconds")
	recs, err := m.h.r.Update(roomTime(m.nowMs), cfg)
	m.h.absorb("update", recs, err)
	m.observe(recs)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	m.cfg = cfg
}

// check reads every ticket without polling: positions, sold out.
func (m *roomModel) check(t *rapid.T) {
	r := m.h.r
	var waiting []int
	for i := range uint32(r.vs.len()) {
		tv := r.look(uint32(i), m.nowMs)
		switch tv.Status {
		case TicketWaiting:
			if m.soldOut {
				t.Fatalf("%s reads waiting while sold out", tv.Ticket)
			}
			if last, ok := m.lastPos[tv.Ticket]; ok && tv.Position > last {
				t.Fatalf("%s moved back from %d to %d", tv.Ticket, last, tv.Position)
			}
			m.lastPos[tv.Ticket] = tv.Position
			waiting = append(waiting, tv.Position)
		case TicketPreQueue:
			if r.drawn || m.soldOut {
				t.Fatalf("%s reads pre_queue after the draw or while sold out", tv.Ticket)
			}
		case TicketSoldOut:
			if !m.soldOut {
				t.Fatalf("%s reads sold_out", tv.Ticket)
			}
		}
	}
	slices.Sort(waiting)
	for i, p := range waiting {
		if p != i+1 {
			t.Fatalf("waiting positions %v are not 1..%d", waiting, len(waiting))
		}
	}
}

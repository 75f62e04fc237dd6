package actors

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxoffice/boxoffice/engine"
)

// The waiting room of an event runs in its event actor (engine/event_room.go,
// docs/DECISIONS.md D20): joins, leaves and polls are requests like holds;
// a timer ticks the room once a second while it exists (the draw at
// onSaleAt, with a seed from crypto/rand that the journal keeps, and the
// admissions).

// roomTickEvery is how often an event with a waiting room admits.
const roomTickEvery = time.Second

// Waiting-room requests.
type (
	queueJoinRequest  struct{ customerID, ticket string }
	queuePollRequest  struct{ ticket string }
	queueLeaveRequest struct{ ticket string }
	// roomTick is the room's timer.
	roomTick struct{}
)

// armRoomTimer keeps the room's one-second timer running while the event
// has a waiting room.
func (a *eventActor) armRoomTimer(ctx actor.Context) {
	if a.ev == nil || a.roomTimer != nil {
		return
	}
	if exists, _ := a.ev.HasRoom(); !exists {
		return
	}
	a.roomTimer = a.sys.clock.SendAfter(a.sys.root, roomTickEvery, ctx.Self(), roomTick{})
}

// onRoomTick draws and admits, then rearms.
func (a *eventActor) onRoomTick(ctx actor.Context) {
	a.roomTimer = nil
	if a.ev == nil || a.storageErr != nil {
		return
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
	a.enqueue(a.ev.RoomTick(a.sys.clock.Now(), seed))
	a.flush()
	a.armRoomTimer(ctx)
}

// handleRoom decides a waiting-room request; ok is false for other requests.
func (a *eventActor) handleRoom(now time.Time, msg any, rep *reply) (recs []engine.Record, ok bool) {
	switch m := msg.(type) {
	case *queueJoinRequest:
		recs, rep.ticket, rep.err = a.ev.QueueJoin(now, m.customerID, m.ticket)
	case *queuePollRequest:
		rep.ticket, rep.err = a.ev.QueuePoll(now, m.ticket)
	case *queueLeaveRequest:
		recs, rep.err = a.ev.QueueLeave(now, m.ticket)
	default:
		return nil, false
	}
	return recs, true
}

// QueueJoin gives customerID a place in the event's waiting room, or the
// place they have (API.md POST /v1/events/{id}/queue). Errors:
// ticket_not_found when the event has no waiting room, queue_full,
// event_not_found, and the 503s of Hold.
func (s *System) QueueJoin(ctx context.Context, eventID, customerID string) (engine.TicketView, error) {
	rep, err := s.request(ctx, eventID, &queueJoinRequest{customerID: customerID, ticket: newID("q", eventID)})
	if err != nil {
		return engine.TicketView{}, err
	}
	return rep.ticket, nil
}

// QueuePoll reads a ticket of the event's waiting room and counts the poll.
// Errors: ticket_not_found, event_not_found.
func (s *System) QueuePoll(ctx context.Context, eventID, ticket string) (engine.TicketView, error) {
	rep, err := s.request(ctx, eventID, &queuePollRequest{ticket: ticket})
	if err != nil {
		return engine.TicketView{}, err
	}
	return rep.ticket, nil
}

// QueueLeave takes a ticket out of the waiting room (idempotent). Errors:
// ticket_not_found, event_not_found.
func (s *System) QueueLeave(ctx context.Context, eventID, ticket string) error {
	_, err := s.request(ctx, eventID, &queueLeaveRequest{ticket: ticket})
	return err
}

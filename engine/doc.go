// Package engine is the seat inventory of one event as a pure, deterministic
// state machine, in the manner of etcd's raft: it decides, the caller does
// all I/O.
//
// The contract its caller (the event actor) relies on:
//
//  1. Every command (Hold, HoldBest, Cancel, BeginPayment, ConfirmPayment,
//     FailPayment, VoidPayment, RefundBooking, CompleteRefund, Block,
//     Unblock, Update, Tick) takes the current time
//     from the caller. The engine never reads a clock, draws random numbers, logs,
//     starts goroutines or does I/O; it imports only the standard library.
//  2. A command whose arguments are valid first expires every live
//     reservation whose expiresAt is at or before now (so an expired hold is expired the moment any command
//     touches the event, timer or not), then decides. It returns the
//     records it produced — already applied to the in-memory state — and an
//     error. The records must be persisted even when the error is non-nil
//     (they are the expiries found due). A rejected command adds no record
//     of its own and changes nothing else.
//  3. Records carry contiguous sequence numbers (Seq) from 1, the
//     EventCreated record. Apply replays a record through the same
//     transitions; replaying the journal rebuilds the state exactly, which
//     MarshalSnapshot makes checkable byte for byte.
//  4. Persist, then publish, then reply: the caller must not announce a
//     record (reply to a caller, publish a SeatChange) before it is durable.
//  5. Errors are *Error values with a stable Code (API.md's problem codes);
//     the web layer maps codes to HTTP statuses in one table.
//
// Venue plans are imported from the pretix seating-plan JSON format
// (ParsePlan). Seats are addressed inside the engine and its records by
// their index in the plan; the API speaks seat_guid.
//
// The selling rules are decided here, atomically with the hold they
// concern: best available (HoldBest) chooses and holds in one command, from
// the plan's layout (layout.go: rows cut into runs of adjacent seats at
// aisles, derived once per plan and never journaled); the orphan-seat rule
// (best available always avoids stranding a single seat when it can;
// hand-picked holds too with orphanSeats "prevent"); re-holds (a customer
// asking again for seats they hold gets a replacement in the same command,
// its lifetime capped by maxHoldSeconds from the first hold); the sale
// window, checked by every hold path; and operators' changes (Update, one
// EventUpdated record; snapshots carry the current definition).
//
// Payments (payment.go) are decided here too, but never performed: each
// attempt is journaled before the provider is asked and keeps a state
// (pending, succeeded, failed, voided, refund_pending, refunded). The work
// a provider still owes an attempt — charge, void, refund — is derived from
// that state (PaymentTasks): the journal is the outbox. A success that can
// no longer book is owed back (RefundRequested), never kept; a provider
// event id already recorded on an attempt changes nothing.
package engine

// Package web serves boxoffice's HTTP API (../shared/API.md, version 1) with
// a chi router in front of the actor system, and keeps the read side of
// every event's seat map (Hub).
//
// The contract callers and clients rely on:
//
//  1. One error shape. Every error, including unknown paths (404), wrong
//     methods (405 with Allow), oversized bodies (413 body_too_large), rate
//     limits (429 rate_limited with Retry-After) and panics (500), is an RFC
//     9457 problem document (application/problem+json) with a stable "code".
//     Codes come from engine (engine.Error), from actors (the 503s) and from
//     this package; problemKinds maps every code to its HTTP status in one
//     table. Seat lists ride along as unavailableSeats (seat_unavailable),
//     unknownSeats (seat_not_found), orphanSeats (orphan_seat) or seatIds
//     (seat_held, duplicates).
//  2. Error precedence (API.md, Conventions). A request is checked in this
//     order and the first failure answers: body size (413) and shape (400:
//     syntax, unknown or case-mismatched or repeated fields, a customerId,
//     empty or duplicate ids), token (401; a customer token on an admin
//     endpoint or the admin token on a customer endpoint 403), event (404),
//     more seats in one request than maxSeatsPerCustomer (400, seatIds or a
//     bestAvailable quantity alike); the event actor then decides the rest
//     in the engine's order (event_cancelled, the sale window, unknown
//     seats, the limit, then seat_unavailable / orphan_seat /
//     no_adjacent_seats).
//  3. Identity. Customers present a JWT whose sub is the customer id,
//     verified with golang-jwt (HS256 secret and/or an RS256 or ES256 public
//     key; exp required; only the configured algorithms), or, when anonymous
//     sessions are on, an HS256 token from POST /v1/sessions (issuer
//     boxoffice-session, random customer id, 24 h). Operators present the
//     admin token, compared in constant time. A customer only ever reaches
//     their own reservations; another's reads as reservation_not_found.
//  4. Reads never queue behind writes. GET /v1/events, GET /v1/events/{id},
//     GET .../seats and the live feed are answered from the Hub, which the
//     actor system feeds (actors.SeatFeed) after each durable batch. The
//     seat map carries its version as ETag and answers If-None-Match with
//     304; its encoded body is cached per version and at most
//     seatsBodyMaxAge behind, so a durable change shows within a second.
//  5. Idempotency-Key on POST /v1/reservations and .../pay: the first response
//     to a (customer, key) is replayed for the same method, route and body for
//     24 h; another body → 422 idempotency_key_reused; a repeat while the first
//     runs waits for it. 5xx and 429 answers are not kept (nothing was
//     decided). The store is in memory and bounded (100,000 keys).
//  6. Bounds. Bodies 64 KiB (the admin event upload 16 MiB), every request
//     under a context deadline, requests per customer (or client IP) per
//     second when a rate limit is set; operators are not rate limited.
//  7. The live seat map (live.go): GET /v1/events/{id}/live is a WebSocket
//     of JSON text frames, a snapshot then deltas that chain (each delta's
//     from is the version the previous frame reached). Before the upgrade,
//     as problem+json: a malformed since (400), an unknown event (404), an
//     unavailable one (503), more than 100,000 live connections (503
//     overloaded), a page of another origin (403; no Origin is fine).
//     since=N that the event's ring still retains (its last 4,096 batches,
//     at most 65,536 seat changes, emptied by a Reset) gets only the deltas
//     after N; any other N a snapshot first. Each subscriber gets at most
//     one frame per 100 ms: an event's subscribers are split into 16 groups
//     that take turns within a frame interval of 100–175 ms, adapted to how
//     long the fan-out takes (D18); a frame is encoded once
//     (websocket.PreparedMessage) for every subscriber at the same (from,
//     version), and compressed once for those that negotiated
//     permessage-deflate (browsers do; no context takeover); a subscriber
//     that fell behind
//     gets all changes since its version in one delta. Hub.Apply never
//     waits for a subscriber: it signals the event's pump goroutine, and
//     each connection's writer goroutine pulls what it needs. Close codes:
//     4000 resync when the subscriber's version has left the ring, 1001 on
//     Server.Close, 1011 event_unavailable; a write that misses its 10 s
//     deadline drops the connection without a close frame (half a frame may
//     be out). The server pings every 30 s; 60 s without a pong or message
//     ends a connection. Server.Close ends every live connection and its
//     goroutines; http.Server.Shutdown does not see hijacked connections.
//
// Selling rules (engine): POST /v1/reservations takes seatIds or
// bestAvailable {quantity, category?, zone?}, chosen and held in one step by
// the event actor; asking again for seats one already holds replaces the
// reservation (or returns it once maxHoldSeconds is reached); orphanSeats
// "prevent" and focalPoint are honoured; PATCH /v1/admin/events/{id}
// changes an event or cancels it (strict body: unknown fields, wrong types
// and null where nothing resets are 400 naming the field), and the hub gets
// the changed read model before the operator's 200.
//
// Not served yet (later issues): the waiting room (an admin event or patch
// asking for one is a 400; a disabled waitingRoom is accepted without
// effect), refunds, snapshots and the payment webhook.
package web

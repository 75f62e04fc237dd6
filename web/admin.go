package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

// POST /v1/admin/events → 201 the event. An operator's body may be 16 MiB
// (a stadium plan); anyone else gets the usual 64 KiB, so that reading and
// parsing 16 MiB is never offered to an unauthenticated caller while the
// order of answers (413, 400, then 401/403) stays that of API.md.
func (s *Server) createEvent(w http.ResponseWriter, r *http.Request) {
	limit := int64(bodyBytesMax)
	if identityFrom(r.Context()).kind == identityAdmin {
		limit = adminBodyBytesMax
	}
	_, def, ok := readRequest(s, w, r, limit, decodeEventDefinition)
	if !ok {
		return
	}
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	info, err := sys.CreateEvent(r.Context(), def)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/events/"+url.PathEscape(info.ID))
	s.writeJSON(w, r, http.StatusCreated, eventView(info))
}

// PATCH /v1/admin/events/{eventId} → 200 the event as changed. The body's
// shape is checked first (400 naming the field), then the operator (401,
// 403), then the event (404); the event actor checks the values against the
// event (400 naming the field) and journals the change. Cancelling
// releases every held reservation.
func (s *Server) updateEvent(w http.ResponseWriter, r *http.Request) {
	_, patch, ok := readRequest(s, w, r, bodyBytesMax, decodeEventPatch)
	if !ok {
		return
	}
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	info, err := sys.UpdateEvent(r.Context(), chi.URLParam(r, "eventId"), patch)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, eventView(info))
}

// POST /v1/admin/events/{eventId}/block → 200 {"seatIds": [...]}.
func (s *Server) blockSeats(w http.ResponseWriter, r *http.Request) {
	s.changeBlock(w, r, System.Block)
}

// POST /v1/admin/events/{eventId}/unblock → 200 {"seatIds": [...]}.
func (s *Server) unblockSeats(w http.ResponseWriter, r *http.Request) {
	s.changeBlock(w, r, System.Unblock)
}

func (s *Server) changeBlock(w http.ResponseWriter, r *http.Request,
	change func(System, context.Context, string, []string) error) {
	_, req, ok := readRequest(s, w, r, bodyBytesMax, decodeSeatIDsRequest)
	if !ok {
		return
	}
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	if err := change(sys, r.Context(), chi.URLParam(r, "eventId"), req.SeatIDs); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, req)
}

// GET /v1/admin/events/{eventId}/bookings → 200 {"bookings": [...]}.
func (s *Server) listBookings(w http.ResponseWriter, r *http.Request) {
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	eventID := chi.URLParam(r, "eventId")
	info, err := s.eventInfo(r, eventID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := sys.Bookings(r.Context(), eventID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	views := make([]bookingView, len(list))
	for i, b := range list {
		views[i] = newBookingView(b, info.Currency)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"bookings": views})
}

// GET /v1/admin/reservations/{reservationId} → the reservation with its
// customer and payment attempts.
func (s *Server) adminReservation(w http.ResponseWriter, r *http.Request) {
	sys, ok := s.adminSystem(w, r)
	if !ok {
		return
	}
	res, err := sys.AdminReservation(r.Context(), chi.URLParam(r, "reservationId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newAdminReservationView(res))
}

// adminSystem is requireAdmin, then the actor system (503 while not
// ready): the preamble of every operator endpoint.
func (s *Server) adminSystem(w http.ResponseWriter, r *http.Request) (System, bool) {
	if !s.requireAdmin(w, r) {
		return nil, false
	}
	return s.system(w, r)
}

// POST /v1/admin/snapshots → 200, a tar archive (application/x-tar) of a
// consistent Pebble checkpoint of the journal, streamed. A failure after
// the first byte cannot change the status: the archive is then cut short
// (an incomplete tar), which `boxoffice restore` refuses.
func (s *Server) adminSnapshot(w http.ResponseWriter, r *http.Request) {
	// Only once ready (503 before): the journal is open then.
	if _, ok := s.adminSystem(w, r); !ok {
		return
	}
	if s.snapshot == nil {
		s.writeError(w, r, errorf(codeNotFound, "snapshots are not available on this server"))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="boxoffice-snapshot-`+s.now().UTC().Format("20060102T150405Z")+`.tar"`)
	// The archive may take longer than the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	if err := s.snapshot(w); err != nil {
		s.log.Error("snapshot failed; the archive sent is incomplete", "err", err)
		panic(http.ErrAbortHandler) // cut the connection: the client must not take it for complete
	}
}

package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/go-chi/chi/v5"
)

// eventInfo returns an event's read model from the hub, falling back to the
// actor system for an event the hub has not heard of (yet): the feed may lag
// an event's creation by a moment.
func (s *Server) eventInfo(r *http.Request, eventID string) (engine.EventInfo, error) {
	info, ok, err := s.hub.event(eventID)
	if ok {
		return info, err
	}
	ref := s.sys.Load()
	if ref == nil {
		return engine.EventInfo{}, errorf(codeNotReady, "the server is still recovering its events")
	}
	return ref.Event(r.Context(), eventID)
}

// GET /v1/events — from the hub only, so listing never waits for an actor.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	list := s.hub.eventList()
	views := make([]eventSummaryView, len(list))
	for i, info := range list {
		views[i] = eventSummary(info)
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"events": views})
}

// GET /v1/events/{eventId}
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	info, err := s.eventInfo(r, chi.URLParam(r, "eventId"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, eventView(info))
}

// GET /v1/events/{eventId}/seats — the encoded seat map of the hub, with the
// version as a strong ETag.
func (s *Server) getSeats(w http.ResponseWriter, r *http.Request) {
	eventID := chi.URLParam(r, "eventId")
	body, current, ok, err := s.hub.seats(eventID)
	if !ok {
		s.notInHub(w, r, eventID, "seat map")
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if v, match := etagMatch(inm, body.version, current); match {
			h.Set("ETag", etag(v))
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("ETag", etag(body.version))
	h.Set("Content-Type", "application/json")
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(body.gzip)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body.gzip)
		return
	}
	h.Set("Content-Length", strconv.Itoa(body.size))
	w.WriteHeader(http.StatusOK)
	_ = body.writeJSON(w) // only a client that went away fails here
}

// notInHub answers for an event the hub does not know: either there is no
// such event (404), or it was created a moment ago and its seat map is on
// its way (503 not_ready).
func (s *Server) notInHub(w http.ResponseWriter, r *http.Request, eventID, what string) {
	if _, err := s.eventInfo(r, eventID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeError(w, r, errorf(codeNotReady, "the %s of event %q is being built; retry shortly", what, eventID))
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// etagMatch reports whether If-None-Match names the version about to be
// served or the current one (a client that already saw the newest state);
// it returns the matched version.
func etagMatch(header string, served, current uint64) (uint64, bool) {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		switch tag {
		case "*", etag(served):
			return served, true
		case etag(current):
			return current, true
		}
	}
	return 0, false
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

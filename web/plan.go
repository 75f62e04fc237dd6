package web

import (
	"net/http"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/go-chi/chi/v5"
)

// planView is GET /v1/events/{eventId}/plan: what a seat map draws besides
// the seats. Coordinates are plan units, the same as the seats' x and y.
type planView struct {
	EventID string     `json:"eventId"`
	Name    string     `json:"name"`
	Width   int        `json:"width"`
	Height  int        `json:"height"`
	Areas   []areaView `json:"areas"`
}

// areaView is a seatless shape of the plan (the stage, a sound desk): a
// rectangle with its top-left corner at (x, y) and rotation in degrees
// (clockwise) as the plan gives it.
type areaView struct {
	Zone     string  `json:"zone"`
	Text     string  `json:"text"`
	Color    string  `json:"color"`
	X        int32   `json:"x"`
	Y        int32   `json:"y"`
	Width    int32   `json:"width"`
	Height   int32   `json:"height"`
	Rotation float64 `json:"rotation"`
}

func newPlanView(eventID string, p *engine.Plan) planView {
	v := planView{EventID: eventID, Name: p.Name, Width: p.Width, Height: p.Height, Areas: make([]areaView, len(p.Areas))}
	for i, a := range p.Areas {
		zone := ""
		if int(a.Zone) < len(p.Zones) {
			zone = p.Zones[a.Zone]
		}
		v.Areas[i] = areaView{
			Zone: zone, Text: a.Text, Color: a.Color, X: a.X, Y: a.Y,
			Width: a.Width, Height: a.Height, Rotation: a.Rotation,
		}
	}
	return v
}

// plan returns an event's immutable venue plan from the hub. ok is false
// when the hub does not know the event; err is set (event_unavailable) when
// it knows it only as unavailable.
func (h *Hub) plan(eventID string) (plan *engine.Plan, ok bool, err error) {
	m := h.lookup(eventID)
	if m == nil {
		return nil, false, nil
	}
	if _, err := m.read(); err != nil {
		return nil, true, err
	}
	// A seat map's plan is set when the entry is made and never changed
	// (a Reset replaces the whole entry), so it is read without its lock.
	return m.plan, true, nil
}

// GET /v1/events/{eventId}/plan — the plan's size and areas, from the hub.
func (s *Server) getPlan(w http.ResponseWriter, r *http.Request) {
	eventID := chi.URLParam(r, "eventId")
	plan, ok, err := s.hub.plan(eventID)
	if !ok {
		s.notInHub(w, r, eventID, "plan")
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newPlanView(eventID, plan))
}

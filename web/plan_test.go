package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestPlan: GET /v1/events/{id}/plan answers the plan's size and its areas
// (the stage) in plan units; an unknown event is event_not_found.
func TestPlan(t *testing.T) {
	e := newEnv(t)
	e.createEvent("night", nil)

	res := e.do(http.MethodGet, "/v1/events/night/plan", "", nil)
	res.want(t, http.StatusOK)
	var got planView
	res.decode(t, &got)
	if got.EventID != "night" || got.Name != "Riverside Concert Hall" || got.Width != 1600 || got.Height != 1400 {
		t.Errorf("plan = %+v, want night / Riverside Concert Hall / 1600×1400", got)
	}
	want := areaView{Zone: "Stage", Text: "STAGE", Color: "#333333", X: 450, Y: 20, Width: 700, Height: 70}
	if len(got.Areas) != 1 || got.Areas[0] != want {
		t.Errorf("areas = %+v, want [%+v]", got.Areas, want)
	}

	e.do(http.MethodGet, "/v1/events/nope/plan", "", nil).wantProblem(t, http.StatusNotFound, "event_not_found")
}

// TestUIRoutes: the browser UI is served at "/" and /ui/, while other
// unknown paths stay problem+json 404s.
func TestUIRoutes(t *testing.T) {
	e := newEnv(t)
	page := e.do(http.MethodGet, "/", "", nil)
	page.want(t, http.StatusOK)
	if ct := page.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / Content-Type = %q, want text/html", ct)
	}
	js := e.do(http.MethodGet, "/ui/app.js", "", nil)
	js.want(t, http.StatusOK)
	if ct := js.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("GET /ui/app.js Content-Type = %q, want text/javascript", ct)
	}
	e.do(http.MethodGet, "/ui/missing.js", "", nil).wantProblem(t, http.StatusNotFound, codeNotFound)
	e.do(http.MethodPost, "/", "", nil).wantProblem(t, http.StatusMethodNotAllowed, codeMethodNotAllowed)
}

package web

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of exactly the endpoints this
// server routes (a test holds the two in step).
//
//go:embed openapi.json
var openAPIDocument []byte

// GET /v1/openapi.json
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
}

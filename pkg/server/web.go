package server

import (
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-openapi/runtime/middleware"

	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/httpx"
	"github.com/sessioncert/sessioncert/restapi"
)

// serveDocs serves the API reference rendered from the embedded spec.
func (s *Server) serveDocs(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page has inline styles only: nothing may load from elsewhere.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(s.docs)
}

// serveSpec serves the embedded spec, for clients and contract tests.
func (s *Server) serveSpec(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(restapi.SwaggerJSON)
}

// Labels of sessioncert_http_requests_total besides operation ids.
const (
	// unmatched counts requests refused before any operation was known:
	// unclean or unknown paths, methods a path does not serve.
	unmatched = "unmatched"
	// pageRequest marks requests for the pages beside the API (docs, spec,
	// metrics), which are not counted.
	pageRequest = "(page)"
)

// nameOperation notes the operation id of each API request for
// countRequest. It runs after routing, where the operation is known.
func nameOperation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route := middleware.MatchedRouteFrom(r); route != nil && route.Operation != nil {
			httpx.SetOperation(r.Context(), route.Operation.ID)
		}
		next.ServeHTTP(w, r)
	})
}

// countRequest counts every request answered, under its operation id. A
// request answered before routing (a body over the cap, a repeated
// zt-session header) is counted under the operation its path and method
// name, if any, and one that names none under unmatched. The pages beside
// the API are not counted.
func (s *Server) countRequest(r *http.Request, status int, d time.Duration) {
	op := httpx.Operation(r.Context())
	switch {
	case op == pageRequest:
		return
	case op != "":
	case !cleanPath(r.URL.Path):
		op = unmatched
	default:
		op = unmatched
		if route, ok := s.routes.LookupRoute(r); ok && route.Operation != nil {
			op = route.Operation.ID
		}
	}
	s.metrics.Request(op, status, d)
}

// dispatch routes a request to the API or to one of the pages beside it.
// It does not clean paths as http.ServeMux does, nor redirect: a path that
// is not clean gets 404 in the error envelope. The API's router would clean
// it and serve whatever the clean path names, so /edge//management/v1 or
// /edge/client/v1/../management/v1 would reach another API than the one
// the request's path seems to name.
func (s *Server) dispatch(api http.Handler) http.Handler {
	metrics := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case !cleanPath(path):
			handlers.NotFoundHandler(w, r)
		case strings.HasPrefix(path, "/edge/") || path == "/health-checks":
			api.ServeHTTP(w, r)
		case path == "/docs" && r.Method == http.MethodGet:
			httpx.SetOperation(r.Context(), pageRequest)
			s.serveDocs(w, r)
		case path == "/swagger.json" && r.Method == http.MethodGet:
			httpx.SetOperation(r.Context(), pageRequest)
			s.serveSpec(w, r)
		case path == "/metrics" && r.Method == http.MethodGet && s.cfg.Ops.MetricsAddr == "":
			httpx.SetOperation(r.Context(), pageRequest)
			metrics.ServeHTTP(w, r)
		default:
			handlers.NotFoundHandler(w, r)
		}
	})
}

// cleanPath reports whether path is absolute and has no empty, "." or ".."
// segment, a trailing slash aside: whether cleaning it changes nothing that
// routing looks at.
func cleanPath(p string) bool {
	c := path.Clean(p)
	return strings.HasPrefix(p, "/") && (p == c || p == c+"/")
}

package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-openapi/runtime/middleware"

	"github.com/sessioncert/sessioncert/pkg/handlers"
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

// operationMetrics counts each API request under its operation id. It runs
// after routing, where the operation is known.
func (s *Server) operationMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		op := "unknown"
		if route := middleware.MatchedRouteFrom(r); route != nil && route.Operation != nil {
			op = route.Operation.ID
		}
		s.metrics.Request(op, rec.status, time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// dispatch routes a request to the API or to one of the pages beside it.
// It does not clean paths as http.ServeMux does: a path with "." or ".."
// segments must reach the API's router and be answered 404 in the error
// envelope, not redirected somewhere else.
func (s *Server) dispatch(api http.Handler) http.Handler {
	metrics := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case dotSegment(path):
			// No id or resource is "." or "..", and the API's router would
			// resolve them to another resource.
			handlers.NotFoundHandler(w, r)
		case strings.HasPrefix(path, "/edge/") || path == "/health-checks":
			api.ServeHTTP(w, r)
		case path == "/docs" && r.Method == http.MethodGet:
			s.serveDocs(w, r)
		case path == "/swagger.json" && r.Method == http.MethodGet:
			s.serveSpec(w, r)
		case path == "/metrics" && r.Method == http.MethodGet && s.cfg.Ops.MetricsAddr == "":
			metrics.ServeHTTP(w, r)
		default:
			handlers.NotFoundHandler(w, r)
		}
	})
}

// dotSegment reports whether path has a "." or ".." segment.
func dotSegment(path string) bool {
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

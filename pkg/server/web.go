package server

import (
	"net/http"
	"path"
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

// cleanPath reports whether path is absolute and has no empty, "." or ".."
// segment, a trailing slash aside: whether cleaning it changes nothing that
// routing looks at.
func cleanPath(p string) bool {
	c := path.Clean(p)
	return strings.HasPrefix(p, "/") && (p == c || p == c+"/")
}

package server

import (
	"net/http"
	"time"

	"github.com/go-openapi/runtime/middleware"

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

package httpx

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	unhandled := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"UNHANDLED","requestId":"` + RequestID(r.Context()) + `"}}`))
	}
	tooLarge := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusRequestEntityTooLarge) }

	tests := []struct {
		name    string
		handler http.HandlerFunc
		body    string
		length  int64
		status  int
		log     []string
	}{
		{"panic becomes a logged 500", func(http.ResponseWriter, *http.Request) { panic("boom") }, "", 0,
			500, []string{"level=ERROR", "status=500", "panic=boom"}},
		{"annotations reach the access log", func(w http.ResponseWriter, r *http.Request) {
			Annotate(r.Context(), slog.String("code", "NOT_FOUND"))
			w.WriteHeader(http.StatusNotFound)
		}, "", 0, 404, []string{"level=WARN", "code=NOT_FOUND"}},
		{"declared length over the cap", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
		}, "x", MaxBodySize + 1, 413, []string{"status=413"}},
		{"control characters in the path are not logged", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
		}, "", 0, 200, []string{"level=DEBUG", "path=/a?b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			h := Middleware(Config{Logger: logger, Unhandled: unhandled, TooLarge: tooLarge}, tt.handler)
			req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
			if tt.name == "control characters in the path are not logged" {
				req.URL.Path = "/a\nb"
			}
			if tt.length > 0 {
				req.ContentLength = tt.length
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			id := rec.Header().Get("X-Request-Id")
			if len(id) != 24 {
				t.Errorf("X-Request-Id %q", id)
			}
			line := logs.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, "requestId="+id) {
				t.Errorf("want one access-log line with the request id, got %q", line)
			}
			for _, want := range tt.log {
				if !strings.Contains(line, want) {
					t.Errorf("log line %q lacks %q", line, want)
				}
			}
		})
	}
}

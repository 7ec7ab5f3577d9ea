package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
		{"a client that went away is no server fault", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, "", 0, 503, []string{"level=INFO", "status=503", "clientGone=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			h := Middleware(Config{Logger: logger, Unhandled: unhandled, TooLarge: tooLarge}, tt.handler)
			req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.body))
			switch tt.name {
			case "control characters in the path are not logged":
				req.URL.Path = "/a\nb"
			case "a client that went away is no server fault":
				ctx, cancel := context.WithCancel(req.Context())
				cancel()
				req = req.WithContext(ctx)
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

// chunked is a body of unknown length, as a chunked request has: data, then
// err (io.EOF for a body that ends well).
type chunked struct {
	data *strings.Reader
	err  error
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.data.Len() == 0 {
		return 0, c.err
	}
	return c.data.Read(p)
}

func (*chunked) Close() error { return nil }

// TestBodyOfUnknownLength sends bodies without a declared length: one over
// MaxBodySize gets 413 before the handler runs, whatever it starts with;
// one within it reaches the handler whole, with its length now known; and
// one whose read fails reaches the handler with the failure at its end.
func TestBodyOfUnknownLength(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tooLarge := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusRequestEntityTooLarge) }
	broken := errors.New("broken chunk")
	json := `{"csr":"x"}`
	tests := []struct {
		name     string
		body     string
		end      error
		status   int
		reached  bool
		length   int64
		readBack string
		readErr  error
	}{
		{"json, then spaces past the cap", json + strings.Repeat(" ", MaxBodySize), io.EOF, 413, false, 0, "", nil},
		{"json, then garbage past the cap", json + strings.Repeat("x", MaxBodySize), io.EOF, 413, false, 0, "", nil},
		{"one byte over the cap", strings.Repeat("x", MaxBodySize+1), io.EOF, 413, false, 0, "", nil},
		{"exactly the cap", strings.Repeat("x", MaxBodySize), io.EOF, 200, true, MaxBodySize,
			strings.Repeat("x", MaxBodySize), nil},
		{"small", json, io.EOF, 200, true, int64(len(json)), json, nil},
		{"empty", "", io.EOF, 200, true, 0, "", nil},
		{"read fails", json, broken, 200, true, -1, json, broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := false
			h := Middleware(Config{Logger: logger, TooLarge: tooLarge}, http.HandlerFunc(
				func(w http.ResponseWriter, r *http.Request) {
					reached = true
					got, err := io.ReadAll(r.Body)
					if string(got) != tt.readBack || !errors.Is(err, tt.readErr) || r.ContentLength != tt.length {
						t.Errorf("handler read %d bytes (%v), length %d; want %d bytes (%v), length %d",
							len(got), err, r.ContentLength, len(tt.readBack), tt.readErr, tt.length)
					}
					w.WriteHeader(http.StatusOK)
				}))
			req := httptest.NewRequest(http.MethodPost, "/x", nil)
			req.Body, req.ContentLength = &chunked{strings.NewReader(tt.body), tt.end}, -1
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || reached != tt.reached {
				t.Errorf("status %d, handler reached %v; want %d, %v", rec.Code, reached, tt.status, tt.reached)
			}
		})
	}
}

// TestDone checks that Config.Done hears of every request once, with the
// status written and the operation the handler named: those the middleware
// answers itself (413, a panic) included.
func TestDone(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		handler http.HandlerFunc
		length  int64
		status  int
		op      string
	}{
		{"named and answered", func(w http.ResponseWriter, r *http.Request) {
			SetOperation(r.Context(), "listVersion")
			w.WriteHeader(http.StatusNoContent)
		}, 0, 204, "listVersion"},
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, 0, 200, ""},
		{"declared body over the cap", func(http.ResponseWriter, *http.Request) {
			t.Error("the handler ran for a body over the cap")
		}, MaxBodySize + 1, 413, ""},
		{"panic after naming", func(_ http.ResponseWriter, r *http.Request) {
			SetOperation(r.Context(), "createAdmission")
			panic("boom")
		}, 0, 500, "createAdmission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var status int
			var op string
			h := Middleware(Config{
				Logger:    logger,
				Unhandled: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) },
				TooLarge:  func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(413) },
				Done: func(r *http.Request, s int, _ time.Duration) {
					calls++
					status, op = s, Operation(r.Context())
				},
			}, tt.handler)
			req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("x"))
			req.ContentLength = max(tt.length, 1)
			h.ServeHTTP(httptest.NewRecorder(), req)
			if calls != 1 || status != tt.status || op != tt.op {
				t.Errorf("Done called %d times with %d %q, want once with %d %q", calls, status, op,
					tt.status, tt.op)
			}
		})
	}
}

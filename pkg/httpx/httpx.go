// Package httpx holds the HTTP middleware every sessioncert listener runs:
// request ids, a one-line access log per request, panic recovery and the
// request body cap.
package httpx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxBodySize is the largest request body accepted, in bytes (1 MiB).
const MaxBodySize = 1 << 20

type ctxKey struct{}

// Request is what the middleware knows about one request. Handlers add to it
// through Annotate; the access log writes it out once when the request ends.
type Request struct {
	ID string

	mu        sync.Mutex
	attrs     []slog.Attr
	operation string
}

// FromContext returns the request record stored by Middleware, or nil.
func FromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(ctxKey{}).(*Request)
	return r
}

// RequestID returns the id of the request of ctx, or "" outside a request.
func RequestID(ctx context.Context) string {
	if r := FromContext(ctx); r != nil {
		return r.ID
	}
	return ""
}

// Annotate adds attributes to the request's access-log line. It is how an
// error is logged once, with the request it belongs to. Outside a request it
// does nothing.
func Annotate(ctx context.Context, attrs ...slog.Attr) {
	r := FromContext(ctx)
	if r == nil {
		return
	}
	r.mu.Lock()
	r.attrs = append(r.attrs, attrs...)
	r.mu.Unlock()
}

// SetOperation names what the request turned out to be, such as the API
// operation its route matched, for Config.Done. Outside a request it does
// nothing.
func SetOperation(ctx context.Context, name string) {
	if r := FromContext(ctx); r != nil {
		r.mu.Lock()
		r.operation = name
		r.mu.Unlock()
	}
}

// Operation returns the name given by SetOperation, or "" when none was
// given or outside a request.
func Operation(ctx context.Context) string {
	r := FromContext(ctx)
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.operation
}

// ClientIP returns the host part of the request's remote address.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Config configures Middleware.
type Config struct {
	Logger *slog.Logger

	// Unhandled writes the reply to a request whose handler panicked. It
	// must not panic itself.
	Unhandled func(w http.ResponseWriter, r *http.Request)

	// TooLarge writes the reply to a request whose declared body is over
	// MaxBodySize.
	TooLarge func(w http.ResponseWriter, r *http.Request)

	// Rand is the source of request ids; default crypto/rand.Reader.
	Rand io.Reader

	// Done, when set, is told about every request once its reply is
	// written: its status and how long it took. It sees the requests the
	// middleware itself answers (413, panics) too, so that a count kept
	// by it misses none.
	Done func(r *http.Request, status int, d time.Duration)
}

// Middleware wraps next with request ids, the access log, panic recovery and
// the body cap. The request id is returned in the X-Request-Id header.
func Middleware(cfg Config, next http.Handler) http.Handler {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req := &Request{ID: newRequestID(cfg.Rand)}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, req))
		rec := &recorder{ResponseWriter: w}
		rec.Header().Set("X-Request-Id", req.ID)

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not returned
					panic(v)
				}
				Annotate(r.Context(), slog.Any("panic", v))
				if !rec.wrote {
					cfg.Unhandled(rec, r)
				}
			}
			d := time.Since(start)
			logRequest(cfg.Logger, r, req, rec, d)
			if cfg.Done != nil {
				cfg.Done(r, rec.statusOrOK(), d)
			}
		}()

		if r.ContentLength > MaxBodySize {
			cfg.TooLarge(rec, r)
			return
		}
		if r.ContentLength < 0 && r.Body != nil {
			// A body of unknown length (chunked) is read before anything
			// else sees it, so that one over the cap gets the same 413 as a
			// declared length, whatever a handler would make of its start.
			body, n, over := bufferBody(r.Body)
			if over {
				cfg.TooLarge(rec, r)
				return
			}
			r.Body, r.ContentLength = body, n
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, MaxBodySize)
		}
		next.ServeHTTP(rec, r)
	})
}

// bufferBody reads a body of unknown length up to one byte past
// MaxBodySize and reports whether it is over. Otherwise it returns a body
// that replays what was read and its length; when the read failed (a
// broken chunk, a client gone), the replay ends in that error and the length
// is -1, so that the handler meets the body as it came.
func bufferBody(body io.ReadCloser) (replay io.ReadCloser, n int64, over bool) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(io.LimitReader(body, MaxBodySize+1))
	if buf.Len() > MaxBodySize {
		return nil, 0, true
	}
	if err != nil {
		return readCloser{io.MultiReader(&buf, failedReader{err}), body}, -1, false
	}
	return readCloser{&buf, body}, int64(buf.Len()), false
}

// readCloser reads from one source and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// failedReader returns err from every read.
type failedReader struct{ err error }

func (f failedReader) Read([]byte) (int, error) { return 0, f.err }

func logRequest(l *slog.Logger, r *http.Request, req *Request, rec *recorder, d time.Duration) {
	status := rec.statusOrOK()
	level := slog.LevelDebug
	// The request's context ends before the handler returns only when the
	// client closed the connection or cancelled the stream: nobody read
	// the reply, and its status, whatever it says, is neither the
	// server's fault nor the client's mistake.
	clientGone := r.Context().Err() != nil
	switch {
	case clientGone:
		level = slog.LevelInfo
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelWarn
	}
	if !l.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("requestId", req.ID),
		slog.String("method", r.Method),
		slog.String("path", sanitize(r.URL.Path)),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("remote", ClientIP(r)),
	}
	if clientGone {
		attrs = append(attrs, slog.Bool("clientGone", true))
	}
	req.mu.Lock()
	attrs = append(attrs, req.attrs...)
	req.mu.Unlock()
	l.LogAttrs(r.Context(), level, "request", attrs...)
}

// sanitize keeps user-controlled text from forging log lines.
func sanitize(s string) string {
	if len(s) > 256 {
		s = s[:256] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func newRequestID(r io.Reader) string {
	var b [12]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "unknown"
	}
	return hex.EncodeToString(b[:])
}

// recorder remembers the status written, for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

// statusOrOK returns the status written, or 200 when the handler wrote
// nothing, which net/http answers with 200.
func (r *recorder) statusOrOK() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets long polls push their reply.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

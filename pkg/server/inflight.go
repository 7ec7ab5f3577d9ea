package server

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// cutHandlerGrace bounds how long Close waits for handlers still running
// after the shutdown timeout cut their connections. Their contexts are done
// by then, so they normally return at once; one that does not must not
// keep the process up for ever, and finds the store closed.
const cutHandlerGrace = 10 * time.Second

// inflight counts running handlers, so that the store and the audit trail
// are closed only after the last one returned.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

// track wraps h so that each request counts while its handler runs.
func (f *inflight) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.begin()
		defer f.end()
		h.ServeHTTP(w, r)
	})
}

func (f *inflight) begin() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) end() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// wait returns 0 once no handler runs, or the number still running when
// ctx is done first.
func (f *inflight) wait(ctx context.Context) (running int) {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return 0
	}
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.n
	}
}

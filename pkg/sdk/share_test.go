package sdk

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// gate is an http.RoundTripper that counts certificate requests and, while
// closed, holds each one until it is opened.
type gate struct {
	next    http.RoundTripper
	issued  atomic.Int32
	arrived chan struct{} // receives once per held request
	open    chan struct{}
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	const issuePath = "/edge/client/v1/current-api-session/certificates"
	if req.Method == http.MethodPost && req.URL.Path == issuePath {
		g.issued.Add(1)
		select {
		case <-g.open:
		default:
			g.arrived <- struct{}{}
			<-g.open
		}
	}
	return g.next.RoundTrip(req)
}

// TestConcurrentCallersShareOneRenewal holds the certificate request of a
// renewal at the transport until every caller is waiting for it, then checks
// that one certificate was issued and every caller got it.
func TestConcurrentCallersShareOneRenewal(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Now().UTC().Truncate(time.Second))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		c.Certs.Lifetime = 3 * time.Minute
	}})
	e.CreateIdentity(t, e.Admin(t), "user", "User", "user-password")
	g := &gate{next: e.HTTP.Transport, arrived: make(chan struct{}, 1), open: make(chan struct{})}
	close(g.open)
	c := client.New(httptransport.NewWithClient(e.Host, client.DefaultBasePath, []string{"https"},
		&http.Client{Transport: g}), strfmt.Default)
	s, err := New(Config{
		Client:      c,
		Credentials: Password{Username: "user", Password: "user-password"},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx := context.Background()
	first, err := s.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Past the renewal point, with certificate requests held.
	clock.Advance(2 * time.Minute)
	g.issued.Store(0)
	g.open = make(chan struct{})
	const callers = 8
	results := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			cert, err := s.Certificate(ctx)
			errs[i] = err
			if err == nil {
				results[i] = cert.Leaf.SerialNumber.String()
			}
		})
	}
	<-g.arrived
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pending != nil && s.pending.waiters == callers
	})
	close(g.open)
	wg.Wait()

	if n := g.issued.Load(); n != 1 {
		t.Errorf("%d certificate requests for %d concurrent callers, want 1", n, callers)
	}
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
			continue
		}
		if results[i] != results[0] {
			t.Errorf("caller %d got serial %s, caller 0 got %s", i, results[i], results[0])
		}
	}
	if results[0] == first.Leaf.SerialNumber.String() {
		t.Errorf("callers got the old certificate %s", results[0])
	}
}

// waitFor polls cond until it holds, failing the test after a long while.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

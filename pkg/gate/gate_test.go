package gate_test

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/gate/gatetest"
)

func TestNewChecksConfig(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	valid := func() gate.Config {
		return gate.Config{Client: fake.Client, Username: "u", Password: "p"}
	}
	for _, tc := range []struct {
		name   string
		change func(*gate.Config)
		ok     bool
	}{
		{"defaults", func(*gate.Config) {}, true},
		{"no client", func(c *gate.Config) { c.Client = nil }, false},
		{"no username", func(c *gate.Config) { c.Username = "" }, false},
		{"no password", func(c *gate.Config) { c.Password = "" }, false},
		{"event wait over a minute", func(c *gate.Config) { c.EventWait = time.Hour }, false},
		{"event wait under a second", func(c *gate.Config) { c.EventWait = time.Millisecond },
			false},
		{"max stale within the wait", func(c *gate.Config) {
			c.EventWait, c.MaxStale = 10*time.Second, 5*time.Second
		}, false},
		{"backoff max under min", func(c *gate.Config) {
			c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond
		}, false},
		{"negative cache size", func(c *gate.Config) { c.CacheSize = -1 }, false},
		{"tombstones shorter than a call", func(c *gate.Config) {
			c.CallTimeout, c.TombstoneTTL = time.Minute, time.Second
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			_, err := gate.New(cfg)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestAdmitLocalRefusals(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	cert := leaf(t, "a")
	for _, tc := range []struct {
		name     string
		token    string
		chain    []*x509.Certificate
		code     string
		sentinel error
	}{
		{"no token", "", []*x509.Certificate{cert}, gate.CodeMissingToken, gate.ErrMissingToken},
		{"empty chain", "token", nil, gate.CodeMissingCertificate, gate.ErrMissingCertificate},
		{"nil leaf", "token", []*x509.Certificate{nil}, gate.CodeMissingCertificate,
			gate.ErrMissingCertificate},
		{"neither", "", nil, gate.CodeMissingToken, gate.ErrMissingToken},
		{"token longer than any issued", strings.Repeat("t", 1025), []*x509.Certificate{cert},
			gate.CodeInvalidAPISession, gate.ErrInvalidAPISession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.gate.Admit(context.Background(), tc.token, tc.chain)
			var refused *gate.RefusedError
			if !errors.As(err, &refused) || refused.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			if !errors.Is(err, tc.sentinel) || !errors.Is(err, gate.ErrRefused) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			if errors.Is(err, gate.ErrCertificateNotBound) {
				t.Errorf("%v matches a sentinel of another code", err)
			}
		})
	}
	if n := h.admissions(); n != 0 {
		t.Errorf("the controller was asked %d times, want never", n)
	}
}

func TestAdmitAsksTheController(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	certA, certB := leaf(t, "a"), leaf(t, "b")
	fake.Admit("token-a", certA, grant("A"))
	fake.Admit("token-b", certB, grant("B"))

	for _, tc := range []struct {
		name     string
		token    string
		cert     *x509.Certificate
		session  string
		sentinel error
	}{
		{"own certificate and token", "token-a", certA, "A", nil},
		{"another session's certificate", "token-a", certB, "", gate.ErrCertificateNotBound},
		{"unknown token", "no-such-token", certA, "", gate.ErrInvalidAPISession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm, err := h.gate.Admit(context.Background(), tc.token, []*x509.Certificate{tc.cert})
			if tc.sentinel != nil {
				if !errors.Is(err, tc.sentinel) {
					t.Errorf("err = %v, want %v", err, tc.sentinel)
				}
				return
			}
			if err != nil || adm.APISessionID != tc.session ||
				adm.IdentityName != "name-"+tc.session {
				t.Errorf("admission = %+v, %v; want session %s", adm, err, tc.session)
			}
		})
	}
}

func TestGrantsAreCachedRefusalsAreNot(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	cert := leaf(t, "a")
	chain := []*x509.Certificate{cert}
	ctx := context.Background()
	fake.Admit("token-a", cert, grant("A"))

	// Before Run follows the stream, no grant is cached: nothing would
	// remove it.
	for range 2 {
		if _, err := h.gate.Admit(ctx, "token-a", chain); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.admissions(); n != 2 {
		t.Fatalf("before Run: %d controller calls, want 2", n)
	}

	h.run(t)
	for range 3 {
		if _, err := h.gate.Admit(ctx, "token-a", chain); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.admissions(); n != 3 {
		t.Fatalf("following: %d controller calls, want 3 (one more)", n)
	}

	// A refusal is asked again each time, so a later grant shows at once.
	other := leaf(t, "b")
	_, err := h.gate.Admit(ctx, "token-b", []*x509.Certificate{other})
	if !errors.Is(err, gate.ErrRefused) {
		t.Fatalf("before the grant: %v, want a refusal", err)
	}
	fake.Admit("token-b", other, grant("B"))
	if _, err := h.gate.Admit(ctx, "token-b", []*x509.Certificate{other}); err != nil {
		t.Fatalf("after the grant: %v", err)
	}
}

func TestCachedGrantExpiresOnRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant func(g *gatetest.Grant, now time.Time)
	}{
		{"session expiry", func(g *gatetest.Grant, now time.Time) {
			g.SessionExpiresAt = now.Add(time.Minute)
		}},
		{"certificate expiry", func(g *gatetest.Grant, now time.Time) {
			g.CertificateValidTo = now.Add(time.Minute)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := gatetest.Start(t, gatetest.Options{})
			clk := newClock()
			h := newHarness(t, fake, func(c *gate.Config) {
				c.Now, c.MaxStale = clk.Now, time.Hour
			})
			h.run(t)
			cert := leaf(t, "a")
			g := grant("A")
			tc.grant(&g, clk.Now())
			fake.Admit("token-a", cert, g)
			chain := []*x509.Certificate{cert}

			for _, step := range []struct {
				advance time.Duration
				calls   int
			}{
				{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2},
			} {
				clk.Advance(step.advance)
				if _, err := h.gate.Admit(context.Background(), "token-a", chain); err != nil {
					t.Fatal(err)
				}
				if n := h.admissions(); n != step.calls {
					t.Errorf("after %s more: %d controller calls, want %d",
						step.advance, n, step.calls)
				}
			}
		})
	}
}

func TestConcurrentMissesShareOneCall(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	cert := leaf(t, "a")
	fake.Admit("token-a", cert, grant("A"))
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	fake.SetAdmitHook(func(string) {
		arrived <- struct{}{}
		<-release
	})

	const callers = 20
	var wg sync.WaitGroup
	results := make([]*gate.Admission, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			results[i], errs[i] = h.gate.Admit(context.Background(), "token-a",
				[]*x509.Certificate{cert})
		})
	}
	<-arrived
	// A waiter whose context ends leaves; the others keep waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{cert})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()

	for i := range callers {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("caller %d: %+v, %v; want the shared admission", i, results[i], errs[i])
		}
	}
	if n := h.admissions(); n != 1 {
		t.Errorf("%d controller calls for %d concurrent misses, want 1", n, callers)
	}
}

// TestRemovalOvertakesGrant holds a grant in flight while its session or
// certificate is removed and the event is applied: the late grant must be
// refused, not cached, and a connection must not be trackable with it.
func TestRemovalOvertakesGrant(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remove   func(fake *gatetest.Controller, cert *x509.Certificate)
		kind     gate.RemovalKind
		sentinel error
	}{
		{"session removed", func(f *gatetest.Controller, _ *x509.Certificate) {
			f.RemoveSession("A")
		}, gate.RemovedSession, gate.ErrInvalidAPISession},
		{"certificate deleted", func(f *gatetest.Controller, c *x509.Certificate) {
			f.DeleteCertificate("A", c)
		}, gate.RemovedCertificates, gate.ErrCertificateNotBound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := gatetest.Start(t, gatetest.Options{})
			h := newHarness(t, fake, nil)
			h.run(t)
			cert := leaf(t, "a")
			chain := []*x509.Certificate{cert}
			fake.Admit("token-a", cert, grant("A"))

			decided, release := make(chan struct{}), make(chan struct{})
			fake.SetAdmitHook(func(string) {
				close(decided)
				<-release
			})
			result := make(chan error, 1)
			go func() {
				_, err := h.gate.Admit(context.Background(), "token-a", chain)
				result <- err
			}()
			<-decided // the controller has granted; the answer is held
			tc.remove(fake, cert)
			h.waitRemoval(t, tc.kind)
			fake.SetAdmitHook(nil)
			close(release)

			if err := <-result; !errors.Is(err, tc.sentinel) {
				t.Fatalf("late grant: %v, want %v", err, tc.sentinel)
			}
			_, err := h.gate.Admit(context.Background(), "token-a", chain)
			if !errors.Is(err, gate.ErrRefused) {
				t.Errorf("next admit: %v, want a refusal from the controller", err)
			}
			if n := h.admissions(); n != 2 {
				t.Errorf("%d controller calls, want 2: the late grant must not be cached", n)
			}
		})
	}
}

// TestGrantOlderThanCursorIsAskedAgain holds a grant in flight while Run
// takes its first cursor: a removal between that grant and the cursor
// would never arrive as an event, so the gate asks again rather than keep
// it, and caches the fresh answer.
func TestGrantOlderThanCursorIsAskedAgain(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	cert := leaf(t, "a")
	chain := []*x509.Certificate{cert}
	fake.Admit("token-a", cert, grant("A"))

	decided, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fake.SetAdmitHook(func(string) {
		once.Do(func() {
			close(decided)
			<-release
		})
	})
	result := make(chan error, 1)
	go func() {
		_, err := h.gate.Admit(context.Background(), "token-a", chain)
		result <- err
	}()
	<-decided
	h.run(t) // the cursor is taken while the grant is held
	close(release)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if n := h.admissions(); n != 2 {
		t.Fatalf("%d controller calls, want 2: the grant older than the cursor is asked again", n)
	}
	if _, err := h.gate.Admit(context.Background(), "token-a", chain); err != nil {
		t.Fatal(err)
	}
	if n := h.admissions(); n != 2 {
		t.Errorf("%d controller calls, want 2: the fresh grant is cached", n)
	}
}

// TestTrackAfterRemoval removes a session between Admit and Track: the
// connection is closed at once and Track says why.
func TestTrackAfterRemoval(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	cert := leaf(t, "a")
	fake.Admit("token-a", cert, grant("A"))
	adm, err := h.gate.Admit(context.Background(), "token-a", []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	fake.RemoveSession("A")
	h.waitRemoval(t, gate.RemovedSession)

	c := newCloser()
	release, err := h.gate.Track(adm, c)
	release()
	if !errors.Is(err, gate.ErrInvalidAPISession) || !c.isClosed() {
		t.Errorf("Track after removal: %v, closed=%v; want ErrInvalidAPISession and closed",
			err, c.isClosed())
	}
}

// TestTrackNeedsTheCurrentCursor grants an admission before Run takes its
// first cursor and deletes the certificate before that cursor too: the
// delete's event will never arrive, so Track must not bind a connection to
// the early grant, neither before Run nor after. A grant made once the gate
// follows the stream binds, and its removal closes the connection.
func TestTrackNeedsTheCurrentCursor(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	ctx := context.Background()
	deleted, kept := leaf(t, "deleted"), leaf(t, "kept")
	fake.Admit("token-a", deleted, grant("A"))
	fake.Admit("token-a", kept, grant("A"))
	early, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{deleted})
	if err != nil {
		t.Fatal(err)
	}
	c := newCloser()
	if _, err := h.gate.Track(early, c); !errors.Is(err, gate.ErrNotFollowing) {
		t.Errorf("Track before Run: %v, want ErrNotFollowing", err)
	}
	fake.DeleteCertificate("A", deleted)

	h.run(t)
	if _, err := h.gate.Track(early, c); !errors.Is(err, gate.ErrNotFollowing) {
		t.Errorf("Track of a grant older than the cursor: %v, want ErrNotFollowing", err)
	}
	if c.isClosed() || h.gate.Stats().TrackedConnections != 0 {
		t.Errorf("closed=%v, tracked=%d; want the connection left open and not tracked",
			c.isClosed(), h.gate.Stats().TrackedConnections)
	}
	_, err = h.gate.Admit(ctx, "token-a", []*x509.Certificate{deleted})
	if !errors.Is(err, gate.ErrCertificateNotBound) {
		t.Errorf("fresh admission of the deleted certificate: %v, want refused", err)
	}

	fresh, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{kept})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.gate.Track(fresh, c); err != nil {
		t.Fatalf("Track of a grant made while following: %v", err)
	}
	fake.RemoveSession("A")
	waitClosed(t, c, "after the session's removal")
}

func TestRemovalsCloseTrackedConnections(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	ctx := context.Background()
	a1, a2, b1 := leaf(t, "a1"), leaf(t, "a2"), leaf(t, "b1")
	fake.Admit("token-a", a1, grant("A"))
	fake.Admit("token-a", a2, grant("A"))
	fake.Admit("token-b", b1, grant("B"))
	track := func(token string, cert *x509.Certificate) (*closer, func()) {
		adm, err := h.gate.Admit(ctx, token, []*x509.Certificate{cert})
		if err != nil {
			t.Fatal(err)
		}
		c := newCloser()
		release, err := h.gate.Track(adm, c)
		if err != nil {
			t.Fatal(err)
		}
		return c, release
	}
	connA1, _ := track("token-a", a1)
	connA2, _ := track("token-a", a2)
	connB1, _ := track("token-b", b1)
	released, release := track("token-b", b1)
	release()
	release() // idempotent
	if n := h.gate.Stats().TrackedConnections; n != 3 {
		t.Fatalf("tracked = %d, want 3", n)
	}

	fake.DeleteCertificate("A", a1)
	r := h.waitRemoval(t, gate.RemovedCertificates)
	if r.Connections != 1 || r.Admissions != 1 || !connA1.isClosed() || connA2.isClosed() {
		t.Errorf("certificate delete: %+v, a1 closed=%v, a2 closed=%v; want only a1 closed",
			r, connA1.isClosed(), connA2.isClosed())
	}
	fake.RemoveSession("A")
	if r := h.waitRemoval(t, gate.RemovedSession); r.Connections != 1 || !connA2.isClosed() {
		t.Errorf("session removal: %+v, a2 closed=%v", r, connA2.isClosed())
	}
	if connB1.isClosed() || released.isClosed() {
		t.Error("B's connections were closed with A's session")
	}
	if n := h.gate.Stats().TrackedConnections; n != 1 {
		t.Errorf("tracked = %d, want 1", n)
	}
}

// TestResumesFromCursor cuts the gate off, removes a session meanwhile,
// and checks the removal arrives once the stream is back.
func TestResumesFromCursor(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	cert := leaf(t, "a")
	fake.Admit("token-a", cert, grant("A"))
	adm, err := h.gate.Admit(context.Background(), "token-a", []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	conn := newCloser()
	if _, err := h.gate.Track(adm, conn); err != nil {
		t.Fatal(err)
	}

	fake.SetDown(true)
	fake.RemoveSession("A")
	time.Sleep(100 * time.Millisecond) // a few failed reconnects
	if conn.isClosed() {
		t.Fatal("closed while the controller was down: the event cannot have arrived")
	}
	fake.SetDown(false)
	waitClosed(t, conn, "after reconnect")
	if r := h.waitRemoval(t, gate.RemovedSession); r.APISessionID != "A" || r.Source != "event" {
		t.Errorf("removal = %+v", r)
	}
}

// TestCursorExpiredResets loses more events than the history holds while
// cut off: the gate drops everything, closes every connection and follows
// again from the current cursor.
func TestCursorExpiredResets(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{History: 2})
	h := newHarness(t, fake, nil)
	h.run(t)
	ctx := context.Background()
	certA, certB := leaf(t, "a"), leaf(t, "b")
	fake.Admit("token-a", certA, grant("A"))
	fake.Admit("token-b", certB, grant("B"))
	var conns []*closer
	for _, x := range []struct {
		token string
		cert  *x509.Certificate
	}{{"token-a", certA}, {"token-b", certB}} {
		adm, err := h.gate.Admit(ctx, x.token, []*x509.Certificate{x.cert})
		if err != nil {
			t.Fatal(err)
		}
		c := newCloser()
		if _, err := h.gate.Track(adm, c); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	fake.SetDown(true)
	for _, id := range []string{"X", "Y", "Z"} {
		fake.RemoveSession(id)
	}
	fake.SetDown(false)

	r := h.waitRemoval(t, gate.RemovedAll)
	if r.Source != "cursor expired" || r.Admissions != 2 || r.Connections != 2 {
		t.Errorf("reset = %+v, want 2 admissions and 2 connections", r)
	}
	for i, c := range conns {
		waitClosed(t, c, "connection "+string(rune('A'+i)))
	}

	// Following again: a grant is cached, and a new removal arrives.
	deadline := time.Now().Add(5 * time.Second)
	for !h.gate.Stats().Following && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	before := h.admissions()
	for range 2 {
		if _, err := h.gate.Admit(ctx, "token-b", []*x509.Certificate{certB}); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.admissions() - before; n != 1 {
		t.Errorf("after the reset: %d controller calls for two admits, want 1", n)
	}
	fake.RemoveSession("B")
	if r := h.waitRemoval(t, gate.RemovedSession); r.APISessionID != "B" || r.Admissions != 1 {
		t.Errorf("removal after reset = %+v", r)
	}
}

// TestHeartbeats reports tracked and recently used sessions and treats the
// ended ones as removed, even when no event told.
func TestHeartbeats(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, func(c *gate.Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	h.run(t)
	ctx := context.Background()
	certA, certB := leaf(t, "a"), leaf(t, "b")
	fake.Admit("token-a", certA, grant("A"))
	fake.Admit("token-b", certB, grant("B"))
	adm, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{certA})
	if err != nil {
		t.Fatal(err)
	}
	conn := newCloser()
	if _, err := h.gate.Track(adm, conn); err != nil {
		t.Fatal(err)
	}
	// B has no connection, but its grant is used from the cache.
	for range 2 {
		if _, err := h.gate.Admit(ctx, "token-b", []*x509.Certificate{certB}); err != nil {
			t.Fatal(err)
		}
	}

	// Both are reported: A for its connection, B for its cache hit.
	deadline := time.Now().Add(5 * time.Second)
	for !heartbeatNamed(fake, "A", "B") {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeats %v: want one naming A (tracked) and B (cache hit)",
				fake.Heartbeats())
		}
		time.Sleep(10 * time.Millisecond)
	}

	fake.EndQuietly("A")
	waitClosed(t, conn, "after a heartbeat named A ended")
	r := h.waitRemoval(t, gate.RemovedSession)
	if r.APISessionID != "A" || r.Source != "heartbeat" {
		t.Errorf("removal = %+v, want A from a heartbeat", r)
	}
}

// heartbeatNamed says whether one heartbeat named all of ids.
func heartbeatNamed(fake *gatetest.Controller, ids ...string) bool {
	for _, got := range fake.Heartbeats() {
		all := true
		for _, id := range ids {
			all = all && slices.Contains(got, id)
		}
		if all {
			return true
		}
	}
	return false
}

// TestBrokenStreamBypassesCache breaks the event stream while the
// controller still answers admissions, and deletes a certificate whose
// grant is cached: its event cannot arrive, yet from the first failed poll
// every decision goes to the controller, which refuses it. Once a poll
// succeeds again, the cache serves again.
func TestBrokenStreamBypassesCache(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	clk := newClock() // stands still: MaxStale cannot be what stops the cache
	h := newHarness(t, fake, func(c *gate.Config) { c.Now, c.MaxStale = clk.Now, time.Hour })
	h.run(t)
	kept, deleted := leaf(t, "kept"), leaf(t, "deleted")
	fake.Admit("token-a", kept, grant("A"))
	fake.Admit("token-a", deleted, grant("A"))
	admit := func(cert *x509.Certificate) error {
		_, err := h.gate.Admit(context.Background(), "token-a", []*x509.Certificate{cert})
		return err
	}
	for _, cert := range []*x509.Certificate{kept, deleted, kept, deleted} {
		if err := admit(cert); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.admissions(); n != 2 {
		t.Fatalf("%d controller calls, want 2: both grants cached", n)
	}

	fake.SetEventsDown(true)
	fake.DeleteCertificate("A", deleted)
	deadline := time.Now().Add(5 * time.Second)
	for err := admit(deleted); !errors.Is(err, gate.ErrCertificateNotBound); err = admit(deleted) {
		if time.Now().After(deadline) {
			t.Fatalf("deleted certificate with the stream broken: %v; want the controller's "+
				"refusal, not the cached grant", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := h.admissions()
	if err := admit(kept); err != nil || h.admissions() != before+1 {
		t.Errorf("other certificate with the stream broken: %v, %d calls; want the controller "+
			"asked", err, h.admissions()-before)
	}
	if h.gate.Stats().Current {
		t.Error("Stats says the cache is current while the stream is broken")
	}

	fake.SetEventsDown(false)
	if r := h.waitRemoval(t, gate.RemovedCertificates); r.Source != "event" {
		t.Errorf("removal = %+v, want the delete from the resumed stream", r)
	}
	h.waitCurrent(t)
	before = h.admissions()
	if err := admit(kept); err != nil || h.admissions() != before {
		t.Errorf("after the stream is back: %v, %d calls; want the cached grant",
			err, h.admissions()-before)
	}
}

// TestSilentStreamBypassesCache keeps a long poll open and silent for
// longer than MaxStale: the cache stops serving, decisions go to the
// controller, and fail while it is down.
func TestSilentStreamBypassesCache(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	clk := newClock()
	h := newHarness(t, fake, func(c *gate.Config) {
		// The poll outlasts the test: only the clock can make it stale.
		c.Now, c.EventWait, c.MaxStale = clk.Now, gate.MaxEventWait, 2*time.Minute
	})
	h.run(t)
	cert := leaf(t, "a")
	chain := []*x509.Certificate{cert}
	fake.Admit("token-a", cert, grant("A"))
	ctx := context.Background()

	for _, step := range []struct {
		name    string
		advance time.Duration
		calls   int
	}{
		{"first admission", 0, 1},
		{"within MaxStale", 90 * time.Second, 1},
		{"past MaxStale", time.Minute, 2},
	} {
		clk.Advance(step.advance)
		if _, err := h.gate.Admit(ctx, "token-a", chain); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if n := h.admissions(); n != step.calls {
			t.Errorf("%s: %d controller calls, want %d", step.name, n, step.calls)
		}
	}
	fake.SetDown(true)
	if _, err := h.gate.Admit(ctx, "token-a", chain); !errors.Is(err, gate.ErrUnavailable) {
		t.Errorf("past MaxStale with the controller down: %v, want ErrUnavailable", err)
	}
}

func TestLogsInAgainOn401(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	cert := leaf(t, "a")
	fake.Admit("token-a", cert, grant("A"))
	ctx := context.Background()
	if _, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{cert}); err != nil {
		t.Fatal(err)
	}
	fake.RevokeRouterSessions()
	if _, err := h.gate.Admit(ctx, "token-a", []*x509.Certificate{cert}); err != nil {
		t.Fatalf("after the router's session ended: %v", err)
	}
	if logins, _ := fake.Counts(); logins != 2 {
		t.Errorf("logins = %d, want 2", logins)
	}
}

func TestCredentialsThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     gatetest.Options
		password string
		want     error
	}{
		{"wrong password", gatetest.Options{}, "wrong", gate.ErrLoginRefused},
		{"identity is not a Router", gatetest.Options{NotRouter: true}, gatetest.Password,
			gate.ErrNotRouter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := gatetest.Start(t, tc.opts)
			h := newHarness(t, fake, func(c *gate.Config) { c.Password = tc.password })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.gate.Run(ctx); !errors.Is(err, tc.want) {
				t.Errorf("Run: %v, want %v", err, tc.want)
			}
			cert := leaf(t, "a")
			_, err := h.gate.Admit(ctx, "token", []*x509.Certificate{cert})
			if !errors.Is(err, tc.want) || errors.Is(err, gate.ErrRefused) {
				t.Errorf("Admit: %v, want %v and no refusal", err, tc.want)
			}
		})
	}
}

func TestRunOnceAtATime(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	h := newHarness(t, fake, nil)
	h.run(t)
	if err := h.gate.Run(context.Background()); !errors.Is(err, gate.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if h.gate.Stats().Following {
		t.Error("still following after Run returned")
	}
}

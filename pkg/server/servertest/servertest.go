// Package servertest starts a real sessioncert server for tests: the full
// handler chain over real TLS on 127.0.0.1, a bolt store in a temporary
// directory, a controllable clock, and a generated client that trusts the
// server's development CA.
package servertest

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// AdminPassword is the password of the admin identity of every test server
// unless Options.NoAdminPassword is set.
const AdminPassword = "test-admin-password"

// Clock is a settable clock for expiry tests. Its zero value reads the real
// time until Set or Advance is called. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

// Set fixes the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d, fixing it first if it was reading
// the real time.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	if c.now.IsZero() {
		c.now = time.Now()
	}
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Options adjust the server a test starts.
type Options struct {
	// Config changes the default configuration before the server starts.
	Config func(*server.Config)

	// DataDir reuses a data directory, to test restarts; default a new
	// temporary directory.
	DataDir string

	// Clock, when set, is the server's clock.
	Clock *Clock

	// JWKSClient fetches external signers' key sets (an httptest TLS
	// server's client, say).
	JWKSClient *http.Client

	// Logger receives the server's log; default discards it unless the
	// test runs with -v, where it goes to the test log.
	Logger *slog.Logger

	// WrapStore wraps the server's store, to inject faults under it.
	WrapStore func(store.Store) store.Store

	// WrapCASigner wraps the CA's signer, to stand in a faulty one.
	WrapCASigner func(crypto.Signer) crypto.Signer

	// Version is the build the server reports.
	Version handlers.VersionInfo

	// NoAdminPassword gives the server no admin password, as in production:
	// a first start takes SESSIONCERT_ADMIN_PASSWORD or generates one into
	// the data directory. By default the first admin's password is
	// AdminPassword.
	NoAdminPassword bool
}

// Env is a running server and the means to talk to it.
type Env struct {
	Server  *server.Server
	URL     string // https://127.0.0.1:port
	Host    string // 127.0.0.1:port
	DataDir string
	Clock   *Clock

	// RootCAs trusts the server's TLS certificate.
	RootCAs *x509.CertPool

	// HTTP is a client that trusts the server and sends no client
	// certificate.
	HTTP *http.Client

	t        testing.TB
	shutdown func() error
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	cfg, err := server.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	cfg.DataDir = o.DataDir
	cfg.Listen.Port = 0
	cfg.Listen.ShutdownTimeout = 5 * time.Second
	if o.Config != nil {
		o.Config(&cfg)
	}
	if o.Clock == nil {
		o.Clock = &Clock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}

	deps := server.Deps{
		Now:    o.Clock.Now,
		Logger: o.Logger,
		// Cheap hashes keep tests fast under -race; the real parameters
		// are exercised by the auth package's own tests and by make bench.
		HashParams:    auth.HashParams{Time: 1, Memory: 64, Threads: 1},
		AdminPassword: AdminPassword,
		JWKSClient:    o.JWKSClient,
		WrapStore:     o.WrapStore,
		WrapCASigner:  o.WrapCASigner,
		Version:       o.Version,
	}
	if o.NoAdminPassword {
		deps.AdminPassword = ""
	}
	srv, err := server.New(cfg, deps)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ln, err := srv.Listen()
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	e := &Env{
		Server:  srv,
		Host:    ln.Addr().String(),
		URL:     "https://" + ln.Addr().String(),
		DataDir: o.DataDir,
		Clock:   o.Clock,
	}
	e.RootCAs = x509.NewCertPool()
	bundle, err := os.ReadFile(filepath.Join(o.DataDir, "pki", "ca-bundle.pem"))
	if err != nil || !e.RootCAs.AppendCertsFromPEM(bundle) {
		t.Fatalf("read development ca bundle: %v", err)
	}
	e.HTTP = e.NewHTTPClient(nil)

	var once sync.Once
	e.shutdown = func() error {
		var err error
		once.Do(func() {
			cancel()
			if serveErr := <-done; serveErr != nil {
				err = fmt.Errorf("serve: %w", serveErr)
			}
			if closeErr := srv.Close(); closeErr != nil {
				err = errors.Join(err, fmt.Errorf("close: %w", closeErr))
			}
		})
		return err
	}
	e.t = t
	t.Cleanup(e.Stop)
	return e
}

// Stop shuts the server down gracefully, as SIGTERM does, and fails the
// test if that went wrong. Tests that restart a server on the same data
// directory call it before starting the next.
func (e *Env) Stop() {
	if err := e.shutdown(); err != nil {
		e.t.Errorf("stop the server: %v", err)
	}
}

// Shutdown shuts the server down as Stop does and returns the errors of
// Serve and Close instead of failing the test. Only the first of Shutdown
// and Stop does anything; later calls return nil.
func (e *Env) Shutdown() error { return e.shutdown() }

// NewHTTPClient returns a client that trusts the server and presents cert,
// if not nil, as its client certificate.
func (e *Env) NewHTTPClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: e.RootCAs, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   cfg,
			ForceAttemptHTTP2: true,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
}

// Client returns the generated client over httpClient (e.HTTP when nil).
func (e *Env) Client(httpClient *http.Client) *client.Sessioncert {
	if httpClient == nil {
		httpClient = e.HTTP
	}
	rt := httptransport.NewWithClient(e.Host, client.DefaultBasePath, []string{"https"}, httpClient)
	return client.New(rt, strfmt.Default)
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

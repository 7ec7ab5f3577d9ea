package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// TestSIGTERMDuringIssuance sends SIGTERM to the server process in the
// middle of a burst of issuance. Every request either completes with 201,
// and its certificate is still there after a restart, or never reached a
// handler; and activity written only in memory is flushed on the way down.
func TestSIGTERMDuringIssuance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	p := servertest.StartProcess(t, "", "--cert-rate-burst", "0", "--max-certs-per-session", "0")
	e := p.Env()
	s := e.Admin(t)
	_, csr := servertest.NewCSR(t)
	before, err := e.Client(nil).CurrentAPISession.GetCurrentAPISession(
		&current_api_session.GetCurrentAPISessionParams{}, s.Auth)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)

	var (
		mu      sync.Mutex
		created = map[string]bool{}
		failed  int
	)
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.Client(e.NewHTTPClient(nil)).CurrentAPISession
			for range 200 {
				res, err := c.CreateCurrentAPISessionCertificate(
					&current_api_session.CreateCurrentAPISessionCertificateParams{
						SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
					}, s.Auth)
				mu.Lock()
				if err == nil {
					created[*res.Payload.Data.ID] = true
					if len(created) >= 20 {
						once.Do(func() { close(started) })
					}
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					// Any reply at all would be a status: after SIGTERM the
					// only acceptable failure is a refused or closed
					// connection.
					var apiErr interface{ Code() int }
					if errors.As(err, &apiErr) {
						t.Errorf("a request got status %d during shutdown", apiErr.Code())
					}
					return
				}
			}
		}()
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the burst did not get going")
	}
	p.Signal(t, syscall.SIGTERM)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("server exit: %v\n%s", err, p.Logs())
	}
	t.Logf("%d certificates created, %d requests cut off by the shutdown", len(created), failed)

	// The session's activity during the burst reached the store at
	// shutdown, although the flush interval had not passed.
	st, err := bolt.Open(filepath.Join(p.DataDir, "sessioncert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetAPISession(ctx, s.ID)
	_ = st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !stored.LastActivityAt.After(time.Time(before.Payload.Data.LastActivityAt)) {
		t.Errorf("stored lastActivityAt %v is not later than %v, before the burst",
			stored.LastActivityAt, before.Payload.Data.LastActivityAt)
	}

	// Restart on the same data: every 201'd certificate is there, and no
	// other.
	p2 := servertest.StartProcess(t, p.DataDir)
	e2 := p2.Env()
	listed := map[string]bool{}
	for offset := int64(0); ; offset += 500 {
		limit := int64(500)
		res, err := e2.Client(nil).CurrentAPISession.ListCurrentAPISessionCertificates(
			&current_api_session.ListCurrentAPISessionCertificatesParams{Limit: &limit, Offset: &offset}, s.Auth)
		if err != nil {
			t.Fatalf("list after restart: %v", err)
		}
		for _, c := range res.Payload.Data {
			listed[*c.ID] = true
		}
		if len(res.Payload.Data) < 500 {
			break
		}
	}
	for id := range created {
		if !listed[id] {
			t.Errorf("certificate %s was answered 201 but is gone after the restart", id)
		}
	}
	if len(listed) != len(created) {
		t.Errorf("%d certificates stored, %d answered 201", len(listed), len(created))
	}
}

// blockingStore holds CreateCertificate while block is set, until release
// is closed, and notes whether the store was closed under such a call.
type blockingStore struct {
	store.Store
	block      atomic.Bool
	entered    chan struct{}
	enterOnce  sync.Once
	release    chan struct{}
	busy       atomic.Int32
	closedBusy chan struct{} // closed when Close finds a call in progress
	closed     atomic.Bool
}

func (b *blockingStore) CreateCertificate(ctx context.Context, c *store.Certificate, maxLive int,
	now time.Time) error {
	b.busy.Add(1)
	defer b.busy.Add(-1)
	if b.block.Load() {
		b.enterOnce.Do(func() { close(b.entered) })
		<-b.release
	}
	return b.Store.CreateCertificate(ctx, c, maxLive, now)
}

func (b *blockingStore) Close() error {
	if b.busy.Load() > 0 {
		close(b.closedBusy)
	}
	b.closed.Store(true)
	return b.Store.Close()
}

// TestShutdownPastTheTimeout holds an issuance inside the store past
// --shutdown-timeout. The server then cuts the connection, so the client is
// not left waiting, and keeps the store and the audit trail open until the
// handler has returned: whatever the handler stored, the audit trail has.
func TestShutdownPastTheTimeout(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}), release: make(chan struct{}),
		closedBusy: make(chan struct{})}
	e := servertest.Start(t, servertest.Options{
		Config:    func(c *server.Config) { c.Listen.ShutdownTimeout = 200 * time.Millisecond },
		WrapStore: func(st store.Store) store.Store { bs.Store = st; return bs },
	})
	s := e.Admin(t)
	_, csr := servertest.NewCSR(t)
	bs.block.Store(true)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(bs.release) }) }
	t.Cleanup(release)

	issued := make(chan error, 1)
	go func() {
		_, err := e.Client(e.NewHTTPClient(nil)).CurrentAPISession.CreateCurrentAPISessionCertificate(
			&current_api_session.CreateCurrentAPISessionCertificateParams{
				SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
			}, s.Auth)
		issued <- err
	}()
	<-bs.entered
	stopped := make(chan error, 1)
	go func() { stopped <- e.Shutdown() }()

	select {
	case err := <-issued:
		var status interface{ Code() int }
		var netErr net.Error
		switch {
		case err == nil:
			t.Fatal("the held issuance was answered")
		case errors.As(err, &status):
			t.Fatalf("the held issuance got status %d", status.Code())
		case errors.As(err, &netErr) && netErr.Timeout():
			t.Fatalf("the connection was not cut at the shutdown timeout: %v", err)
		}
	case <-bs.closedBusy:
		t.Fatal("the store was closed under a running handler")
	}
	if bs.closed.Load() {
		t.Fatal("the store was closed before the handler returned")
	}
	release()
	if err := <-stopped; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown: %v, want the shutdown timeout reported", err)
	}
	select {
	case <-bs.closedBusy:
		t.Error("the store was closed under a running handler")
	default:
	}

	// Whatever the handler stored, the audit trail has, and nothing else.
	st, err := bolt.Open(filepath.Join(e.DataDir, "sessioncert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, stored, err := st.ListCertificates(context.Background(), s.ID, time.Now(), store.Page{Limit: 1})
	_ = st.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	audited := strings.Count(string(data), `"type":"`+audit.TypeCertificateIssued+`"`) -
		strings.Count(string(data), `"type":"`+audit.TypeCertificateDeleted+`"`)
	if stored != audited {
		t.Errorf("%d certificates stored, %d audited as issued", stored, audited)
	}
}

// versionFlags builds the server as the Makefile does, with a version,
// revision and build date of the test's choosing.
var versionFlags = []string{"-ldflags", "-X github.com/sessioncert/sessioncert/pkg/version.Version=v9.8.7 " +
	"-X github.com/sessioncert/sessioncert/pkg/version.Revision=0123abcd " +
	"-X github.com/sessioncert/sessioncert/pkg/version.BuildDate=2026-01-02T03:04:05Z"}

// TestVersionFlag runs sessioncert-server --version: it prints the version,
// revision and build date set at build time and exits 0, whatever else is
// wrong with the command line or the configuration file.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server binary")
	}
	bin := servertest.Build(t, "./cmd/sessioncert-server", versionFlags...)
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	badValue := filepath.Join(dir, "bad.ini")
	for path, content := range map[string]string{unknownKey: "no-such-setting: 1\n", badValue: "port = many\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const want = "sessioncert-server v9.8.7 (revision 0123abcd, built 2026-01-02T03:04:05Z)\n"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"alone", []string{"--version"}, nil},
		{"missing config file", []string{"--config", filepath.Join(dir, "absent.yaml"), "--version"}, nil},
		{"config file with an unknown key", []string{"--version", "--config=" + unknownKey}, nil},
		{"config file with a bad value", []string{"--config", badValue, "--version"}, nil},
		{"config file from the environment", []string{"--version"}, []string{"SESSIONCERT_CONFIG=" + unknownKey}},
		{"bad flag beside it", []string{"--port", "many", "--version"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, stderr.String())
			}
			if string(out) != want {
				t.Errorf("printed %q, want %q", out, want)
			}
		})
	}
}

// TestConfigFileUnknownKeyStopsTheBinary starts the built server with a
// configuration file, YAML or INI, that holds a key naming no flag: it
// exits non-zero before serving or touching its data directory, and its
// error names the file and the key.
func TestConfigFileUnknownKeyStopsTheBinary(t *testing.T) {
	bin := servertest.Build(t, "./cmd/sessioncert-server")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, content, key string
	}{
		{"yaml", "server.yaml", "session-timeout: 45m\nsesion-timeout: 45m\n", "sesion-timeout"},
		{"ini", "server.ini", "[server]\nport = 1280\nlisten-port = 1280\n", "listen-port"},
		{"a flag that is not a setting", "server.yml", "version: true\n", "version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--config", path, "--data-dir", data, "--port", "0")
			cmd.Env = append(os.Environ(), "SESSIONCERT_ADMIN_PASSWORD="+servertest.AdminPassword)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2\n%s", err, out)
			}
			want := "config file " + path + ": unknown setting " + `"` + tc.key + `"`
			if !strings.Contains(string(out), want) {
				t.Errorf("output %q does not say %q", out, want)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was created (%v): the server went on", err)
			}
		})
	}
}

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStartupLogLine reads the one line the server logs when it starts
// serving: version, listen address, the docs and metrics URLs, the store,
// and the CA's subject and expiry, with metrics on the API listener or on
// their own.
func TestStartupLogLine(t *testing.T) {
	for _, tc := range []struct {
		name        string
		metricsAddr string
	}{
		{"metrics on the API listener", ""},
		{"metrics on their own address", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			e := servertest.Start(t, servertest.Options{
				Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
				Version: handlers.VersionInfo{Version: "v9.8.7", Revision: "0123abcd"},
				Config:  func(c *server.Config) { c.Ops.MetricsAddr = tc.metricsAddr },
			})
			// The API serves only once the line is written.
			if status, _ := get(t, e, "/edge/client/v1/version"); status != http.StatusOK {
				t.Fatalf("version: %d", status)
			}
			var line map[string]any
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if err := jsonUnmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("log line is not JSON: %s", l)
				}
				if rec["msg"] == "serving" {
					if line != nil {
						t.Error("more than one start-up line")
					}
					line = rec
				}
			}
			if line == nil {
				t.Fatalf("no start-up line in:\n%s", logs.String())
			}
			ca := e.Server.CA().Certificate()
			metrics, _ := line["metrics"].(string)
			for key, want := range map[string]string{
				"version":    "v9.8.7",
				"listen":     e.Host,
				"url":        e.URL,
				"docs":       e.URL + "/docs",
				"store":      "bolt " + filepath.Join(e.DataDir, "sessioncert.db"),
				"ca":         ca.Subject.String(),
				"caNotAfter": ca.NotAfter.UTC().Format(time.RFC3339),
			} {
				got, _ := line[key].(string)
				if key == "caNotAfter" {
					if at, err := time.Parse(time.RFC3339Nano, got); err == nil {
						got = at.UTC().Format(time.RFC3339)
					}
				}
				if got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			wantMetrics := e.URL + "/metrics"
			if tc.metricsAddr != "" {
				wantMetrics = "http://127.0.0.1:"
			}
			if !strings.HasPrefix(metrics, wantMetrics) || !strings.HasSuffix(metrics, "/metrics") {
				t.Errorf("metrics = %q, want %s...", metrics, wantMetrics)
			}
			// The URL in the line is where the metrics are.
			resp, err := e.HTTP.Get(metrics)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s", metrics, resp.Status)
			}
		})
	}
}

// TestSIGTERMReleasesLongPolls sends SIGTERM while a router waits in a
// long poll that would outlast the shutdown timeout: the poll is answered
// at once, empty, and the server exits cleanly instead of running into the
// timeout.
func TestSIGTERMReleasesLongPolls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	p := servertest.StartProcess(t, "", "--shutdown-timeout", "20s")
	e := p.Env()
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	c := e.Client(nil)
	start, err := c.Router.ListEvents(&router.ListEventsParams{}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		ok  *router.ListEventsOK
		err error
	}
	polled := make(chan result, 1)
	go func() {
		wait := int64(60) // longer than the shutdown timeout
		ok, err := c.Router.ListEvents(&router.ListEventsParams{After: start.Payload.Meta.Cursor, Wait: &wait},
			r.Auth)
		polled <- result{ok, err}
	}()
	waitForGauge(t, e, "sessioncert_event_waiters", 1)
	p.Signal(t, syscall.SIGTERM)

	res := <-polled
	if res.err != nil {
		t.Fatalf("the long poll was not answered: %v", res.err)
	}
	if n := len(res.ok.Payload.Data); n != 0 {
		t.Errorf("the released poll has %d events, want none", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Errorf("server exit: %v\n%s", err, p.Logs())
	}
}

package server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/audit"
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

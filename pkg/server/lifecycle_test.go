package server_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
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

package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/auth"
)

// TestHealthOutlivesTheAskingRequest runs the health checks for a request
// whose client has already gone: the store round trip must not end with
// it, since the cached report serves everyone else for a second.
func TestHealthOutlivesTheAskingRequest(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	s, err := New(cfg, Deps{
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		HashParams:    auth.HashParams{Time: 1, Memory: 64, Threads: 1},
		AdminPassword: "internal-test-password",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range s.health(gone) {
		if !c.Healthy {
			t.Errorf("check %s unhealthy for a departed client: %s", c.ID, c.Detail)
		}
	}
	// The next caller within the cache's second gets the same report.
	for _, c := range s.health(context.Background()) {
		if !c.Healthy {
			t.Errorf("check %s unhealthy for the next caller: %s", c.ID, c.Detail)
		}
	}
}

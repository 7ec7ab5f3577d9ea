package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// benchSessions measures password logins (bounded by argon2id) and the cost
// of resolving a session token on an authenticated request.
func benchSessions(r *report) error {
	dir, err := os.MkdirTemp("", "sessioncert-bench-sessions-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	st, err := bolt.Open(filepath.Join(dir, "bench.db"), bolt.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	ctx := context.Background()
	now := time.Now()
	id := &store.Identity{ID: "benchidentity", Name: "bench", Type: store.IdentityTypeUser, CreatedAt: now,
		UpdatedAt: now}
	if err := st.CreateIdentity(ctx, id); err != nil {
		return err
	}
	p := auth.DefaultHashParams
	hash, err := auth.HashPassword("bench-password", p, rand.Reader)
	if err != nil {
		return err
	}
	if err := st.CreateAuthenticator(ctx, &store.Authenticator{ID: "benchauth", IdentityID: id.ID,
		Method: store.AuthMethodPassword, Username: "bench", PasswordHash: hash, CreatedAt: now,
		UpdatedAt: now}); err != nil {
		return err
	}

	// Logins: the password check dominates by design.
	pw, err := auth.NewPassword(auth.PasswordConfig{Store: st, Params: p})
	if err != nil {
		return err
	}
	rate, err := loginRate(pw, "bench", "bench-password", 3*time.Second)
	if err != nil {
		return err
	}
	params := fmt.Sprintf("argon2id m=%d KiB t=%d p=%d, %d cores", p.Memory, p.Time, p.Threads,
		runtime.GOMAXPROCS(0))
	r.add("sessions", "password logins/s", fmt.Sprintf("%.0f", rate), params)
	known := loginLatency(pw, "bench", "wrong-password")
	unknown := loginLatency(pw, "nobody", "wrong-password")
	r.add("sessions", "failed login: wrong password / unknown user", fmt.Sprintf("%s / %s (ratio %.2f)",
		known.Round(time.Microsecond), unknown.Round(time.Microsecond), float64(unknown)/float64(known)),
		"median of 21; similar times do not reveal which usernames exist")

	// Token resolution on the hot path: from memory, coalesced activity.
	reg, err := session.New(session.Config{Store: st})
	if err != nil {
		return err
	}
	tok, _, err := reg.Create(ctx, session.CreateRequest{Identity: id, AuthenticatorID: "benchauth"})
	if err != nil {
		return err
	}
	var resolveErr error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := reg.Resolve(ctx, tok); err != nil {
					resolveErr = err
					return
				}
			}
		})
	})
	if resolveErr != nil {
		return resolveErr
	}
	r.add("sessions", "session lookup ns/op (parallel)", fmt.Sprintf("%d", res.NsPerOp()),
		fmt.Sprintf("%d allocs, %d B per lookup; from memory", res.AllocsPerOp(), res.AllocedBytesPerOp()))
	return nil
}

func loginRate(pw *auth.Password, user, password string, d time.Duration) (float64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	var failure atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := pw.Authenticate(context.Background(), user, password, "bench"); err != nil {
					failure.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := failure.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

func loginLatency(pw *auth.Password, user, password string) time.Duration {
	var ds []float64
	for range 21 {
		t0 := time.Now()
		_, err := pw.Authenticate(context.Background(), user, password, "bench")
		if err != nil && !errors.Is(err, auth.ErrInvalidAuth) {
			return 0
		}
		ds = append(ds, float64(time.Since(t0)))
	}
	return time.Duration(median(ds))
}

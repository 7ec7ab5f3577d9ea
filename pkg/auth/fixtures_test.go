package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// fixNow is the start of every clock in these tests. Whole seconds, so that
// certificate and token times compare exactly.
var fixNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock is a clock a test moves while an authenticator holds it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: fixNow} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openBoltStore opens a real bolt store in the test's temporary directory.
func openBoltStore(tb testing.TB) store.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "sessioncert.db"), bolt.Options{})
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// failingStore is a fake whose calls named in fail return err; every other
// call goes to the embedded store.
type failingStore struct {
	store.Store
	err           error
	failIdentity  bool
	failSigners   bool
	failFindByFpr bool

	// failFindByUsername may change while an authenticator runs.
	failFindByUsername atomic.Bool
}

func (f *failingStore) GetIdentity(ctx context.Context, id string) (*store.Identity, error) {
	if f.failIdentity {
		return nil, f.err
	}
	return f.Store.GetIdentity(ctx, id)
}

func (f *failingStore) ListExtJWTSigners(
	ctx context.Context,
	p store.Page,
) ([]*store.ExtJWTSigner, int, error) {
	if f.failSigners {
		return nil, 0, f.err
	}
	return f.Store.ListExtJWTSigners(ctx, p)
}

func (f *failingStore) FindAuthenticatorByUsername(
	ctx context.Context,
	username string,
) (*store.Authenticator, error) {
	if f.failFindByUsername.Load() {
		return nil, f.err
	}
	return f.Store.FindAuthenticatorByUsername(ctx, username)
}

func (f *failingStore) FindAuthenticatorByFingerprint(
	ctx context.Context,
	fingerprint string,
) (*store.Authenticator, error) {
	if f.failFindByFpr {
		return nil, f.err
	}
	return f.Store.FindAuthenticatorByFingerprint(ctx, fingerprint)
}

// Identities every fixture creates.
var (
	alice = &store.Identity{
		ID: "aliceaaaaaaaaaaa", Name: "alice", Type: store.IdentityTypeUser,
		ExternalID: "alice@example.com", CreatedAt: fixNow, UpdatedAt: fixNow,
	}
	bob = &store.Identity{
		ID: "bobbbbbbbbbbbbbb", Name: "bob", Type: store.IdentityTypeUser,
		CreatedAt: fixNow, UpdatedAt: fixNow,
	}
)

func createIdentities(tb testing.TB, s store.Store, ids ...*store.Identity) {
	tb.Helper()
	for _, id := range ids {
		cp := *id
		if err := s.CreateIdentity(context.Background(), &cp); err != nil {
			tb.Fatalf("CreateIdentity(%s): %v", id.Name, err)
		}
	}
}

// checkLogin checks the outcome of a login: success when want is "",
// otherwise a *LoginError with that reason that matches ErrInvalidAuth.
func checkLogin(tb testing.TB, res *Result, err error, want Reason) {
	tb.Helper()
	if want == "" {
		if err != nil {
			tb.Fatalf("login failed: %v", err)
		}
		if res == nil || res.Identity == nil || res.Authenticator == nil {
			tb.Fatalf("login gave an incomplete result %+v", res)
		}
		return
	}
	if err == nil {
		tb.Fatalf("login succeeded as %s, want reason %s", res.Identity.Name, want)
	}
	if !errors.Is(err, ErrInvalidAuth) {
		tb.Fatalf("error %v does not match ErrInvalidAuth", err)
	}
	var le *LoginError
	if !errors.As(err, &le) {
		tb.Fatalf("error %v is not a *LoginError", err)
	}
	if le.Reason != want {
		tb.Fatalf("reason = %s (%v), want %s", le.Reason, err, want)
	}
	if res != nil {
		tb.Fatalf("failed login returned a result %+v", res)
	}
}

// Keys are generated once per test binary: RSA generation is slow, and
// tests need only distinct keys, not fresh ones.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	rsaStranger = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func newECKey(tb testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatalf("ecdsa.GenerateKey: %v", err)
	}
	return k
}

func newEdKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("ed25519.GenerateKey: %v", err)
	}
	return k
}

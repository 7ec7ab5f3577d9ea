package session_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore is a real bolt store that counts activity writes.
type countingStore struct {
	store.Store
	touches atomic.Int64
	touched atomic.Int64
}

func (s *countingStore) TouchAPISessions(ctx context.Context, t []store.Touch) error {
	s.touches.Add(1)
	s.touched.Add(int64(len(t)))
	return s.Store.TouchAPISessions(ctx, t)
}

type fixture struct {
	store    *countingStore
	clock    *clock
	reg      *session.Registry
	identity *store.Identity
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	t.Helper()
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	f := &fixture{store: &countingStore{Store: bs}, clock: &clock{now: t0}}
	f.reg = f.newRegistry(t, timeout)
	f.identity = &store.Identity{ID: "identity1", Name: "alice", Type: store.IdentityTypeUser,
		CreatedAt: t0, UpdatedAt: t0}
	if err := bs.CreateIdentity(context.Background(), f.identity); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) newRegistry(t *testing.T, timeout time.Duration) *session.Registry {
	t.Helper()
	return f.newReplica(t, timeout, 0)
}

// newReplica returns another registry on the fixture's store, as a replica
// sharing an etcd cluster would have, revalidating its cache as given.
func (f *fixture) newReplica(t *testing.T, timeout, revalidate time.Duration) *session.Registry {
	t.Helper()
	reg, err := session.New(session.Config{
		Store:      f.store,
		Timeout:    timeout,
		Revalidate: revalidate,
		Now:        f.clock.Now,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func (f *fixture) login(t *testing.T) (string, *session.Session) {
	t.Helper()
	tok, s, err := f.reg.Create(context.Background(), session.CreateRequest{
		Identity: f.identity, AuthenticatorID: "authenticator1", AuthMethod: "password", IPAddress: "127.0.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok, s
}

func TestTokensAreStoredOnlyAsHashes(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	tok, s := f.login(t)
	if len(tok) != 43 {
		t.Errorf("token %d characters long, want 43 (32 bytes, URL-safe base64)", len(tok))
	}
	got, err := f.store.GetAPISession(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenHash != session.HashToken(tok) {
		t.Error("stored token hash is not the SHA-256 of the token")
	}
}

// TestExpirySlidesWithActivity checks that a session is refused the moment
// its idle timeout passes, before any sweep, and that activity slides it.
func TestExpirySlidesWithActivity(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	tok, _ := f.login(t)

	f.clock.Advance(9 * time.Minute)
	s, err := f.reg.Resolve(ctx, tok)
	if err != nil {
		t.Fatalf("at 9m: %v", err)
	}
	if want := t0.Add(19 * time.Minute); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt after activity at 9m = %v, want %v", s.ExpiresAt, want)
	}

	f.clock.Advance(10*time.Minute - time.Nanosecond)
	if _, err := f.reg.Resolve(ctx, tok); err != nil {
		t.Fatalf("just before the slid expiry: %v", err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.reg.Resolve(ctx, tok); !errors.Is(err, session.ErrInvalidToken) {
		t.Fatalf("after the idle timeout: %v, want ErrInvalidToken", err)
	}
	if _, err := f.reg.Resolve(ctx, "not a token"); !errors.Is(err, session.ErrInvalidToken) {
		t.Fatalf("unknown token: %v, want ErrInvalidToken", err)
	}
}

// TestActivityIsCoalesced shows that many requests cost one store write per
// flush, and that the write carries the newest activity.
func TestActivityIsCoalesced(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	tok, s := f.login(t)

	for range 1000 {
		f.clock.Advance(time.Millisecond)
		if _, err := f.reg.Resolve(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.store.touches.Load(); n != 0 {
		t.Fatalf("%d activity writes before a flush, want 0", n)
	}
	if err := f.reg.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, m := f.store.touches.Load(), f.store.touched.Load(); n != 1 || m != 1 {
		t.Errorf("flush wrote %d batches of %d sessions, want 1 of 1", n, m)
	}
	got, err := f.store.GetAPISession(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Second); !got.LastActivityAt.Equal(want) {
		t.Errorf("stored LastActivityAt = %v, want %v", got.LastActivityAt, want)
	}
	if err := f.reg.Flush(ctx); err != nil || f.store.touches.Load() != 1 {
		t.Errorf("an idle flush wrote again (err %v)", err)
	}
}

// TestSweepRemovesExpired checks the sweeper keeps active sessions whose
// activity was not flushed yet, and removes expired ones with an event.
func TestSweepRemovesExpired(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	active, _ := f.login(t)
	_, idle := f.login(t)
	cursor, err := f.store.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(9 * time.Minute)
	if _, err := f.reg.Resolve(ctx, active); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	n, err := f.reg.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", n, err)
	}
	if _, err := f.reg.Resolve(ctx, active); err != nil {
		t.Errorf("active session after the sweep: %v", err)
	}
	evs, err := f.store.Events(ctx, cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].APISessionID != idle.ID || evs[0].Cause != store.CauseExpiry {
		t.Errorf("events = %+v, want one expiry of %s", evs, idle.ID)
	}
	if f.reg.LastSweep().IsZero() {
		t.Error("LastSweep not recorded")
	}
}

// TestRemovalOnAnotherReplica shows a session deleted through another
// registry on the same store is refused here once the event arrives.
func TestRemovalOnAnotherReplica(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	other := f.newRegistry(t, 10*time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	tok, s := f.login(t)
	if _, err := f.reg.Resolve(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Let the follower reach the stream's head before the removal.
	time.Sleep(50 * time.Millisecond)
	if _, err := other.Delete(ctx, s.ID, store.CauseAdmin); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := f.reg.Resolve(ctx, tok)
		if errors.Is(err, session.ErrInvalidToken) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session deleted on another replica still resolves here: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestActivityOnAnotherReplicaKeepsSessionAlive shows that a replica whose
// cached copy of a session looks expired reads the session again before it
// refuses it: a client kept busy on another replica for longer than the
// idle timeout is still served here.
func TestActivityOnAnotherReplicaKeepsSessionAlive(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	here := f.newReplica(t, 10*time.Minute, 5*time.Second)
	tok, _ := f.login(t)
	if _, err := here.Resolve(ctx, tok); err != nil {
		t.Fatal(err)
	}

	// Fifteen minutes of traffic on the other replica, flushed as it would
	// be by its background flusher.
	for range 15 {
		f.clock.Advance(time.Minute)
		if _, err := f.reg.Resolve(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := f.reg.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	s, err := here.Resolve(ctx, tok)
	if err != nil {
		t.Fatalf("session kept alive on another replica is refused here: %v", err)
	}
	if want := t0.Add(25 * time.Minute); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (this request slides it)", s.ExpiresAt, want)
	}

	// And one idle for the whole timeout everywhere is refused.
	f.clock.Advance(10 * time.Minute)
	if _, err := here.Resolve(ctx, tok); !errors.Is(err, session.ErrInvalidToken) {
		t.Fatalf("after the idle timeout: %v, want ErrInvalidToken", err)
	}
}

// TestIdentityChangeReachesOtherReplicas shows that an admin flag taken away
// on one replica stops counting on another within the revalidation period,
// for a session that replica had cached.
func TestIdentityChangeReachesOtherReplicas(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	admin := *f.identity
	admin.ID, admin.Name, admin.IsAdmin = "identity2", "root", true
	if err := f.store.CreateIdentity(ctx, &admin); err != nil {
		t.Fatal(err)
	}
	here := f.newReplica(t, 10*time.Minute, 5*time.Second)
	tok, _, err := f.reg.Create(ctx, session.CreateRequest{Identity: &admin, AuthMethod: "password"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := here.Resolve(ctx, tok); err != nil || !s.Identity.IsAdmin {
		t.Fatalf("before the change: %+v, %v", s, err)
	}

	demoted := admin
	demoted.IsAdmin = false
	if err := f.store.UpdateIdentity(ctx, &demoted); err != nil {
		t.Fatal(err)
	}
	f.reg.IdentityChanged(&demoted)

	f.clock.Advance(4 * time.Second)
	if s, err := f.reg.Resolve(ctx, tok); err != nil || s.Identity.IsAdmin {
		t.Errorf("on the replica that made the change: admin %v (%v), want false at once",
			s != nil && s.Identity.IsAdmin, err)
	}
	f.clock.Advance(time.Second)
	if s, err := here.Resolve(ctx, tok); err != nil || s.Identity.IsAdmin {
		t.Errorf("on another replica after the revalidation period: admin %v (%v), want false",
			s != nil && s.Identity.IsAdmin, err)
	}
}

// TestIdentityChangeKeepsActivity checks that updating an identity does not
// throw away its sessions' activity that was not written yet.
func TestIdentityChangeKeepsActivity(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	tok, s := f.login(t)
	f.clock.Advance(9 * time.Minute)
	if _, err := f.reg.Resolve(ctx, tok); err != nil {
		t.Fatal(err)
	}

	renamed := *f.identity
	renamed.Name = "alice2"
	if err := f.store.UpdateIdentity(ctx, &renamed); err != nil {
		t.Fatal(err)
	}
	f.reg.IdentityChanged(&renamed)
	if err := f.reg.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := f.store.GetAPISession(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(9 * time.Minute); !got.LastActivityAt.Equal(want) {
		t.Errorf("stored LastActivityAt = %v, want %v", got.LastActivityAt, want)
	}
	f.clock.Advance(5 * time.Minute)
	if cur, err := f.reg.Resolve(ctx, tok); err != nil || cur.Identity.Name != "alice2" {
		t.Errorf("after the change: %+v, %v; want the session alive with the new name", cur, err)
	}
}

// TestSweepLeavesAnotherReplicasActivity shows that a replica sharing the
// store does not sweep a session the moment its stored expiry passes:
// another replica may hold activity it has not written yet, up to a flush
// interval of it. Once the margin has passed with no activity anywhere,
// the session is swept.
func TestSweepLeavesAnotherReplicasActivity(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	sweeper := f.newReplica(t, 10*time.Minute, 5*time.Second)
	busy := f.newReplica(t, 10*time.Minute, 5*time.Second)
	tok, s, err := sweeper.Create(ctx,
		session.CreateRequest{Identity: f.identity, AuthMethod: "password"})
	if err != nil {
		t.Fatal(err)
	}

	// Activity on the busy replica a second before the stored expiry,
	// not written yet when the stored expiry passes.
	f.clock.Advance(10*time.Minute - time.Second)
	if _, err := busy.Resolve(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if n, err := sweeper.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep just past the stored expiry removed %d (%v), want 0", n, err)
	}
	if err := busy.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sweeper.Resolve(ctx, tok); err != nil {
		t.Fatalf("the session kept busy on another replica, on the sweeping one: %v", err)
	}

	// Idle everywhere for the timeout and the margin: swept.
	f.clock.Advance(10*time.Minute + session.DefaultFlushInterval + session.DefaultClockSkew)
	if n, err := sweeper.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep past the margin removed %d (%v), want 1", n, err)
	}
	if _, err := f.store.GetAPISession(ctx, s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the swept session is still stored: %v", err)
	}
}

// TestListCertificatesJustAfterStoredExpiry shows that a session used
// just before its stored expiry lists its certificates just after it, when
// the activity that moved the expiry is not written yet: the store alone
// would refuse the session.
func TestListCertificatesJustAfterStoredExpiry(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	issuer := session.NewIssuer(session.IssuerConfig{Registry: f.reg})
	tok, s := f.login(t)

	f.clock.Advance(10*time.Minute - time.Second)
	if _, err := f.reg.Resolve(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if _, total, err := issuer.List(ctx, s.ID, store.Page{Limit: 10}); err != nil || total != 0 {
		t.Fatalf("List just after the stored expiry: total %d, %v; want 0, nil", total, err)
	}

	// A session expired here too is refused.
	f.clock.Advance(10 * time.Minute)
	if _, _, err := issuer.List(ctx, s.ID, store.Page{Limit: 10}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("List of an expired session: %v, want ErrNotFound", err)
	}
}

// TestConfigTypesOfOldRecordsAreNotKept reads a session whose record an
// earlier version wrote with the configTypes of its login: the registry
// keeps and returns none of them.
func TestConfigTypesOfOldRecordsAreNotKept(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	const token = "token-of-a-session-from-an-earlier-version"
	old := &store.APISession{
		ID: "oldsession", TokenHash: session.HashToken(token), IdentityID: f.identity.ID,
		AuthenticatorID: "authenticator1", AuthMethod: "password", IPAddress: "127.0.0.1",
		ConfigTypes: []string{"all", "intercept.v1"}, Timeout: 10 * time.Minute,
		CreatedAt: t0, UpdatedAt: t0, LastActivityAt: t0, ExpiresAt: t0.Add(10 * time.Minute),
	}
	if err := f.store.CreateAPISession(ctx, old, nil); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() (*session.Session, error){
		"by token": func() (*session.Session, error) { return f.reg.Resolve(ctx, token) },
		"by id":    func() (*session.Session, error) { return f.reg.Get(ctx, old.ID) },
	} {
		t.Run(name, func(t *testing.T) {
			f.reg.Forget(old.ID)
			s, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if len(s.ConfigTypes) != 0 {
				t.Errorf("session carries configTypes %v, want none", s.ConfigTypes)
			}
		})
	}
}

// racingStore is a real store that runs a change once, right after the
// registry's last read of a session it is about to cache (the identity,
// read after the session): the moment where an event from another replica
// may be applied before the registry caches what it read.
type racingStore struct {
	store.Store
	mu     sync.Mutex
	during func()
}

func (s *racingStore) GetIdentity(ctx context.Context, id string) (*store.Identity, error) {
	ident, err := s.Store.GetIdentity(ctx, id)
	s.mu.Lock()
	during := s.during
	s.during = nil
	s.mu.Unlock()
	if during != nil {
		during()
	}
	return ident, err
}

// TestRemovalDuringLoad removes a session on another replica, and applies
// its event here, while this replica loads the session on a cache miss:
// this replica must not cache what it read before the removal, or it would
// serve the removed session for as long as it trusts its cache (an hour
// here; for good on a store without revalidation).
func TestRemovalDuringLoad(t *testing.T) {
	tests := []struct {
		name string
		call func(r *session.Registry, tok, id string) error
		want error
	}{
		{"Resolve", func(r *session.Registry, tok, _ string) error {
			_, err := r.Resolve(context.Background(), tok)
			return err
		}, session.ErrInvalidToken},
		{"Get", func(r *session.Registry, _, id string) error {
			_, err := r.Get(context.Background(), id)
			return err
		}, session.ErrNotFound},
		{"Touch", func(r *session.Registry, _, id string) error {
			return r.Touch(context.Background(), id)
		}, session.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 10*time.Minute)
			racing := &racingStore{Store: f.store}
			here, err := session.New(session.Config{
				Store: racing, Timeout: 10 * time.Minute, Revalidate: time.Hour,
				Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, s := f.login(t)
			racing.during = func() {
				if _, err := f.reg.Delete(context.Background(), s.ID, store.CauseLogout); err != nil {
					t.Errorf("Delete on the other replica: %v", err)
				}
				here.Forget(s.ID) // the removal's event, as followEvents applies it
			}

			if err := tt.call(here, tok, s.ID); !errors.Is(err, tt.want) {
				t.Errorf("during the removal: %v, want %v", err, tt.want)
			}
			if err := tt.call(here, tok, s.ID); !errors.Is(err, tt.want) {
				t.Errorf("after the removal: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestIdentityChangeDuringLoad changes a session's identity while a
// replica loads the session: the replica serves that one request with what
// it read, but does not cache it, so that the next request sees the
// change even though the replica trusts its cache for an hour.
func TestIdentityChangeDuringLoad(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	admin := *f.identity
	admin.ID, admin.Name, admin.IsAdmin = "identity2", "root", true
	if err := f.store.CreateIdentity(ctx, &admin); err != nil {
		t.Fatal(err)
	}
	racing := &racingStore{Store: f.store}
	here, err := session.New(session.Config{
		Store: racing, Timeout: 10 * time.Minute, Revalidate: time.Hour,
		Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.reg.Create(ctx, session.CreateRequest{Identity: &admin, AuthMethod: "password"})
	if err != nil {
		t.Fatal(err)
	}
	demoted := admin
	demoted.IsAdmin = false
	racing.during = func() {
		if err := f.store.UpdateIdentity(ctx, &demoted); err != nil {
			t.Errorf("UpdateIdentity: %v", err)
		}
		here.IdentityChanged(&demoted)
	}

	if _, err := here.Resolve(ctx, tok); err != nil {
		t.Fatalf("during the change: %v", err)
	}
	s, err := here.Resolve(ctx, tok)
	if err != nil || s.Identity.IsAdmin {
		t.Errorf("after the change: admin %v (%v), want false", s != nil && s.Identity.IsAdmin, err)
	}
}

// TestCreateUnconfirmed stores a session whose Confirm fails, as a login
// whose authenticator was deleted meanwhile: Create returns Confirm's
// error, and the session is neither stored nor usable.
func TestCreateUnconfirmed(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	revoked := errors.New("the credential was revoked")
	var storedID string
	tok, s, err := f.reg.Create(ctx, session.CreateRequest{
		Identity: f.identity, AuthenticatorID: "authenticator1", AuthMethod: "password",
		Confirm: func(ctx context.Context) error {
			// Confirm runs with the session stored.
			list, _, err := f.store.ListAPISessions(ctx, store.Page{Limit: 10})
			if err != nil || len(list) != 1 {
				t.Errorf("sessions stored when Confirm runs: %d (%v), want 1", len(list), err)
			} else {
				storedID = list[0].ID
			}
			return revoked
		},
	})
	if !errors.Is(err, revoked) || tok != "" || s != nil {
		t.Fatalf("Create = %q, %v, %v; want Confirm's error and nothing else", tok, s, err)
	}
	if _, err := f.store.GetAPISession(ctx, storedID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the unconfirmed session is still stored (%v)", err)
	}
	if _, err := f.reg.Get(ctx, storedID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the registry still knows the unconfirmed session (%v)", err)
	}
}

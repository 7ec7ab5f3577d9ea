package etcd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/etcd"
	"github.com/sessioncert/sessioncert/pkg/store/etcd/etcdtest"
	"github.com/sessioncert/sessioncert/pkg/store/storetest"
)

// prefixes numbers the key prefixes of the stores the tests open, so that
// tests sharing a cluster never see each other's keys.
var prefixes atomic.Int64

// freshPrefix returns a prefix no store has used yet.
func freshPrefix() string { return fmt.Sprintf("/test-%d/", prefixes.Add(1)) }

// mustOpen opens a store or fails tb, and closes it when tb ends. A store
// the test closed itself answers ErrClosed then, which is no failure.
func mustOpen(tb testing.TB, o etcd.Options) *etcd.Store {
	tb.Helper()
	s, err := etcd.Open(tb.Context(), o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestConformance runs the suite against one embedded etcd member. Every
// store gets a prefix of its own on the shared cluster, and all share one
// client, as replicas in one process would; Reopen opens a new Store on the
// same prefix.
func TestConformance(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	cli := cluster.Client(t)
	var opened sync.Map // *etcd.Store -> etcd.Options

	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, o storetest.Options) store.Store {
			t.Helper()
			opts := etcd.Options{Client: cli, Prefix: freshPrefix(), EventHistory: o.EventHistory}
			s, err := etcd.Open(t.Context(), opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			opened.Store(s, opts)
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			t.Helper()
			opts, _ := opened.LoadAndDelete(s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2, err := etcd.Open(t.Context(), opts.(etcd.Options))
			if err != nil {
				t.Fatalf("Open again: %v", err)
			}
			opened.Store(s2, opts)
			return s2
		},
	})
}

// fixture holds what the backend-specific tests share: a store, the
// identity its sessions belong to, and a way to make sessions.
type fixture struct {
	t        *testing.T
	s        *etcd.Store
	identity *store.Identity
	seq      int
}

// newFixture opens a store with o on cli under a fresh prefix, unless o
// names one, and stores an identity.
func newFixture(t *testing.T, cli *clientv3.Client, o etcd.Options) *fixture {
	t.Helper()
	o.Client = cli
	if o.Prefix == "" {
		o.Prefix = freshPrefix()
	}
	f := &fixture{t: t, s: mustOpen(t, o)}
	f.identity = &store.Identity{ID: "alice-id", Name: "alice", Type: store.IdentityTypeUser}
	err := f.s.CreateIdentity(t.Context(), f.identity)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateIdentity: %v", err)
	}
	return f
}

// session stores a session that is idle for timeout from now, starting
// with one certificate, and adds more certificates to it. It returns the
// session and the fingerprints of all its certificates.
func (f *fixture) session(timeout time.Duration, more int) (*store.APISession, []string) {
	f.t.Helper()
	f.seq++
	now := time.Now().UTC()
	id := fmt.Sprintf("session-%d", f.seq)
	sess := &store.APISession{
		ID:             id,
		TokenHash:      sha256.Sum256([]byte(id)),
		IdentityID:     f.identity.ID,
		Timeout:        timeout,
		CreatedAt:      now,
		UpdatedAt:      now,
		LastActivityAt: now,
		ExpiresAt:      now.Add(timeout),
	}
	cert := func(n int) *store.Certificate {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", id, n))
		return &store.Certificate{
			ID:           fmt.Sprintf("%s-cert-%d", id, n),
			APISessionID: id,
			IdentityID:   f.identity.ID,
			Fingerprint:  hex.EncodeToString(sum[:20]),
			ValidFrom:    now,
			ValidTo:      now.Add(time.Hour),
			CreatedAt:    now,
		}
	}
	first := cert(0)
	if err := f.s.CreateAPISession(f.t.Context(), sess, []*store.Certificate{first}); err != nil {
		f.t.Fatalf("CreateAPISession: %v", err)
	}
	fps := []string{first.Fingerprint}
	for n := 1; n <= more; n++ {
		c := cert(n)
		if err := f.s.CreateCertificate(f.t.Context(), c, 0, now); err != nil {
			f.t.Fatalf("CreateCertificate: %v", err)
		}
		fps = append(fps, c.Fingerprint)
	}
	return sess, fps
}

// nextEvents waits for events after cursor on s and returns them.
func nextEvents(t *testing.T, s *etcd.Store, cursor uint64) []store.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	if err := s.WaitEvents(ctx, cursor); err != nil {
		t.Fatalf("WaitEvents(%d): %v", cursor, err)
	}
	evs, err := s.Events(ctx, cursor, 100)
	if err != nil {
		t.Fatalf("Events(%d): %v", cursor, err)
	}
	return evs
}

// patience bounds every wait for something that must happen; generous,
// because lease expiry takes whole seconds and -race slows everything.
const patience = 30 * time.Second

// sameEvent reports how got differs from want; fingerprints are a set.
func sameEvent(t *testing.T, what string, got, want store.Event) {
	t.Helper()
	got.Fingerprints = slices.Sorted(slices.Values(got.Fingerprints))
	want.Fingerprints = slices.Sorted(slices.Values(want.Fingerprints))
	if !got.At.Equal(want.At) {
		t.Errorf("%s: At = %s, want %s", what, got.At, want.At)
	}
	got.At, want.At = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n\tgot  %+v\n\twant %+v", what, got, want)
	}
}

// TestLeases checks what only the etcd backend does: a session's lease
// removes it with everything it owns, without any sweep, and recorded
// activity keeps it alive.
func TestLeases(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	cli := cluster.Client(t)

	t.Run("expiry removes the session and its certificates", func(t *testing.T) {
		t.Parallel()
		prefix := freshPrefix()
		f := newFixture(t, cli, etcd.Options{Prefix: prefix, LeaseSlack: -1})
		cursor, err := f.s.EventCursor(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sess, fps := f.session(time.Second, 2)

		evs := nextEvents(t, f.s, cursor)
		if len(evs) != 1 {
			t.Fatalf("%d events, want the expiry of %s", len(evs), sess.ID)
		}
		sameEvent(t, "event", evs[0], store.Event{
			Cursor:       evs[0].Cursor,
			Type:         store.EventAPISessionRemoved,
			APISessionID: sess.ID,
			IdentityID:   f.identity.ID,
			Fingerprints: fps,
			Cause:        store.CauseExpiry,
			At:           sess.ExpiresAt,
		})

		ctx := t.Context()
		if _, err := f.s.GetAPISession(ctx, sess.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAPISession: %v, want ErrNotFound", err)
		}
		if _, err := f.s.FindAPISessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err,
			store.ErrNotFound) {
			t.Errorf("FindAPISessionByTokenHash: %v, want ErrNotFound", err)
		}
		for _, fp := range fps {
			_, err := f.s.FindCertificateByFingerprint(ctx, sess.ID, fp)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("FindCertificateByFingerprint: %v, want ErrNotFound", err)
			}
		}

		// Every key the session had carried its lease: only the identity
		// is left.
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, kv := range resp.Kvs {
			left = append(left, strings.TrimPrefix(string(kv.Key), prefix))
		}
		want := []string{"identities/alice-id", "identity-names/alice"}
		if !slices.Equal(left, want) {
			t.Errorf("keys left after the lease expired:\n\t%s\nwant\n\t%s",
				strings.Join(left, "\n\t"), strings.Join(want, "\n\t"))
		}
	})

	t.Run("activity renews the lease", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cli, etcd.Options{LeaseSlack: -1})
		const timeout = 2 * time.Second
		sess, fps := f.session(timeout, 1)
		cursor, err := f.s.EventCursor(t.Context())
		if err != nil {
			t.Fatal(err)
		}

		// Touch for longer than the lease's TTL, at a fraction of it.
		var last store.Touch
		for range 10 {
			time.Sleep(timeout / 7)
			now := time.Now().UTC()
			last = store.Touch{APISessionID: sess.ID, LastActivityAt: now,
				ExpiresAt: now.Add(timeout)}
			if err := f.s.TouchAPISessions(t.Context(), []store.Touch{last}); err != nil {
				t.Fatalf("TouchAPISessions: %v", err)
			}
		}
		got, err := f.s.GetAPISession(t.Context(), sess.ID)
		if err != nil {
			t.Fatalf("GetAPISession of a session kept busy past its first TTL: %v", err)
		}
		if !got.ExpiresAt.Equal(last.ExpiresAt) {
			t.Errorf("ExpiresAt = %s, want the last touch's %s", got.ExpiresAt, last.ExpiresAt)
		}

		// Idle again, it expires at its new ExpiresAt.
		evs := nextEvents(t, f.s, cursor)
		if len(evs) != 1 {
			t.Fatalf("%d events, want the expiry of %s", len(evs), sess.ID)
		}
		sameEvent(t, "event", evs[0], store.Event{
			Cursor:       evs[0].Cursor,
			Type:         store.EventAPISessionRemoved,
			APISessionID: sess.ID,
			IdentityID:   f.identity.ID,
			Fingerprints: fps,
			Cause:        store.CauseExpiry,
			At:           last.ExpiresAt,
		})
	})
}

// leaseOf returns the lease of a stored session and the TTL etcd granted it.
func leaseOf(t *testing.T, cli *clientv3.Client, prefix, sessionID string) (clientv3.LeaseID, int64) {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+"live/sessions/"+sessionID)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the record of session %s: %+v, %v", sessionID, resp, err)
	}
	id := clientv3.LeaseID(resp.Kvs[0].Lease)
	ttl, err := cli.TimeToLive(t.Context(), id)
	if err != nil {
		t.Fatalf("TimeToLive: %v", err)
	}
	return id, ttl.GrantedTTL
}

// TestLeaseSlack checks the TTL a session's lease is granted: its timeout
// plus the slack asked for, or plus what the activity flushes need when
// that is more: two flush intervals and the clock skew.
func TestLeaseSlack(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	cli := cluster.Client(t)
	const timeout = 30 * time.Minute

	tests := []struct {
		name string
		opts etcd.Options
		want time.Duration
	}{
		{"default", etcd.Options{}, timeout + etcd.DefaultLeaseSlack},
		{"short flush interval: the default",
			etcd.Options{FlushInterval: 5 * time.Second, ClockSkew: 5 * time.Second},
			timeout + etcd.DefaultLeaseSlack},
		{"flush interval of 2m",
			etcd.Options{FlushInterval: 2 * time.Minute, ClockSkew: 5 * time.Second},
			timeout + 4*time.Minute + 5*time.Second},
		{"longer slack asked for",
			etcd.Options{LeaseSlack: 10 * time.Minute, FlushInterval: 2 * time.Minute},
			timeout + 10*time.Minute},
		{"shorter slack asked for than the flushes need",
			etcd.Options{LeaseSlack: 90 * time.Second, FlushInterval: 2 * time.Minute,
				ClockSkew: time.Second},
			timeout + 4*time.Minute + time.Second},
		{"no slack", etcd.Options{LeaseSlack: -1}, timeout},
		{"no slack but what the flushes need",
			etcd.Options{LeaseSlack: -1, FlushInterval: 2 * time.Second,
				ClockSkew: 500 * time.Millisecond},
			timeout + 5*time.Second}, // 4.5s, rounded up to whole seconds
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, cli, tt.opts)
			sess, _ := f.session(timeout, 0)
			_, got := leaseOf(t, cli, f.s.Prefix(), sess.ID)
			if want := int64(tt.want / time.Second); got != want {
				t.Errorf("granted TTL %ds, want %ds", got, want)
			}
		})
	}
}

// TestLongFlushInterval plays a session used on replica B just before its
// stored expiry, with a flush interval longer than the slack it would have
// without one (none here: the test scales a minute of slack down to
// nothing): B writes the activity one interval later, and the session must
// still be there for it. A session of a store that was not told the flush
// interval, made at the same moment, shows that its lease has run out by
// then.
func TestLongFlushInterval(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	prefix := freshPrefix()
	const (
		timeout = time.Second
		flush   = 2 * time.Second
	)
	opts := etcd.Options{Prefix: prefix, LeaseSlack: -1, FlushInterval: flush,
		ClockSkew: 100 * time.Millisecond}
	a := newFixture(t, cluster.Client(t), opts)
	b := newFixture(t, cluster.Client(t), opts)
	unaware := newFixture(t, cluster.Client(t), etcd.Options{LeaseSlack: -1})
	cursor, err := unaware.s.EventCursor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := a.session(timeout, 1)
	control, _ := unaware.session(timeout, 0)

	// The request on B, by B's clock, a moment before the stored expiry.
	used := sess.ExpiresAt.Add(-100 * time.Millisecond)
	touch := store.Touch{APISessionID: sess.ID, LastActivityAt: used,
		ExpiresAt: used.Add(timeout)}

	// B's flush comes one interval later; by then the lease of the session
	// whose store knew nothing of the interval has run out.
	if evs := nextEvents(t, unaware.s, cursor); len(evs) != 1 || evs[0].APISessionID != control.ID {
		t.Fatalf("events %+v, want the lease expiry of %s", evs, control.ID)
	}
	time.Sleep(time.Until(used.Add(flush)))
	if err := b.s.TouchAPISessions(t.Context(), []store.Touch{touch}); err != nil {
		t.Fatalf("TouchAPISessions: %v", err)
	}
	got, err := b.s.GetAPISession(t.Context(), sess.ID)
	if err != nil {
		t.Fatalf("the session used within its timeout, after B's flush: %v", err)
	}
	if !got.ExpiresAt.Equal(touch.ExpiresAt) {
		t.Errorf("ExpiresAt = %s, want the touch's %s", got.ExpiresAt, touch.ExpiresAt)
	}
	certs, _, err := b.s.ListCertificates(t.Context(), sess.ID, used, store.Page{Limit: 10})
	if err != nil || len(certs) != 2 {
		t.Errorf("certificates after B's flush: %d, %v; want 2", len(certs), err)
	}
}

// TestReplicas runs two Stores on one prefix through clients of their own,
// as two sessioncert-server processes would: a removal through one is an
// event of the other.
func TestReplicas(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	prefix := freshPrefix()
	a := newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix})
	b := newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix})
	sess, _ := a.session(time.Hour, 2)
	ctx := t.Context()

	if _, err := b.s.GetAPISession(ctx, sess.ID); err != nil {
		t.Fatalf("GetAPISession through the other store: %v", err)
	}
	certs, _, err := b.s.ListCertificates(ctx, sess.ID, time.Now(), store.Page{Limit: 10})
	if err != nil || len(certs) != 3 {
		t.Fatalf("ListCertificates through the other store: %d, %v; want 3", len(certs), err)
	}

	tests := []struct {
		name           string
		writer, reader *fixture
		remove         func(s *etcd.Store) (*store.Event, error)
	}{
		{"certificate deleted through b, seen by a", b, a,
			func(s *etcd.Store) (*store.Event, error) {
				return s.DeleteCertificate(ctx, sess.ID, certs[1].ID, time.Now())
			}},
		{"session deleted through a, seen by b", a, b,
			func(s *etcd.Store) (*store.Event, error) {
				return s.DeleteAPISession(ctx, sess.ID, store.CauseLogout, time.Now())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor, err := tt.reader.s.EventCursor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := tt.remove(tt.writer.s)
			if err != nil {
				t.Fatal(err)
			}
			got := nextEvents(t, tt.reader.s, cursor)
			if len(got) != 1 {
				t.Fatalf("the other store has %d events after %d, want 1", len(got), cursor)
			}
			sameEvent(t, "event seen by the other store", got[0], *ev)
		})
	}
}

// TestCertificateCapAcrossReplicas has writers on several Stores, each
// with its own client as separate processes would have, create
// certificates in one session at once. Within a Store the writers queue on
// a lock; between Stores only the transaction's compare keeps the cap, and
// a writer whose count went stale must count again. Exactly the cap's worth
// of certificates are stored, and every other writer gets ErrLimitReached.
func TestCertificateCapAcrossReplicas(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	prefix := freshPrefix()
	const (
		replicas = 6
		writers  = 5 // per replica
		maxLive  = 7
	)
	stores := make([]*etcd.Store, replicas)
	for i := range stores {
		stores[i] = newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix}).s
	}
	owner := newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix})
	sess, _ := owner.session(time.Hour, 0) // starts with one certificate
	now := time.Now().UTC()

	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		created atomic.Int64
		refused atomic.Int64
	)
	for r, s := range stores {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("cap-%d-%d", r, w)
				sum := sha256.Sum256([]byte(id))
				c := &store.Certificate{ID: id, APISessionID: sess.ID, IdentityID: sess.IdentityID,
					Fingerprint: hex.EncodeToString(sum[:20]), ValidFrom: now,
					ValidTo: now.Add(time.Hour), CreatedAt: now}
				<-start
				err := s.CreateCertificate(t.Context(), c, maxLive, now)
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, store.ErrLimitReached):
					refused.Add(1)
				default:
					t.Errorf("CreateCertificate %s: %v", id, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()

	if got := created.Load(); got != maxLive-1 {
		t.Errorf("%d certificates created beside the first, want %d", got, maxLive-1)
	}
	if got, want := refused.Load(), int64(replicas*writers-(maxLive-1)); got != want {
		t.Errorf("%d creations refused at the cap, want %d", got, want)
	}
	_, total, err := owner.s.ListCertificates(t.Context(), sess.ID, now, store.Page{Limit: 100})
	if err != nil || total != maxLive {
		t.Errorf("ListCertificates: %d live, %v; want %d", total, err, maxLive)
	}
}

// TestSweepAcrossReplicas has two Stores sweep the same expired sessions
// at once, as the sweepers of two replicas do, each removing several at a
// time: every expired session is removed exactly once, with one event,
// and the live ones stay.
func TestSweepAcrossReplicas(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	prefix := freshPrefix()
	a := newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix})
	b := newFixture(t, cluster.Client(t), etcd.Options{Prefix: prefix})
	ctx := t.Context()
	cursor, err := a.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expired := map[string]bool{}
	for range 60 {
		sess, _ := a.session(time.Millisecond, 1)
		expired[sess.ID] = true
	}
	var live []*store.APISession
	for range 5 {
		sess, _ := a.session(time.Hour, 0)
		live = append(live, sess)
	}
	sweepAt := time.Now().Add(time.Second)

	var (
		mu      sync.Mutex
		removed = map[string]int{}
		wg      sync.WaitGroup
	)
	for _, s := range []*etcd.Store{a.s, b.s} {
		wg.Go(func() {
			for {
				evs, err := s.DeleteExpiredAPISessions(ctx, sweepAt, 7)
				if err != nil {
					t.Errorf("DeleteExpiredAPISessions: %v", err)
					return
				}
				mu.Lock()
				for _, ev := range evs {
					removed[ev.APISessionID]++
				}
				mu.Unlock()
				if len(evs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()

	for id := range expired {
		if removed[id] != 1 {
			t.Errorf("expired session %s removed %d times, want once", id, removed[id])
		}
	}
	for _, sess := range live {
		if removed[sess.ID] != 0 {
			t.Errorf("live session %s removed", sess.ID)
		}
		if _, err := a.s.GetAPISession(ctx, sess.ID); err != nil {
			t.Errorf("live session %s after the sweeps: %v", sess.ID, err)
		}
	}
	var streamed int
	for streamed < len(expired) {
		evs := nextEvents(t, a.s, cursor)
		streamed += len(evs)
		cursor = evs[len(evs)-1].Cursor
	}
	if streamed != len(expired) {
		t.Errorf("%d events in the stream, want %d", streamed, len(expired))
	}
}

// TestCompaction checks the two ends of the history: a store replays from
// etcd what happened before it opened, and refuses a cursor that etcd has
// compacted or that more events than its history follow.
func TestCompaction(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	cli := cluster.Client(t)
	prefix := freshPrefix()
	ctx := t.Context()

	// A store that keeps two events in memory sees three.
	small := newFixture(t, cli, etcd.Options{Prefix: prefix, EventHistory: 2})
	old, err := small.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := small.session(time.Hour, 2)
	certs, _, err := small.s.ListCertificates(ctx, sess.ID, time.Now(), store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var made []store.Event
	for _, c := range certs {
		ev, err := small.s.DeleteCertificate(ctx, sess.ID, c.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, *ev)
	}

	// Stores opened now have not seen those events; one opened before the
	// compaction replays them, one opened after cannot.
	before := newFixture(t, cli, etcd.Options{Prefix: prefix})
	after := newFixture(t, cli, etcd.Options{Prefix: prefix})
	replayed, err := before.s.Events(ctx, old, 100)
	if err != nil {
		t.Fatalf("Events(%d) replayed from etcd: %v", old, err)
	}
	if len(replayed) != len(made) {
		t.Fatalf("replayed %d events, want %d", len(replayed), len(made))
	}
	for i := range made {
		sameEvent(t, fmt.Sprintf("replayed event %d", i), replayed[i], made[i])
	}
	now, err := after.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := int64(now) //nolint:gosec // G115: a cursor is an etcd revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("Compact: %v", err)
	}

	tests := []struct {
		name string
		s    *etcd.Store
		want error
	}{
		{"more events than the history", small.s, store.ErrCursorExpired},
		{"replayed before the compaction", before.s, nil},
		{"compacted", after.s, store.ErrCursorExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := tt.s.Events(ctx, old, 100)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Events(%d): %v, want %v", old, err, tt.want)
			}
			wctx, cancel := context.WithTimeout(ctx, patience)
			defer cancel()
			if err := tt.s.WaitEvents(wctx, old); !errors.Is(err, tt.want) {
				t.Errorf("WaitEvents(%d): %v, want %v", old, err, tt.want)
			}
			if tt.want == nil && len(evs) != len(made) {
				t.Errorf("Events(%d) = %d events, want %d", old, len(evs), len(made))
			}
		})
	}

	// The stream goes on after the compaction.
	cursor, err := after.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := small.s.DeleteAPISession(ctx, sess.ID, store.CauseAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := nextEvents(t, after.s, cursor)
	if len(got) != 1 {
		t.Fatalf("%d events after the compaction, want 1", len(got))
	}
	sameEvent(t, "event after the compaction", got[0], *ev)
}

// TestUnavailable stops two members of three, so that the cluster loses
// its quorum: calls fail with store.ErrUnavailable, not a raw etcd error,
// and work again once a member is back.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 3)
	f := newFixture(t, cluster.Client(t), etcd.Options{RequestTimeout: 300 * time.Millisecond})
	sess, _ := f.session(time.Hour, 0)
	ctx := t.Context()

	cluster.Stop(1)
	cluster.Stop(2)
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Ping", f.s.Ping},
		{"GetAPISession", func(ctx context.Context) error {
			_, err := f.s.GetAPISession(ctx, sess.ID)
			return err
		}},
		{"CreateIdentity", func(ctx context.Context) error {
			return f.s.CreateIdentity(ctx, &store.Identity{ID: "bob-id", Name: "bob"})
		}},
		{"DeleteAPISession", func(ctx context.Context) error {
			_, err := f.s.DeleteAPISession(ctx, sess.ID, store.CauseLogout, time.Now())
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(ctx); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("without quorum: %v, want ErrUnavailable", err)
			}
			canceled, cancel := context.WithCancel(ctx)
			cancel()
			if err := c.call(canceled); !errors.Is(err, context.Canceled) ||
				errors.Is(err, store.ErrUnavailable) {
				t.Errorf("with a canceled context: %v, want context.Canceled", err)
			}
		})
	}

	// With a quorum again, the first call may still meet an election.
	cluster.Restart(1)
	deadline := time.Now().Add(patience)
	for {
		err := f.s.Ping(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Ping after a member came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.s.GetAPISession(ctx, sess.ID); err != nil {
		t.Errorf("GetAPISession after a member came back: %v", err)
	}
}

// TestOpen covers the options Open refuses and a store that makes its own
// client from endpoints, which Close closes.
func TestOpen(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)

	refused := []struct {
		name string
		opts etcd.Options
	}{
		{"neither client nor endpoints", etcd.Options{}},
		{"prefix without a trailing slash", etcd.Options{
			Endpoints: cluster.Endpoints(), Prefix: "/sessioncert"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			s, err := etcd.Open(t.Context(), tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "etcd: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}

	t.Run("own client", func(t *testing.T) {
		s := mustOpen(t, etcd.Options{Endpoints: cluster.Endpoints()})
		if got := s.Prefix(); got != etcd.DefaultPrefix {
			t.Errorf("Prefix() = %q, want %q", got, etcd.DefaultPrefix)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Ping(t.Context()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Ping after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("caller's client stays open", func(t *testing.T) {
		cli := cluster.Client(t)
		s := mustOpen(t, etcd.Options{Client: cli, Prefix: freshPrefix()})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := cli.Get(t.Context(), "any"); err != nil {
			t.Errorf("the caller's client after Close: %v", err)
		}
	})
}

// TestInvalidArguments checks that what cannot be stored is refused with an
// error of this package, before etcd is asked.
func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	f := newFixture(t, cluster.Client(t), etcd.Options{})
	s, ctx := f.s, t.Context()

	tests := []struct {
		name string
		call func() error
	}{
		{"empty identity id", func() error {
			return s.CreateIdentity(ctx, &store.Identity{Name: "n"})
		}},
		{"identity id with a slash", func() error {
			return s.CreateIdentity(ctx, &store.Identity{ID: "a/b", Name: "n"})
		}},
		{"empty identity name", func() error {
			return s.CreateIdentity(ctx, &store.Identity{ID: "a"})
		}},
		{"session id with a slash", func() error {
			return s.CreateAPISession(ctx, &store.APISession{ID: "s/1", IdentityID: "i"}, nil)
		}},
		{"zero page limit", func() error {
			_, _, err := s.ListIdentities(ctx, store.Page{})
			return err
		}},
		{"negative page offset", func() error {
			_, _, err := s.ListAPISessions(ctx, store.Page{Offset: -1, Limit: 1})
			return err
		}},
		{"zero event limit", func() error {
			_, err := s.Events(ctx, 0, 0)
			return err
		}},
		{"zero sweep limit", func() error {
			_, err := s.DeleteExpiredAPISessions(ctx, time.Now(), 0)
			return err
		}},
		{"certificate naming another session", func() error {
			sess := &store.APISession{ID: "s", IdentityID: "i"}
			c := &store.Certificate{ID: "c", APISessionID: "other", Fingerprint: "f"}
			return s.CreateAPISession(ctx, sess, []*store.Certificate{c})
		}},
		{"certificate without fingerprint", func() error {
			return s.CreateCertificate(ctx, &store.Certificate{ID: "c", APISessionID: "s"}, 0,
				time.Now())
		}},
		{"more initial certificates than a transaction holds", func() error {
			sess := &store.APISession{ID: "s", IdentityID: f.identity.ID}
			var certs []*store.Certificate
			for n := range 42 {
				certs = append(certs, &store.Certificate{
					ID: fmt.Sprint("c", n), Fingerprint: fmt.Sprint("f", n)})
			}
			return s.CreateAPISession(ctx, sess, certs)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "etcd: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}

	// Lookups of ids that cannot exist find nothing rather than failing.
	lookups := []struct {
		name string
		call func() error
	}{
		{"GetAPISession", func() error {
			_, err := s.GetAPISession(ctx, "a/b")
			return err
		}},
		{"GetCertificate", func() error {
			_, err := s.GetCertificate(ctx, "a", "b/c")
			return err
		}},
		{"FindCertificateByFingerprint", func() error {
			_, err := s.FindCertificateByFingerprint(ctx, "a/b", "f")
			return err
		}},
		{"GetIdentity", func() error {
			_, err := s.GetIdentity(ctx, "")
			return err
		}},
	}
	for _, tt := range lookups {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%v, want ErrNotFound", err)
			}
		})
	}
}

// TestSmallTransactions runs the batched operations with MaxTxnOps at 16,
// so that each of them is cut into several transactions on few records:
// nothing may be lost or left behind at the cuts.
func TestSmallTransactions(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	f := newFixture(t, cluster.Client(t), etcd.Options{MaxTxnOps: 16})
	s, ctx := f.s, t.Context()
	const n = 12

	// Sessions, touched in one call.
	var sessions []*store.APISession
	var touches []store.Touch
	for range n {
		sess, _ := f.session(time.Hour, 0)
		sessions = append(sessions, sess)
		touches = append(touches, store.Touch{APISessionID: sess.ID,
			LastActivityAt: sess.LastActivityAt.Add(time.Minute),
			ExpiresAt:      sess.ExpiresAt.Add(time.Minute)})
	}
	if err := s.TouchAPISessions(ctx, touches); err != nil {
		t.Fatalf("TouchAPISessions: %v", err)
	}
	for i, sess := range sessions {
		got, err := s.GetAPISession(ctx, sess.ID)
		if err != nil || !got.ExpiresAt.Equal(touches[i].ExpiresAt) {
			t.Errorf("session %s after the touch: %v, %v", sess.ID, got, err)
		}
	}

	// Certificates past their ValidTo, swept in one call.
	past := time.Now().Add(-time.Hour)
	for i := range n {
		sum := sha256.Sum256(fmt.Append(nil, "expired-", i))
		c := &store.Certificate{ID: fmt.Sprint("expired-", i), APISessionID: sessions[i].ID,
			Fingerprint: hex.EncodeToString(sum[:20]), ValidTo: past}
		if err := s.CreateCertificate(ctx, c, 0, past); err != nil {
			t.Fatalf("CreateCertificate: %v", err)
		}
	}
	swept, err := s.DeleteExpiredCertificates(ctx, time.Now(), 100)
	if err != nil || swept != n {
		t.Errorf("DeleteExpiredCertificates = %d, %v; want %d", swept, err, n)
	}

	// Identities listed in one page, read in several transactions.
	for i := range n {
		id := fmt.Sprintf("other-%02d", i)
		if err := s.CreateIdentity(ctx, &store.Identity{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	list, total, err := s.ListIdentities(ctx, store.Page{Limit: 100})
	if err != nil || len(list) != n+1 || total != n+1 {
		t.Errorf("ListIdentities: %d of %d, %v; want %d", len(list), total, err, n+1)
	}

	// An identity with more authenticators than its last transaction holds.
	for i := range 5 {
		a := &store.Authenticator{ID: fmt.Sprint("auth-", i), IdentityID: f.identity.ID,
			Method: store.AuthMethodPassword, Username: fmt.Sprint("user-", i)}
		if err := s.CreateAuthenticator(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.DeleteIdentity(ctx, f.identity.ID, time.Now())
	if err != nil || len(events) != n {
		t.Fatalf("DeleteIdentity: %d events, %v; want %d", len(events), err, n)
	}
	if _, total, err := s.ListAuthenticators(ctx, store.Page{Limit: 10}); err != nil || total != 0 {
		t.Errorf("authenticators left: %d, %v", total, err)
	}
	if _, err := s.FindAuthenticatorByUsername(ctx, "user-4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindAuthenticatorByUsername: %v, want ErrNotFound", err)
	}
	if _, total, err := s.ListAPISessions(ctx, store.Page{Limit: 10}); err != nil || total != 0 {
		t.Errorf("sessions left: %d, %v", total, err)
	}
}

// fillUp writes junk through cli until etcd refuses a write for lack of
// space, which raises its NOSPACE alarm.
func fillUp(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	junk := strings.Repeat("x", 64<<10)
	for i := range 10_000 {
		_, err := cli.Put(t.Context(), fmt.Sprintf("/junk/%d", i), junk)
		if err != nil {
			if !strings.Contains(err.Error(), "database space exceeded") {
				t.Fatalf("filling etcd up: %v", err)
			}
			return
		}
	}
	t.Fatal("etcd took 640 MiB of junk without running out of space")
}

// TestNoSpace fills an etcd that has a small space quota: every write then
// fails with ErrUnavailable (clients get a 503) and ErrNoSpace, whose
// message tells the operator what to do; OnError hears of it once, not per
// write; Ping reports the alarm although reads still work.
func TestNoSpace(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.StartWith(t, 1, etcdtest.Options{QuotaBackendBytes: 4 << 20})
	cli := cluster.Client(t)
	var mu sync.Mutex
	var reported []error
	f := newFixture(t, cli, etcd.Options{OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	sess, _ := f.session(time.Hour, 0)
	fillUp(t, cli)
	ctx := t.Context()
	now := time.Now().UTC()

	writes := []struct {
		name string
		call func() error
	}{
		{"CreateAPISession", func() error {
			s := *sess
			s.ID, s.TokenHash = "another", sha256.Sum256([]byte("another"))
			return f.s.CreateAPISession(ctx, &s, nil)
		}},
		{"CreateCertificate", func() error {
			return f.s.CreateCertificate(ctx, &store.Certificate{ID: "c", APISessionID: sess.ID,
				Fingerprint: "f", ValidTo: now.Add(time.Hour)}, 0, now)
		}},
		{"TouchAPISessions", func() error {
			return f.s.TouchAPISessions(ctx, []store.Touch{{APISessionID: sess.ID,
				LastActivityAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}})
		}},
		{"CreateIdentity", func() error {
			return f.s.CreateIdentity(ctx, &store.Identity{ID: "bob-id", Name: "bob"})
		}},
		{"Ping", func() error { return f.s.Ping(ctx) }},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			err := w.call()
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, etcd.ErrNoSpace) {
				t.Fatalf("%v, want ErrUnavailable and ErrNoSpace", err)
			}
			for _, want := range []string{"defrag", "--quota-backend-bytes", "alarm disarm"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}

	if _, err := f.s.GetAPISession(ctx, sess.ID); err != nil {
		t.Errorf("a read out of space: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !errors.Is(reported[0], etcd.ErrNoSpace) {
		t.Errorf("OnError heard %v, want ErrNoSpace once", reported)
	}
}

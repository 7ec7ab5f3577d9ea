package bolt_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
	"github.com/sessioncert/sessioncert/pkg/store/storetest"
)

// opened remembers the options each store was opened with, for Reopen.
var opened sync.Map // *bolt.Store -> bolt.Options

// factory opens real bolt files in the test's temporary directory, with
// fsync on, as a server would.
var factory = storetest.Factory{
	Open: func(t *testing.T, o storetest.Options) store.Store {
		t.Helper()
		opts := bolt.Options{EventHistory: o.EventHistory}
		s, err := bolt.Open(filepath.Join(t.TempDir(), "sessioncert.db"), opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		opened.Store(s, opts)
		return s
	},
	Reopen: func(t *testing.T, s store.Store) store.Store {
		t.Helper()
		old := s.(*bolt.Store)
		opts, _ := opened.LoadAndDelete(old)
		if err := old.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s2, err := bolt.Open(old.Path(), opts.(bolt.Options))
		if err != nil {
			t.Fatalf("Open again: %v", err)
		}
		opened.Store(s2, opts)
		return s2
	},
}

// closeLater closes c when the test ends. A store the test closed itself
// answers ErrClosed then, which is no failure.
func closeLater(tb testing.TB, c interface{ Close() error }) {
	tb.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
}

// updateFile opens path with plain bbolt, runs fn in a write transaction
// and closes the file again.
func updateFile(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, factory)
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessioncert.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	closeLater(t, s)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600: the file holds password hashes", got)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessioncert.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	closeLater(t, s)

	s2, err := bolt.Open(path, bolt.Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		_ = s2.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}

	// Once the first store lets go, the file opens again.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s3, err := bolt.Open(path, bolt.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s3.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	// rewrite makes a store, closes it and changes its file with fn.
	rewrite := func(fn func(tx *bbolt.Tx) error) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			s, err := bolt.Open(path, bolt.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			updateFile(t, path, fn)
		}
	}
	setVersion := func(v uint32) func(t *testing.T, path string) {
		return rewrite(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schemaVersion"),
				binary.BigEndian.AppendUint32(nil, v))
		})
	}

	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error // nil: any error will do
	}{
		{"newer schema", setVersion(2), bolt.ErrSchemaVersion},
		{"schema zero", setVersion(0), bolt.ErrSchemaVersion},
		{"other bbolt database", func(t *testing.T, path string) {
			updateFile(t, path, func(tx *bbolt.Tx) error {
				_, err := tx.CreateBucket([]byte("widgets"))
				return err
			})
		}, bolt.ErrNotStore},
		{"not a database", func(t *testing.T, path string) {
			junk := []byte(strings.Repeat("not bolt ", 2000))
			if err := os.WriteFile(path, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessioncert.db")
			tt.prepare(t, path)
			s, err := bolt.Open(path, bolt.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// events makes n events in s, each the removal of a session of its own.
func events(t *testing.T, s *bolt.Store, n int) []store.Event {
	t.Helper()
	ctx := t.Context()
	id := &store.Identity{ID: "i", Name: "i", Type: store.IdentityTypeUser}
	if err := s.CreateIdentity(ctx, id); err != nil && !errors.Is(err, store.ErrConflict) {
		t.Fatal(err)
	}
	var out []store.Event
	for range n {
		c, err := s.EventCursor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The cursor grows with every event, so it makes the ids unique.
		sid := fmt.Sprintf("session-%d", c)
		sess := &store.APISession{ID: sid, IdentityID: "i", TokenHash: sha256.Sum256([]byte(sid))}
		if err := s.CreateAPISession(ctx, sess, nil); err != nil {
			t.Fatal(err)
		}
		ev, err := s.DeleteAPISession(ctx, sid, store.CauseLogout, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *ev)
	}
	return out
}

// TestEventHistoryIsExact checks what the suite cannot ask of every
// backend: cursors are consecutive, EventCursor is the newest event's, and
// exactly EventHistory events are retained, also after the history shrinks
// across a reopen.
func TestEventHistoryIsExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessioncert.db")
	s, err := bolt.Open(path, bolt.Options{EventHistory: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if c, err := s.EventCursor(ctx); err != nil || c != 0 {
		t.Fatalf("EventCursor of a new store = %d, %v; want 0", c, err)
	}
	evs := events(t, s, 8)
	for n, e := range evs {
		if e.Cursor != uint64(n+1) {
			t.Fatalf("event %d has cursor %d, want %d", n, e.Cursor, n+1)
		}
	}
	if c, err := s.EventCursor(ctx); err != nil || c != 8 {
		t.Fatalf("EventCursor = %d, %v; want 8", c, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopened with a shorter history, only the newest 2 remain.
	s, err = bolt.Open(path, bolt.Options{EventHistory: 2})
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, s)
	tests := []struct {
		after   uint64
		want    int
		expired bool
	}{
		{after: 0, expired: true},
		{after: 5, expired: true},
		{after: 6, want: 2},
		{after: 7, want: 1},
		{after: 8, want: 0},
	}
	for _, tt := range tests {
		got, err := s.Events(ctx, tt.after, 100)
		switch {
		case tt.expired:
			if !errors.Is(err, store.ErrCursorExpired) {
				t.Errorf("Events(%d): %v, want ErrCursorExpired", tt.after, err)
			}
		case err != nil:
			t.Errorf("Events(%d): %v", tt.after, err)
		case len(got) != tt.want:
			t.Errorf("Events(%d) returned %d events, want %d", tt.after, len(got), tt.want)
		}
	}
	if c, err := s.EventCursor(ctx); err != nil || c != 8 {
		t.Errorf("EventCursor after reopen = %d, %v; want 8", c, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "sessioncert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, s)
	ctx := t.Context()

	tests := []struct {
		name string
		call func() error
	}{
		{"empty identity id", func() error {
			return s.CreateIdentity(ctx, &store.Identity{Name: "n"})
		}},
		{"identity id with NUL", func() error {
			return s.CreateIdentity(ctx, &store.Identity{ID: "a\x00b", Name: "n"})
		}},
		{"empty identity name", func() error {
			return s.CreateIdentity(ctx, &store.Identity{ID: "a"})
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "bolt: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestCertificateCountOfAnOlderFile checks that a file written before the
// store kept a certificate count gets one when opened, and that removals
// afterwards keep it right instead of failing as a count gone below zero.
func TestCertificateCountOfAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessioncert.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id := &store.Identity{ID: "i", Name: "i", Type: store.IdentityTypeUser}
	sess := &store.APISession{ID: "s", IdentityID: "i", TokenHash: sha256.Sum256([]byte("s"))}
	var certs []*store.Certificate
	for n := range 3 {
		certs = append(certs, &store.Certificate{
			ID:          fmt.Sprintf("c%d", n),
			Fingerprint: fmt.Sprintf("f%d", n),
			ValidTo:     time.Date(2030, 1, 1, 0, 0, n, 0, time.UTC),
		})
	}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPISession(ctx, sess, certs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	updateFile(t, path, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Delete([]byte("count/certificates"))
	})

	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, s)
	if n, err := s.CountCertificates(ctx); err != nil || n != 3 {
		t.Fatalf("CountCertificates of the older file = %d, %v; want 3", n, err)
	}
	if _, err := s.DeleteCertificate(ctx, "s", "c0", time.Now()); err != nil {
		t.Fatalf("DeleteCertificate: %v", err)
	}
	if _, err := s.DeleteAPISession(ctx, "s", store.CauseLogout, time.Now()); err != nil {
		t.Fatalf("DeleteAPISession: %v", err)
	}
	if n, err := s.CountCertificates(ctx); err != nil || n != 0 {
		t.Errorf("CountCertificates after the removals = %d, %v; want 0", n, err)
	}
}

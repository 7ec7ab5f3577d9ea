package bolt_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// pingsInFile reads, with plain bbolt, how many pings the file holds.
func pingsInFile(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n uint64
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("health"))
		if b == nil {
			return errors.New("no health bucket")
		}
		if v := b.Get([]byte("pings")); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPingIsADurableWrite pings a store, a new file and one written before
// the health bucket existed alike: each ping is a write that is in the file
// once Ping returns, and a closed store answers ErrClosed.
func TestPingIsADurableWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		older bool // the file lacks the health bucket
	}{
		{"new file", false},
		{"file without the health bucket", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessioncert.db")
			s, err := bolt.Open(path, bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.older {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				updateFile(t, path, func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("health")) })
				if s, err = bolt.Open(path, bolt.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				if err := s.Ping(t.Context()); err != nil {
					t.Fatalf("Ping: %v", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := pingsInFile(t, path); n != 3 {
				t.Errorf("the file holds %d pings, want 3", n)
			}
			if err := s.Ping(t.Context()); !errors.Is(err, store.ErrClosed) {
				t.Errorf("Ping after Close = %v, want ErrClosed", err)
			}
		})
	}
}

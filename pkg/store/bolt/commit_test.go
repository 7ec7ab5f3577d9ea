package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"
)

// TestCommitterKeepsWritersApart runs many concurrent writers through one
// committer, some of which fail after writing and one of which panics, and
// checks that each gets its own outcome: a failing writer's writes are
// gone and its error is its own, everyone else's writes are durable.
func TestCommitterKeepsWritersApart(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "commit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c := &committer{db: db}

	const writers = 200
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = c.do(func(tx *bbolt.Tx) error {
				if err := tx.Bucket(bucket).Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				switch {
				case i == 7:
					panic("writer 7 has a bug")
				case i%10 == 3:
					return fmt.Errorf("writer %d refuses", i)
				}
				return nil
			})
		})
	}
	wg.Wait()

	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for i, err := range errs {
			stored := b.Get(fmt.Appendf(nil, "k%03d", i)) != nil
			switch {
			case i == 7:
				if err == nil || stored {
					t.Errorf("panicking writer: err %v, stored %v; want an error and nothing stored", err, stored)
				}
			case i%10 == 3:
				if want := fmt.Sprintf("writer %d refuses", i); err == nil || err.Error() != want || stored {
					t.Errorf("writer %d: err %v, stored %v; want %q and nothing stored", i, err, stored, want)
				}
			default:
				if err != nil || !stored {
					t.Errorf("writer %d: err %v, stored %v; want success", i, err, stored)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if errors.Is(errs[0], errRunAlone) {
		t.Error("the internal retry signal reached a writer")
	}
}

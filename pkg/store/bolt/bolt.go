// Package bolt is the embedded backend of store.Store: everything sessioncert
// keeps lives in one bbolt file in the data directory.
//
// Every write is durable before its method returns. The writes on the request
// path (creating sessions and certificates, recording activity, and every
// removal of an identity, a session or a certificate) are group-committed
// through bbolt's Batch, so concurrent requests share one fsync; the rare
// administrative writes commit on their own. Each write is one transaction:
// a certificate's cap check and insert, or a session's removal with its
// certificates, their index entries and its event, is never seen half done.
//
// The on-disk layout is described in schema.go and carries a version number;
// Open refuses a file written with a layout it does not know.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Defaults applied by Open to the zero fields of Options.
const (
	// DefaultEventHistory is how many removal events are retained.
	DefaultEventHistory = 100_000

	// DefaultTimeout is how long Open waits for the file lock.
	DefaultTimeout = time.Second
)

// Errors returned by Open, in addition to the store errors every method
// returns. Match them with errors.Is.
var (
	// ErrLocked is returned by Open when another Store, in this process or
	// another, holds the file and did not release it within Options.Timeout.
	ErrLocked = errors.New("bolt: database file is locked")

	// ErrSchemaVersion is returned by Open when the file was written with a
	// layout version this build does not know (usually a newer one).
	ErrSchemaVersion = errors.New("bolt: unsupported schema version")

	// ErrNotStore is returned by Open when the file is a bbolt database that
	// was not written by this package.
	ErrNotStore = errors.New("bolt: not a sessioncert store")
)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// EventHistory is how many of the newest removal events are retained;
	// older ones are dropped and a cursor before them gets
	// store.ErrCursorExpired. Zero or less means DefaultEventHistory.
	EventHistory int

	// Timeout is how long Open waits for the exclusive file lock before it
	// returns ErrLocked. Zero or less means DefaultTimeout.
	Timeout time.Duration

	// NoSync skips fsync on commit. A crash may then lose or corrupt recent
	// writes: it is meant for tests and benchmarks that measure everything
	// but the disk, never for a server.
	NoSync bool
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.EventHistory <= 0 {
		o.EventHistory = DefaultEventHistory
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Store is a store.Store kept in one bbolt file. It is safe for concurrent
// use. Every value it returns is a fresh copy that the caller may change.
type Store struct {
	db      *bbolt.DB
	commits *committer
	path    string
	history uint64
	closed  atomic.Bool

	// mu guards the fields below, which mirror committed state so that
	// WaitEvents can decide without opening a transaction.
	mu      sync.Mutex
	changed chan struct{} // closed and replaced after events are committed
	done    chan struct{} // closed by Close
	newest  uint64        // cursor of the newest committed event
	dropped uint64        // newest cursor removed from the history
}

var _ store.Store = (*Store)(nil)

// Open opens the store in the file at path, creating it with mode 0600 when
// it does not exist. It returns ErrLocked when another Store holds the file,
// ErrSchemaVersion or ErrNotStore when the file is not one this build can
// use, and a wrapped bbolt or I/O error otherwise.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.Timeout,
		NoSync:  opts.NoSync,
		// Every commit would otherwise write the whole freelist, which
		// grows with the file; bolt rebuilds it from the pages on open
		// instead. The map freelist keeps allocation cheap as it grows.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is held by another process or store (waited %s)",
			ErrLocked, path, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		commits: &committer{db: db},
		path:    path,
		history: uint64(opts.EventHistory), //nolint:gosec // G115: withDefaults made it positive
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := prepare(tx); err != nil {
			return err
		}
		// A smaller EventHistory than last time takes effect at once, so
		// that ErrCursorExpired always reflects the configured history.
		if _, err := s.trimEvents(tx); err != nil {
			return err
		}
		s.newest = tx.Bucket(bucketEvents).Sequence()
		s.dropped = readUint64(tx.Bucket(bucketMeta), keyEventsDropped)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return s, nil
}

// Path returns the file the store was opened with.
func (s *Store) Path() string { return s.path }

// Ping commits a write and waits until it is durable: it counts itself in
// the health bucket, in a group-committed transaction. A read alone is
// served from the memory map and would pass on a full disk or a file system
// gone read-only; a commit does not. It is as cheap as the smallest write
// on the request path, and shares its fsync with concurrent writers. It
// returns store.ErrClosed after Close.
func (s *Store) Ping(ctx context.Context) error {
	return s.batch(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(keySchemaVersion) == nil {
			return errors.New("bolt: ping: schema version is missing")
		}
		health := tx.Bucket(bucketHealth)
		return put(health, keyPings, binary.BigEndian.AppendUint64(nil, readUint64(health, keyPings)+1))
	})
}

// Close wakes every WaitEvents call with store.ErrClosed, waits for running
// transactions and releases the file. A second Close returns
// store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return store.ErrClosed
	}
	s.closed.Store(true)
	close(s.done)
	s.mu.Unlock()

	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// ready returns why an operation must not start: the store is closed or ctx
// is done. bbolt transactions cannot be interrupted, so this is the only
// point at which ctx is honoured (WaitEvents aside).
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	var inner error
	err := s.db.View(func(tx *bbolt.Tx) error {
		inner = fn(tx)
		return inner
	})
	return outcome(err, inner)
}

// update runs fn in a write transaction of its own. It serves the rare
// administrative writes, which gain nothing from waiting for a batch.
func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	var inner error
	err := s.db.Update(func(tx *bbolt.Tx) error {
		inner = fn(tx)
		return inner
	})
	return outcome(err, inner)
}

// batch runs fn in a group-committed write transaction (see committer): it
// returns once the transaction that ran fn is durable. fn may run more than
// once (a failure of another writer in the same batch rolls the batch back
// and runs it again), so fn must only set the caller's results, never
// publish them; the caller publishes after batch returns nil.
func (s *Store) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	var inner error
	err := s.commits.do(func(tx *bbolt.Tx) error {
		inner = fn(tx)
		return inner
	})
	return outcome(err, inner)
}

// outcome turns what a bbolt transaction returned into the error a caller
// sees. inner is what fn last returned: when it failed, err is that error,
// already a store error or one wrapped by this package; otherwise err came
// from bbolt itself, when starting or committing the transaction.
func outcome(err, inner error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return store.ErrClosed
	case inner != nil:
		return err
	default:
		return fmt.Errorf("bolt: commit: %w", err)
	}
}

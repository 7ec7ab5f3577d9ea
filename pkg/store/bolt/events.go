package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// appended is what one write transaction did to the event stream. It is
// filled inside the transaction and published only after the commit, so
// that no waiter is woken for an event that was rolled back.
type appended struct {
	newest  uint64 // cursor of the last event appended; 0 when none
	dropped uint64 // newest cursor trimmed from the history so far
}

// appendEvent gives e the next cursor, stores it and trims the history.
func (s *Store) appendEvent(tx *bbolt.Tx, e *store.Event, ap *appended) error {
	b := tx.Bucket(bucketEvents)
	cursor, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("bolt: next event cursor: %w", err)
	}
	e.Cursor = cursor
	if err := putJSON(b, cursorKey(cursor), eventToRecord(e)); err != nil {
		return err
	}
	dropped, err := s.trimEvents(tx)
	if err != nil {
		return err
	}
	ap.newest, ap.dropped = cursor, dropped
	return nil
}

// trimEvents drops the oldest events beyond the configured history and
// returns the newest dropped cursor. Cursors have no gaps (a sequence
// number taken in a transaction that rolls back is given back with it), so
// the number retained is the newest cursor minus the newest dropped one.
func (s *Store) trimEvents(tx *bbolt.Tx) (uint64, error) {
	b := tx.Bucket(bucketEvents)
	meta := tx.Bucket(bucketMeta)
	newest := b.Sequence()
	dropped := readUint64(meta, keyEventsDropped)
	if newest-dropped <= s.history {
		return dropped, nil
	}

	upTo := newest - s.history
	last := cursorKey(upTo)
	c := b.Cursor()
	var doomed [][]byte
	for k, _ := c.First(); k != nil && bytes.Compare(k, last) <= 0; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := del(b, k); err != nil {
			return 0, err
		}
	}
	if err := put(meta, keyEventsDropped, cursorKey(upTo)); err != nil {
		return 0, err
	}
	return upTo, nil
}

// publish makes committed events visible to WaitEvents and wakes every
// waiter; they check again whether what they wait for has arrived.
func (s *Store) publish(ap appended) {
	if ap.newest == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newest = max(s.newest, ap.newest)
	s.dropped = max(s.dropped, ap.dropped)
	close(s.changed)
	s.changed = make(chan struct{})
}

// errAhead is returned, wrapped, for a cursor after the newest event ever
// appended: no event can follow it, and a follower holding it followed
// another store, or this file before it was restored from an older copy,
// and would miss every removal waiting for it.
func errAhead(after, newest uint64) error {
	return fmt.Errorf("bolt: events after %d, which is after the newest event %d: %w",
		after, newest, store.ErrCursorExpired)
}

// Events returns up to limit events with a cursor greater than after,
// oldest first. It returns store.ErrCursorExpired when an event after that
// cursor has been dropped from the history or the cursor is after the
// newest event, and an error when limit is not positive.
func (s *Store) Events(ctx context.Context, after uint64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("bolt: event limit %d is not positive", limit)
	}
	var out []store.Event
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if after < readUint64(tx.Bucket(bucketMeta), keyEventsDropped) {
			return fmt.Errorf("bolt: events after %d: %w", after, store.ErrCursorExpired)
		}
		if newest := tx.Bucket(bucketEvents).Sequence(); after > newest {
			return errAhead(after, newest)
		}
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(cursorKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: event key %x", errCorrupt, k)
			}
			var rec eventRecord
			if err := decodeJSON(k, v, &rec); err != nil {
				return err
			}
			out = append(out, rec.event(binary.BigEndian.Uint64(k)))
		}
		return nil
	})
	return out, err
}

// EventCursor returns the cursor of the newest event ever appended, which
// is 0 in a new store. Every event appended later has a greater cursor.
func (s *Store) EventCursor(ctx context.Context) (uint64, error) {
	var c uint64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c = tx.Bucket(bucketEvents).Sequence()
		return nil
	})
	return c, err
}

// WaitEvents returns nil as soon as an event with a cursor greater than
// after has been committed, ctx.Err() when ctx is done first, and
// store.ErrClosed when the store is closed first. It returns
// store.ErrCursorExpired at once when events after the cursor were dropped
// or the cursor is after the newest event. It does not poll: every commit
// that appends events wakes it.
func (s *Store) WaitEvents(ctx context.Context, after uint64) error {
	if err := s.checkAhead(ctx, after); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		closed, newest, dropped, changed := s.closed.Load(), s.newest, s.dropped, s.changed
		s.mu.Unlock()

		switch {
		case closed:
			return store.ErrClosed
		case after < dropped:
			return fmt.Errorf("bolt: wait after %d: %w", after, store.ErrCursorExpired)
		case newest > after:
			return nil
		}

		select {
		case <-changed:
		case <-s.done:
			return store.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkAhead returns errAhead for a cursor after the newest committed
// event. The mirror of committed state answers most cursors; one after it
// may name an event committed a moment ago and not published yet, so the
// file decides.
func (s *Store) checkAhead(ctx context.Context, after uint64) error {
	s.mu.Lock()
	newest := s.newest
	s.mu.Unlock()
	if after <= newest {
		return nil
	}
	return s.view(ctx, func(tx *bbolt.Tx) error {
		if newest := tx.Bucket(bucketEvents).Sequence(); after > newest {
			return errAhead(after, newest)
		}
		return nil
	})
}

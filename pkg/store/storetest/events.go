package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// makeEvents records n certificateDeleted events, one call at a time, and
// returns them as the calls did.
func (h *harness) makeEvents(n int) []store.Event {
	h.t.Helper()
	sess := h.session(h.mustIdentity(h.id("name")).ID)
	certs := make([]*store.Certificate, n)
	for i := range certs {
		certs[i] = h.cert(sess)
	}
	h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, certs))
	events := make([]store.Event, n)
	for i, c := range certs {
		ev, err := h.s.DeleteCertificate(h.ctx, sess.ID, c.ID, t0)
		h.must("DeleteCertificate", err)
		events[i] = *ev
	}
	return events
}

// testEvents covers Events and EventCursor.
func testEvents(t *testing.T, f Factory) {
	t.Run("Stream", func(t *testing.T) {
		h := open(t, f, Options{})
		start := h.cursor()
		if evs := h.eventsAfter(start); len(evs) != 0 {
			t.Fatalf("a new store has events %s after its cursor", cursors(evs))
		}

		// One event of each kind of removal, in this order.
		i := h.mustIdentity("alice")
		s1, s2, s3 := h.mustSession(i.ID), h.mustSession(i.ID), h.mustSession(i.ID)
		c1 := h.mustCert(s1)
		expiring := h.session(i.ID)
		expiring.ExpiresAt = t0.Add(-time.Minute)
		h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, expiring, nil))

		var want []store.Event
		ev, err := h.s.DeleteCertificate(h.ctx, s1.ID, c1.ID, t0)
		h.must("DeleteCertificate", err)
		want = append(want, *ev)
		ev, err = h.s.DeleteAPISession(h.ctx, s1.ID, store.CauseLogout, t0)
		h.must("DeleteAPISession", err)
		want = append(want, *ev)
		evs, err := h.s.DeleteExpiredAPISessions(h.ctx, t0, 10)
		h.must("DeleteExpiredAPISessions", err)
		want = append(want, evs...)
		evs, err = h.s.DeleteIdentity(h.ctx, i.ID, t0)
		h.must("DeleteIdentity", err)
		want = append(want, evs...)
		if len(want) != 5 {
			t.Fatalf("%d events recorded, want 5 (sessions %s and %s among them)",
				len(want), s2.ID, s3.ID)
		}

		for n, e := range want {
			if e.Cursor <= start || (n > 0 && e.Cursor <= want[n-1].Cursor) {
				t.Errorf("cursors are not strictly increasing from %d: %s",
					start, cursors(want))
				break
			}
		}
		h.sameEvents("Events(start)", h.eventsAfter(start), want)

		last := want[len(want)-1].Cursor
		tests := []struct {
			name  string
			after uint64
			limit int
			want  []store.Event
		}{
			{"from the start, limited", start, 2, want[:2]},
			{"from the start, one", start, 1, want[:1]},
			{"from the middle", want[1].Cursor, 100, want[2:]},
			{"from between cursors", want[2].Cursor, 2, want[3:5]},
			{"from the last", last, 100, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				got, err := h.s.Events(h.ctx, tt.after, tt.limit)
				h.must("Events", err)
				h.sameEvents("Events", got, tt.want)
			})
		}

		// A cursor ahead of every event the store can have, as a follower
		// of another store or of one restored from a backup holds, would
		// wait forever and miss every removal: it is expired at once.
		t.Run("from ahead of the stream", func(t *testing.T) {
			h := h.on(t)
			const ahead = 1 << 62
			_, err := h.s.Events(h.ctx, ahead, 100)
			wantErr(t, "Events", err, store.ErrCursorExpired)
			ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
			defer cancel()
			wantErr(t, "WaitEvents", h.s.WaitEvents(ctx, ahead), store.ErrCursorExpired)
		})

		t.Run("EventCursor", func(t *testing.T) {
			h := h.on(t)
			// The cursor names the newest event or a later point: following
			// from it misses nothing new and repeats nothing old.
			cur := h.cursor()
			if cur < last {
				t.Errorf("EventCursor = %d, before the newest event %d", cur, last)
			}
			if evs := h.eventsAfter(cur); len(evs) != 0 {
				t.Errorf("events %s after EventCursor %d", cursors(evs), cur)
			}
			next := h.makeEvents(1)[0]
			if next.Cursor <= cur {
				t.Errorf("new event has cursor %d, not after EventCursor %d", next.Cursor, cur)
			}
			h.sameEvents("Events(EventCursor)", h.eventsAfter(cur), []store.Event{next})
		})
	})

	t.Run("History", func(t *testing.T) {
		const history = 3
		h := open(t, f, Options{EventHistory: history})
		start := h.cursor()
		all := h.makeEvents(12 * history)

		// Every cursor the suite knows either still reaches all the events
		// after it or is expired, and once one reaches, all later ones do:
		// events are dropped oldest first and never out of the middle.
		cursorsKnown := []uint64{start}
		for _, e := range all {
			cursorsKnown = append(cursorsKnown, e.Cursor)
		}
		reached := false
		for n, after := range cursorsKnown {
			got, err := h.s.Events(h.ctx, after, 1000)
			switch {
			case errors.Is(err, store.ErrCursorExpired):
				if reached {
					t.Errorf("cursor %d is expired though the older %d is not",
						after, cursorsKnown[n-1])
				}
			case err != nil:
				t.Fatalf("Events(%d): %v", after, err)
			default:
				reached = true
				h.sameEvents("Events after a retained cursor", got, all[n:])
			}
		}

		_, err := h.s.Events(h.ctx, start, 10)
		wantErr(t, "Events from before the retained history", err, store.ErrCursorExpired)
		ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
		defer cancel()
		err = h.s.WaitEvents(ctx, start)
		wantErr(t, "WaitEvents from before the retained history", err, store.ErrCursorExpired)

		recent := all[len(all)-history-1].Cursor
		got, err := h.s.Events(h.ctx, recent, 10)
		h.must("Events from a cursor within the history", err)
		h.sameEvents("Events from a cursor within the history", got, all[len(all)-history:])
	})
}

// testWaitEvents covers WaitEvents. It never asserts how long anything
// took: waits that must end are bounded by a generous deadline, and a wait
// that must not end yet is checked without waiting.
func testWaitEvents(t *testing.T, f Factory) {
	const patience = 20 * time.Second

	t.Run("ReturnsAtOnceWhenBehind", func(t *testing.T) {
		h := open(t, f, Options{})
		start := h.cursor()
		evs := h.makeEvents(2)
		for _, after := range []uint64{start, evs[0].Cursor} {
			ctx, cancel := context.WithTimeout(h.ctx, patience)
			err := h.s.WaitEvents(ctx, after)
			cancel()
			if err != nil {
				t.Errorf("WaitEvents(%d) with an event after it: %v", after, err)
			}
		}
	})

	t.Run("WakesOnAppend", func(t *testing.T) {
		h := open(t, f, Options{})
		start := h.cursor()
		const waiters = 8
		done := make(chan error, waiters)
		ctx, cancel := context.WithTimeout(h.ctx, patience)
		defer cancel()
		for range waiters {
			go func() { done <- h.s.WaitEvents(ctx, start) }()
		}

		// Give the waiters a moment to block, so that the wake-up path is
		// what is exercised; if they have not, they return at once and the
		// test still holds.
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("WaitEvents returned %v before any event", err)
		default:
		}

		h.makeEvents(1)
		for range waiters {
			if err := <-done; err != nil {
				t.Errorf("WaitEvents after an event was appended: %v", err)
			}
		}
	})

	t.Run("Context", func(t *testing.T) {
		h := open(t, f, Options{})
		start := h.cursor()
		canceled, cancel := context.WithCancel(h.ctx)
		cancel()
		tests := []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"already canceled", func() (context.Context, context.CancelFunc) {
				return canceled, func() {}
			}, context.Canceled},
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(h.ctx, 30*time.Millisecond)
			}, context.DeadlineExceeded},
			{"canceled while waiting", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(h.ctx)
				time.AfterFunc(30*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := tt.ctx()
				defer cancel()
				wantErr(t, "WaitEvents", h.s.WaitEvents(ctx, start), tt.want)
			})
		}
	})

	t.Run("ClosedWhileWaiting", func(t *testing.T) {
		h := open(t, f, Options{})
		start := h.cursor()
		ctx, cancel := context.WithTimeout(h.ctx, patience)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.s.WaitEvents(ctx, start) }()

		time.Sleep(20 * time.Millisecond) // as in WakesOnAppend
		h.must("Close", h.s.Close())
		wantErr(t, "WaitEvents when the store closes", <-done, store.ErrClosed)
	})
}

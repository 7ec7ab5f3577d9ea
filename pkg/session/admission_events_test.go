package session_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// slowReads is a store whose every read of the event log takes, on the
// test's clock, as long as advance.
type slowReads struct {
	store.Store
	clock   *clock
	advance time.Duration
}

func (s *slowReads) Events(ctx context.Context, after uint64, limit int) ([]store.Event, error) {
	s.clock.Advance(s.advance)
	return s.Store.Events(ctx, after, limit)
}

// TestEventsWaitsOnTheRegistryClock lets the registry's clock pass the
// whole wait during the first read of an empty log: the long poll ends at
// once with no events, instead of waiting on the wall clock until the
// caller gives up.
func TestEventsWaitsOnTheRegistryClock(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	reg, err := session.New(session.Config{
		Store:  &slowReads{Store: f.store, clock: f.clock, advance: session.MaxEventWait},
		Now:    f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cursor, err := reg.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The caller's deadline is far shorter than the wait: only the
	// registry's clock can end the poll cleanly before it.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	evs, next, err := reg.Events(ctx, cursor, session.MaxEventWait, 10)
	if err != nil || len(evs) != 0 || next != cursor {
		t.Errorf("Events = %d events, cursor %d, %v; want none, cursor %d, no error",
			len(evs), next, err, cursor)
	}
}

// TestEventsCallerGoesAway ends a long poll by cancelling its context, as a
// router that disconnects does: the wait ends without an error, which the
// server would otherwise log and count as its own fault.
func TestEventsCallerGoesAway(t *testing.T) {
	f := newFixture(t, 10*time.Minute)
	ctx := context.Background()
	cursor, err := f.reg.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cancel func(context.CancelFunc)
	}{
		{"before the poll", func(cancel context.CancelFunc) { cancel() }},
		{"during the wait", func(cancel context.CancelFunc) {
			go func() {
				time.Sleep(50 * time.Millisecond)
				cancel()
			}()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			tc.cancel(cancel)
			evs, next, err := f.reg.Events(ctx, cursor, session.MaxEventWait, 10)
			if err != nil || len(evs) != 0 || next != cursor {
				t.Errorf("Events = %d events, cursor %d, %v; want none, cursor %d, no error",
					len(evs), next, err, cursor)
			}
		})
	}
}

package gate

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sessioncert/sessioncert/models"
)

// Event types of the controller's stream.
const (
	eventSessionRemoved     = "apiSessionRemoved"
	eventCertificateDeleted = "certificateDeleted"
)

// maxHeartbeatIDs is the most session ids one heartbeat may carry.
const maxHeartbeatIDs = 10_000

// Run follows the controller's event stream and sends heartbeats until ctx
// is done. It starts from the current cursor, long-polls for removals and
// applies each one; after an error it reconnects with exponential backoff
// and resumes from the last cursor, so removals made meanwhile still
// arrive. From a failed poll until a poll succeeds again the cache is not
// used: every Admit asks the controller. When the cursor is older than the
// controller's history, Run drops every cached grant, closes every tracked
// connection and starts again from the current cursor.
//
// Run returns nil once ctx is done, ErrLoginRefused or ErrNotRouter when the
// credentials cannot work, and ErrRunning when another Run is active. On
// return it drops the cache and closes the tracked connections: nobody is
// watching removals any more. Run may be called again afterwards.
func (g *Gate) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer g.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.heartbeats(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		g.reset("stopped")
	}()
	return g.follow(ctx)
}

// follow is Run's loop over the event stream.
func (g *Gate) follow(ctx context.Context) error {
	cursor := ""
	failures := 0
	for ctx.Err() == nil {
		var err error
		if cursor == "" {
			_, cursor, err = g.listEvents(ctx, "")
			if err == nil {
				g.startFollowing()
				g.log.Info("following controller events", slog.String("cursor", cursor))
			}
		} else {
			cursor, err = g.poll(ctx, cursor)
		}

		switch {
		case err == nil:
			if failures > 0 {
				g.log.Info("event stream reconnected", slog.String("cursor", cursor))
			}
			failures = 0
			continue
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errCursorExpired):
			g.log.Warn("event cursor expired; dropping every admission and starting again",
				slog.String("cursor", cursor))
			g.reset("cursor expired")
			cursor = ""
			continue
		case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrNotRouter):
			g.log.Error("cannot follow controller events", slog.Any("error", err))
			return err
		}

		// Removals may now go unseen: every decision goes to the
		// controller until a poll succeeds again.
		g.syncedAt.Store(0)
		failures++
		delay := g.backoff(failures)
		g.log.Warn("event stream failed; reconnecting", slog.Any("error", err),
			slog.Int("failures", failures), slog.Duration("retryIn", delay))
		sleep(ctx, delay)
	}
	return nil
}

// poll waits for the events after cursor, applies them and returns the
// cursor to ask from next.
func (g *Gate) poll(ctx context.Context, cursor string) (string, error) {
	evs, next, err := g.listEvents(ctx, cursor)
	if err != nil {
		return cursor, err
	}
	for _, ev := range evs {
		g.apply(ev)
	}
	// A full batch means more events wait: the gate is not current until
	// a poll returns fewer.
	if len(evs) < eventBatch {
		g.syncedAt.Store(g.cfg.Now().UnixNano())
	}
	return next, nil
}

// apply applies one event. An event of a type this version does not know
// is treated as the end of its session: dropping a grant costs one
// controller call, keeping a dead one would let a client through.
func (g *Gate) apply(ev *models.Event) {
	if ev == nil || ev.APISessionID == nil || *ev.APISessionID == "" {
		g.log.Warn("event without a session ignored")
		return
	}
	id := *ev.APISessionID
	typ := ""
	if ev.Type != nil {
		typ = *ev.Type
	}
	switch typ {
	case eventCertificateDeleted:
		g.removeCertificates(id, ev.Fingerprints, "event")
	case eventSessionRemoved:
		g.removeSession(id, "event")
	default:
		g.log.Warn("unknown event type; treating it as the end of the session",
			slog.String("type", typ), slog.String("apiSessionId", id))
		g.removeSession(id, "event")
	}
}

// backoff returns the delay before reconnect attempt n (from 1): it doubles
// from MinBackoff up to MaxBackoff, then a random part of up to a half is
// taken off, so that routers cut off together do not return together.
func (g *Gate) backoff(n int) time.Duration {
	d := g.cfg.MinBackoff
	for i := 1; i < n && d < g.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, g.cfg.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half)) //nolint:gosec // G404: jitter, not a secret
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// heartbeats reports, every HeartbeatInterval, the sessions that have
// tracked connections or used cached grants: the controller counts it as
// their activity, which cached decisions would otherwise hide from it, and
// answers which of them have ended.
func (g *Gate) heartbeats(ctx context.Context) {
	t := time.NewTicker(g.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.pruneTombstones()
		g.heartbeat(ctx)
	}
}

// heartbeat sends one round of heartbeats and applies the ended sessions.
func (g *Gate) heartbeat(ctx context.Context) {
	ids := g.trackedSessions()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range g.cache.takeActive(g.cfg.Now()) {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	for chunk := range slices.Chunk(ids, maxHeartbeatIDs) {
		ended, err := g.sendHeartbeat(ctx, chunk)
		if err != nil {
			if ctx.Err() == nil {
				g.log.Warn("heartbeat failed", slog.Any("error", err),
					slog.Int("sessions", len(chunk)))
			}
			return
		}
		for _, id := range ended {
			g.removeSession(id, "heartbeat")
		}
	}
}

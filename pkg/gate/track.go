package gate

import (
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// tombstone remembers a removal: the generation that applied it and when.
type tombstone struct {
	gen uint64
	at  time.Time
}

// certRef names a certificate within its session.
type certRef struct {
	session     string
	fingerprint string
}

// trackedConn is a connection bound by Track.
type trackedConn struct {
	fingerprint string
	c           io.Closer
}

// RemovalKind says what a Removal removed.
type RemovalKind int

// Kinds of removal.
const (
	// RemovedSession: an API session ended (logout, expiry, delete); every
	// grant and connection of it is gone.
	RemovedSession RemovalKind = iota + 1
	// RemovedCertificates: some certificates of a live session were
	// deleted; grants and connections that used them are gone.
	RemovedCertificates
	// RemovedAll: the gate lost track of removals (the event cursor
	// expired, or Run ended) and dropped every grant and connection.
	RemovedAll
)

// String returns the kind's name for logs: "session", "certificates" or
// "all".
func (k RemovalKind) String() string {
	switch k {
	case RemovedSession:
		return "session"
	case RemovedCertificates:
		return "certificates"
	case RemovedAll:
		return "all"
	default:
		return "unknown"
	}
}

// Removal describes one removal the gate applied, for Config.OnRemoved.
type Removal struct {
	Kind RemovalKind
	// APISessionID is the session, empty for RemovedAll.
	APISessionID string
	// Fingerprints are the certificates removed, for RemovedCertificates.
	Fingerprints []string
	// Admissions and Connections count the cached grants dropped and the
	// tracked connections closed.
	Admissions  int
	Connections int
	// Source says who reported the removal: "event", "heartbeat", "cursor
	// expired" or "stopped".
	Source string
}

// Track binds an open connection to the session and certificate of a, so
// that the gate closes c when either is removed or when the gate loses
// track of removals. The caller calls release once the connection has
// closed on its own; release is idempotent.
//
// If a's session or certificate was removed after the controller granted a,
// or the gate was reset since, Track closes c at once and returns a
// *RefusedError: between Admit and Track a removal could otherwise slip by
// unseen. Call Track promptly after Admit, within Config.TombstoneTTL;
// tombstones of older removals are forgotten, and only the next heartbeat
// would then catch them.
//
// Track returns ErrNotFollowing, and leaves c open, while Run does not
// follow the event stream, or when a's controller call started before Run
// took its current cursor: a removal between the grant and that cursor
// would never arrive as an event, and c would outlive it. A fresh Admit and
// Track succeed once Run follows the stream again.
//
// c.Close is called from the goroutine applying the removal and should not
// block; for a TLS connection, close the underlying TCP connection.
func (g *Gate) Track(a *Admission, c io.Closer) (release func(), err error) {
	g.mu.Lock()
	code := g.removedSince(a)
	if code == "" && a.gen < g.resetGen {
		code = CodeInvalidAPISession
	}
	if code != "" {
		g.mu.Unlock()
		_ = c.Close()
		return func() {}, &RefusedError{Code: code}
	}
	if !g.following.Load() || a.gen < g.baseGen {
		g.mu.Unlock()
		return func() {}, ErrNotFollowing
	}
	t := &trackedConn{fingerprint: a.Fingerprint, c: c}
	set := g.tracked[a.APISessionID]
	if set == nil {
		set = make(map[*trackedConn]struct{})
		g.tracked[a.APISessionID] = set
	}
	set[t] = struct{}{}
	g.trackCount++
	g.mu.Unlock()

	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		set := g.tracked[a.APISessionID]
		if _, ok := set[t]; !ok {
			return
		}
		delete(set, t)
		g.trackCount--
		if len(set) == 0 {
			delete(g.tracked, a.APISessionID)
		}
	}, nil
}

// removedSince returns the refusal code when a's session or certificate
// was removed after a's controller call started, else "". The caller holds
// g.mu.
func (g *Gate) removedSince(a *Admission) string {
	if t, ok := g.sessTombs[a.APISessionID]; ok && t.gen > a.gen {
		return CodeInvalidAPISession
	}
	if t, ok := g.certTombs[certRef{a.APISessionID, a.Fingerprint}]; ok && t.gen > a.gen {
		return CodeCertificateNotBound
	}
	return ""
}

// removeSession applies the end of a session.
func (g *Gate) removeSession(id, source string) {
	g.mu.Lock()
	g.gen++
	g.sessTombs[id] = tombstone{gen: g.gen, at: g.cfg.Now()}
	dropped := g.cache.removeSession(id)
	var closers []io.Closer
	for t := range g.tracked[id] {
		closers = append(closers, t.c)
	}
	g.trackCount -= len(closers)
	delete(g.tracked, id)
	g.mu.Unlock()

	closeAll(closers)
	g.removed(Removal{Kind: RemovedSession, APISessionID: id, Admissions: dropped,
		Connections: len(closers), Source: source})
}

// removeCertificates applies the delete of certificates of a live session.
func (g *Gate) removeCertificates(id string, fingerprints []string, source string) {
	g.mu.Lock()
	g.gen++
	now := g.cfg.Now()
	for _, fp := range fingerprints {
		g.certTombs[certRef{id, fp}] = tombstone{gen: g.gen, at: now}
	}
	dropped := g.cache.removeCertificates(id, fingerprints)
	var closers []io.Closer
	set := g.tracked[id]
	for t := range set {
		if slices.Contains(fingerprints, t.fingerprint) {
			closers = append(closers, t.c)
			delete(set, t)
		}
	}
	g.trackCount -= len(closers)
	if len(set) == 0 {
		delete(g.tracked, id)
	}
	g.mu.Unlock()

	closeAll(closers)
	g.removed(Removal{Kind: RemovedCertificates, APISessionID: id, Fingerprints: fingerprints,
		Admissions: dropped, Connections: len(closers), Source: source})
}

// reset forgets everything: the event stream can no longer tell what was
// removed. Grants in flight are retried by decide, as their generation
// is now older than the reset.
func (g *Gate) reset(source string) {
	g.mu.Lock()
	g.gen++
	g.resetGen = g.gen
	g.following.Store(false)
	dropped := g.cache.clear()
	var closers []io.Closer
	for _, set := range g.tracked {
		for t := range set {
			closers = append(closers, t.c)
		}
	}
	g.tracked = make(map[string]map[*trackedConn]struct{})
	g.trackCount = 0
	// The reset generation covers every older removal.
	clear(g.sessTombs)
	clear(g.certTombs)
	g.mu.Unlock()

	closeAll(closers)
	g.removed(Removal{Kind: RemovedAll, Admissions: dropped, Connections: len(closers),
		Source: source})
}

// startFollowing records that the current cursor was just obtained: grants
// whose call starts from now on may be cached.
func (g *Gate) startFollowing() {
	g.mu.Lock()
	g.gen++
	g.baseGen = g.gen
	g.syncedAt.Store(g.cfg.Now().UnixNano())
	g.following.Store(true)
	first := !g.readyOnce
	g.readyOnce = true
	g.mu.Unlock()
	if first {
		close(g.ready)
	}
}

// pruneTombstones forgets removals older than TombstoneTTL. By then every
// controller call that started before them has ended.
func (g *Gate) pruneTombstones() {
	g.mu.Lock()
	defer g.mu.Unlock()
	cutoff := g.cfg.Now().Add(-g.cfg.TombstoneTTL)
	maps.DeleteFunc(g.sessTombs, func(_ string, t tombstone) bool { return t.at.Before(cutoff) })
	maps.DeleteFunc(g.certTombs, func(_ certRef, t tombstone) bool { return t.at.Before(cutoff) })
}

// trackedSessions returns the sessions with tracked connections.
func (g *Gate) trackedSessions() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Collect(maps.Keys(g.tracked))
}

func (g *Gate) removed(r Removal) {
	g.log.Debug("removal applied", slog.String("kind", r.Kind.String()),
		slog.String("apiSessionId", r.APISessionID), slog.Int("fingerprints", len(r.Fingerprints)),
		slog.Int("admissions", r.Admissions), slog.Int("connections", r.Connections),
		slog.String("source", r.Source))
	if g.cfg.OnRemoved != nil {
		g.cfg.OnRemoved(r)
	}
}

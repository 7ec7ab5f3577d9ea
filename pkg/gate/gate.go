package gate

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Admission is a granted admission: who the client is, and until when the
// controller's answer holds at most. Admit may return the same *Admission to
// many callers; callers must not modify it.
type Admission struct {
	APISessionID  string
	IdentityID    string
	IdentityName  string
	CertificateID string

	// Fingerprint is the controller's name of the leaf: lower-case hex
	// SHA-1 of its DER, as removal events carry it.
	Fingerprint string

	// SessionExpiresAt is the session's expiry when the controller decided;
	// activity moves it later. CertificateValidTo is the leaf's NotAfter.
	SessionExpiresAt   time.Time
	CertificateValidTo time.Time

	// gen is the gate's removal generation when the controller call that
	// produced this grant started.
	gen uint64
}

// Gate decides admissions for an edge router. Build it with New; all its
// methods are safe for concurrent use.
type Gate struct {
	cfg   Config
	log   *slog.Logger
	cache *cache
	ready chan struct{}

	flightMu sync.Mutex
	flights  map[cacheKey]*flight

	// token is the router's own session token, nil before the first login.
	token   atomic.Pointer[string]
	loginMu sync.Mutex

	running   atomic.Bool
	following atomic.Bool
	// syncedAt is the unix nanoseconds of the last poll that left the gate
	// current with the event stream, or zero since a poll failed.
	syncedAt atomic.Int64

	// mu guards the removal state: the generation counter, the tombstones
	// and the tracked connections. Lock order: mu before the cache's lock.
	mu         sync.Mutex
	gen        uint64
	resetGen   uint64 // generation of the last full reset
	baseGen    uint64 // generation at which the current cursor was obtained
	readyOnce  bool
	sessTombs  map[string]tombstone
	certTombs  map[certRef]tombstone
	tracked    map[string]map[*trackedConn]struct{}
	trackCount int
}

// New returns a gate configured by cfg. It does not contact the controller:
// the first Admit or Run logs in. It returns an error when a required field
// is missing or a setting is out of range.
func New(cfg Config) (*Gate, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Gate{
		cfg:       cfg,
		log:       cfg.Logger,
		cache:     newCache(cfg.CacheSize),
		ready:     make(chan struct{}),
		flights:   make(map[cacheKey]*flight),
		sessTombs: make(map[string]tombstone),
		certTombs: make(map[certRef]tombstone),
		tracked:   make(map[string]map[*trackedConn]struct{}),
	}, nil
}

// Ready returns a channel that is closed once Run follows the event stream
// for the first time. Until then no grant is cached.
func (g *Gate) Ready() <-chan struct{} { return g.ready }

// Admit decides whether a client that presented chain (leaf first, as
// received in the TLS handshake) and token may pass. A cached grant is
// returned at once; otherwise the controller decides, and concurrent calls
// for the same token and leaf share its answer.
//
// A refusal is a *RefusedError: CodeMissingToken for an empty token,
// CodeMissingCertificate for an empty chain, else the controller's code
// (including its 400 and 413 codes for input it cannot judge).
// Refusals are not cached, so a later grant is never hidden by one. Other
// errors mean no decision was reached (ErrUnavailable, ErrLoginRefused,
// ErrNotRouter, ErrUnsettled, or ctx's error); the caller must refuse then
// too. Admit does not check the chain against a CA: the TLS handshake and
// the controller do.
func (g *Gate) Admit(
	ctx context.Context,
	token string,
	chain []*x509.Certificate,
) (*Admission, error) {
	if token == "" {
		return nil, &RefusedError{Code: CodeMissingToken}
	}
	if len(token) > maxTokenLength {
		return nil, &RefusedError{Code: CodeInvalidAPISession}
	}
	if len(chain) == 0 || chain[0] == nil || len(chain[0].Raw) == 0 {
		return nil, &RefusedError{Code: CodeMissingCertificate}
	}
	key := cacheKey{token: sha256.Sum256([]byte(token)), leaf: sha256.Sum256(chain[0].Raw)}
	now := g.cfg.Now()
	if g.cacheUsable(now) {
		if adm := g.cache.get(key, now); adm != nil {
			return adm, nil
		}
	}
	return g.admitShared(ctx, key, token, chain)
}

// maxTokenLength is the longest token createAdmission accepts; the
// controller issues far shorter ones, so a longer token names no session.
const maxTokenLength = 1024

// cacheUsable says whether cached grants may be trusted, as removals could
// otherwise go unseen: only while Run follows the stream, its last poll
// succeeded, and that poll answered within MaxStale (a long poll may hang
// without failing).
func (g *Gate) cacheUsable(now time.Time) bool {
	if !g.following.Load() {
		return false
	}
	synced := g.syncedAt.Load()
	return synced != 0 && now.Sub(time.Unix(0, synced)) <= g.cfg.MaxStale
}

// flight is one controller call that concurrent misses of the same key
// wait for.
type flight struct {
	done chan struct{}
	adm  *Admission
	err  error
}

// admitShared joins the flight for key or starts one. The call runs in its
// own goroutine, bounded by CallTimeout, so that a waiter whose context
// ends leaves without failing the others.
func (g *Gate) admitShared(
	ctx context.Context,
	key cacheKey,
	token string,
	chain []*x509.Certificate,
) (*Admission, error) {
	g.flightMu.Lock()
	f := g.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		g.flights[key] = f
		callCtx := context.WithoutCancel(ctx)
		go func() {
			f.adm, f.err = g.decide(callCtx, key, token, chain)
			g.flightMu.Lock()
			delete(g.flights, key)
			g.flightMu.Unlock()
			close(f.done)
		}()
	}
	g.flightMu.Unlock()

	select {
	case <-f.done:
		return f.adm, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// maxDecideAttempts bounds the controller calls of one decision when resets
// or new cursors keep invalidating the answers.
const maxDecideAttempts = 3

// decide asks the controller and records the answer.
func (g *Gate) decide(
	ctx context.Context,
	key cacheKey,
	token string,
	chain []*x509.Certificate,
) (*Admission, error) {
	for range maxDecideAttempts {
		start := g.generation()
		adm, err := g.askAdmission(ctx, token, chain)
		if err != nil {
			return nil, err
		}
		adm.gen = start

		code, retry := g.keep(key, adm, chain[0])
		if code != "" {
			g.log.Debug("grant overtaken by a removal",
				slog.String("apiSessionId", adm.APISessionID),
				slog.String("fingerprint", adm.Fingerprint), slog.String("code", code))
			return nil, &RefusedError{Code: code}
		}
		if !retry {
			return adm, nil
		}
	}
	return nil, ErrUnsettled
}

// generation returns the current removal generation.
func (g *Gate) generation() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

// keep checks a fresh grant against the removals applied since its call
// started, and caches it when that is safe.
//
// The controller may grant a request, then see the session or certificate
// removed, and the removal's event may reach this gate before the grant
// does. Such a grant is refused here: its session or certificate has a
// tombstone younger than the call. A full reset during the call means
// removals were lost, so the answer is not trusted and the caller asks
// again; so does a call that started before the current cursor was
// obtained, as a removal between its grant and that cursor would never
// arrive. Every grant kept while Run follows the stream thus started after
// the cursor: any later removal of it is an event after that cursor, which
// Run applies to the cache and to the connections tracked with it.
func (g *Gate) keep(
	key cacheKey,
	adm *Admission,
	leaf *x509.Certificate,
) (code string, retry bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if code := g.removedSince(adm); code != "" {
		return code, false
	}
	following := g.following.Load()
	if adm.gen < g.resetGen || (following && adm.gen < g.baseGen) {
		return "", true
	}
	now := g.cfg.Now()
	expires := earliest(adm.SessionExpiresAt, adm.CertificateValidTo, leaf.NotAfter)
	if following && now.Before(expires) {
		g.cache.put(key, adm, expires, now)
	}
	return "", false
}

func earliest(first time.Time, rest ...time.Time) time.Time {
	for _, t := range rest {
		if t.Before(first) {
			first = t
		}
	}
	return first
}

// Stats are counters of a gate's state, for metrics and tests.
type Stats struct {
	// CachedAdmissions counts cached grants, expired ones not yet evicted
	// included.
	CachedAdmissions int
	// TrackedConnections counts connections bound by Track and not yet
	// released or closed.
	TrackedConnections int
	// Following says whether Run currently follows the event stream.
	Following bool
	// Current says whether Admit answers from the cache now: Run follows
	// the stream, its last poll succeeded, and it answered within MaxStale.
	Current bool
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	tracked := g.trackCount
	g.mu.Unlock()
	return Stats{
		CachedAdmissions:   g.cache.len(),
		TrackedConnections: tracked,
		Following:          g.following.Load(),
		Current:            g.cacheUsable(g.cfg.Now()),
	}
}

// closeAll closes connections outside any lock. Closers are expected to
// be quick, such as a raw TCP connection; their errors are of no use here,
// as the connection is gone either way.
func closeAll(cs []io.Closer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// Package session is the registry of API sessions: it creates a session on
// login, resolves a token to a live session on every authenticated request
// (from memory on the hot path), slides expiry on activity with coalesced
// writes, ends sessions on logout, expiry or an administrator's delete, and
// issues and removes the certificates that belong to a session.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Defaults of Config.
const (
	DefaultTimeout       = 30 * time.Minute
	MinTimeout           = time.Minute
	DefaultFlushInterval = 5 * time.Second
	DefaultSweepInterval = 30 * time.Second
	DefaultClockSkew     = 5 * time.Second
	sweepBatch           = 1000
)

// forgetRing is how many of the latest forgotten session ids the registry
// remembers, so that a load that read a session just before it was
// forgotten does not cache it; see Registry.load. A load that more
// removals overtook than this caches nothing.
const forgetRing = 1024

// Errors returned by the registry.
var (
	// ErrInvalidToken is returned for a token that names no live session:
	// unknown, ended or expired. Callers cannot tell which, by design.
	ErrInvalidToken = errors.New("session: invalid token")

	// ErrNotFound is returned for a session or certificate that does not
	// exist or is not visible to the caller.
	ErrNotFound = errors.New("session: not found")
)

// Config configures a Registry. Store is required; zero values of the other
// fields select the defaults.
type Config struct {
	Store store.Store

	// Timeout is the idle timeout of sessions: a session expires Timeout
	// after its last activity. Default DefaultTimeout.
	Timeout time.Duration

	// FlushInterval is how often coalesced activity is written to the
	// store. Default DefaultFlushInterval.
	FlushInterval time.Duration

	// SweepInterval is how often expired sessions are removed from the
	// store. Default DefaultSweepInterval.
	SweepInterval time.Duration

	// Revalidate is how long a cached session and its identity are trusted
	// before the next request reads them again from the store. Zero means
	// for as long as they live, which is right only when this registry is
	// the store's sole writer (bolt). Replicas sharing a store (etcd) set it,
	// so that activity seen by another replica, and a change to the identity
	// made there, reach this one within Revalidate. A cached session that
	// looks expired is always read again first when Revalidate is set.
	//
	// A registry with Revalidate set also sweeps with a margin: another
	// replica may hold up to FlushInterval of activity it has not written
	// yet, measured by its own clock, so a session is removed only
	// FlushInterval plus ClockSkew after its stored ExpiresAt. Requests
	// still meet the exact expiry: an entry that looks expired is read
	// again, and refused if the store holds no later activity either.
	Revalidate time.Duration

	// ClockSkew is how far apart the clocks of the replicas sharing the
	// store may be; it widens the sweep margin described at Revalidate,
	// and is ignored without Revalidate. Zero means DefaultClockSkew. The
	// replicas' clocks must agree within it, and a store that ends idle
	// sessions by itself as a backstop (the etcd lease, after its slack)
	// must wait longer than FlushInterval plus ClockSkew past an ExpiresAt:
	// give such a store the same two values (etcd.Options.FlushInterval and
	// ClockSkew), from which it derives its slack.
	ClockSkew time.Duration

	// Now is the clock; default time.Now.
	Now func() time.Time

	// Rand is the source of tokens and ids; default crypto/rand.Reader.
	Rand io.Reader

	// Logger receives lifecycle and fault messages; default slog.Default().
	Logger *slog.Logger

	// Observer is told about sessions and certificates as they change;
	// nil means no one listens.
	Observer Observer
}

// Observer is notified of session lifecycle changes, for metrics and the
// audit trail. Methods are called synchronously after the change is durable
// and must not block.
type Observer interface {
	// SessionCreated reports a new session and how many certificates it
	// started with (the client certificate of a cert login).
	SessionCreated(s *Session, initialCerts int)
	// SessionRemoved reports a session that ended, with its certificates.
	SessionRemoved(ev store.Event)
	// SweepDone reports a sweeper run: sessions removed for expiry and
	// certificates removed past their validity.
	SweepDone(removedSessions, expiredCerts int, err error)
}

// Session is a snapshot of a live API session and its identity. It is a
// copy: changing it changes nothing in the registry.
type Session struct {
	store.APISession
	Identity store.Identity
}

// entry is the cached state of one session. The mutex guards everything
// but the session's id and token hash, which never change.
type entry struct {
	mu       sync.Mutex
	session  store.APISession
	identity store.Identity
	dirty    bool

	// checkedAt is when session and identity were last read from the
	// store (or created here); see Config.Revalidate.
	checkedAt time.Time
}

// Registry holds the live sessions. It is safe for concurrent use.
type Registry struct {
	cfg Config

	mu     sync.RWMutex
	byHash map[store.TokenHash]*entry
	byID   map[string]*entry

	// forgets counts the sessions forgotten, and forgotten holds the ids
	// of the latest of them: the n-th is at forgotten[n%forgetRing]. A
	// change that may affect any entry moves forgets past the ring. Both
	// are guarded by mu; see load.
	forgets   uint64
	forgotten [forgetRing]string

	dirtyMu sync.Mutex
	dirty   map[string]*entry

	lastSweep   sync.Mutex
	lastSweepAt time.Time

	// drained is done once Drain was called.
	drained context.Context
	drain   context.CancelFunc
}

// New returns a registry over cfg.Store. Call Run to start the background
// flusher and sweeper, and Close to flush pending activity on shutdown.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("session: no store")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Timeout < MinTimeout {
		return nil, fmt.Errorf("session: timeout %s is below the minimum of %s", cfg.Timeout, MinTimeout)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	drained, drain := context.WithCancel(context.Background())
	return &Registry{
		cfg:     cfg,
		byHash:  make(map[store.TokenHash]*entry),
		byID:    make(map[string]*entry),
		dirty:   make(map[string]*entry),
		drained: drained,
		drain:   drain,
	}, nil
}

// Drain releases every long poll waiting in Events, and makes later calls
// return at once, so that a shutting-down server is not held up by routers
// waiting for events.
func (r *Registry) Drain() { r.drain() }

// Timeout returns the idle timeout of sessions.
func (r *Registry) Timeout() time.Duration { return r.cfg.Timeout }

// HashToken returns the SHA-256 of a token, the only form in which tokens
// are stored or indexed.
func HashToken(token string) store.TokenHash { return sha256.Sum256([]byte(token)) }

// CreateRequest describes a new session.
type CreateRequest struct {
	Identity        *store.Identity
	AuthenticatorID string
	AuthMethod      string
	IPAddress       string

	// Certificates are stored with the session atomically: the client
	// certificate of a cert login. Their APISessionID is filled in.
	Certificates []*store.Certificate

	// Confirm, when not nil, runs once the session is stored, before
	// anyone can use it: when it returns an error, the session is removed
	// again and Create returns that error. A login uses it to see that its
	// credential was not revoked while the session was being stored.
	Confirm func(ctx context.Context) error
}

// Create starts a session and returns its token (32 random bytes, URL-safe
// base64) with a snapshot of the session. The token is returned once and
// never stored.
func (r *Registry) Create(ctx context.Context, req CreateRequest) (string, *Session, error) {
	var raw [32]byte
	if _, err := io.ReadFull(r.cfg.Rand, raw[:]); err != nil {
		return "", nil, fmt.Errorf("session: token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	id, err := store.NewID(r.cfg.Rand)
	if err != nil {
		return "", nil, err
	}

	now := r.cfg.Now().UTC()
	s := store.APISession{
		ID:              id,
		TokenHash:       HashToken(token),
		IdentityID:      req.Identity.ID,
		AuthenticatorID: req.AuthenticatorID,
		AuthMethod:      req.AuthMethod,
		IPAddress:       req.IPAddress,
		Timeout:         r.cfg.Timeout,
		CreatedAt:       now,
		UpdatedAt:       now,
		LastActivityAt:  now,
		ExpiresAt:       now.Add(r.cfg.Timeout),
	}
	for _, c := range req.Certificates {
		c.APISessionID = id
		c.IdentityID = req.Identity.ID
	}
	stored := s
	if err := r.cfg.Store.CreateAPISession(ctx, &stored, req.Certificates); err != nil {
		return "", nil, fmt.Errorf("session: create: %w", err)
	}
	if req.Confirm != nil {
		if err := req.Confirm(ctx); err != nil {
			// The removal must not depend on the client staying connected.
			_, derr := r.cfg.Store.DeleteAPISession(context.WithoutCancel(ctx), id, store.CauseAdmin, now)
			if derr != nil && !errors.Is(derr, store.ErrNotFound) {
				return "", nil, errors.Join(err, fmt.Errorf("session: remove the unconfirmed session: %w", derr))
			}
			return "", nil, err
		}
	}

	e := &entry{session: s, identity: *req.Identity, checkedAt: now}
	r.mu.Lock()
	r.byHash[s.TokenHash] = e
	r.byID[s.ID] = e
	r.mu.Unlock()

	snap := e.snapshot()
	if r.cfg.Observer != nil {
		r.cfg.Observer.SessionCreated(snap, len(req.Certificates))
	}
	return token, snap, nil
}

// Resolve returns the live session named by token and records the request
// as activity, sliding the session's expiry. It returns ErrInvalidToken for
// an unknown, ended or expired token, and a store error if the store fails.
// A session past its expiry is refused here even before the sweeper has
// removed it.
func (r *Registry) Resolve(ctx context.Context, token string) (*Session, error) {
	e, err := r.lookup(ctx, HashToken(token))
	if err != nil {
		return nil, err
	}
	return r.touch(ctx, e)
}

// Get returns the live session with that id without counting activity, or
// ErrNotFound.
func (r *Registry) Get(ctx context.Context, id string) (*Session, error) {
	r.mu.RLock()
	e, ok := r.byID[id]
	since := r.forgets
	r.mu.RUnlock()
	if !ok {
		s, err := r.cfg.Store.GetAPISession(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("session: get: %w", err)
		}
		e, err = r.load(ctx, s, since)
		if errors.Is(err, ErrInvalidToken) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
	}
	err := r.revalidateIfDue(ctx, e, r.cfg.Now().UTC())
	if errors.Is(err, ErrInvalidToken) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	snap := e.snapshot()
	if !r.cfg.Now().Before(snap.ExpiresAt) {
		return nil, ErrNotFound
	}
	return snap, nil
}

// Touch records activity of the session with that id (a router heartbeat,
// for example). It returns ErrNotFound when the session is not live.
func (r *Registry) Touch(ctx context.Context, id string) error {
	r.mu.RLock()
	e, ok := r.byID[id]
	since := r.forgets
	r.mu.RUnlock()
	if !ok {
		s, err := r.cfg.Store.GetAPISession(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("session: get: %w", err)
		}
		e, err = r.load(ctx, s, since)
		if errors.Is(err, ErrInvalidToken) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
	}
	_, err := r.touch(ctx, e)
	if errors.Is(err, ErrInvalidToken) {
		return ErrNotFound
	}
	return err
}

// lookup finds the cache entry of a token hash, loading it from the store
// on a miss.
func (r *Registry) lookup(ctx context.Context, h store.TokenHash) (*entry, error) {
	r.mu.RLock()
	e, ok := r.byHash[h]
	since := r.forgets
	r.mu.RUnlock()
	if ok {
		return e, nil
	}
	s, err := r.cfg.Store.FindAPISessionByTokenHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("session: find by token: %w", err)
	}
	return r.load(ctx, s, since)
}

// load caches a session read from the store together with its identity.
// since is the count of forgotten sessions taken before the session was
// read: a removal applied here after that (an event from another replica,
// say) may have come between the read and now, and caching what was read
// would then trust a removed session until Revalidate, or for good without
// it. So a session forgotten since is refused with ErrInvalidToken (ids
// are never reused), and when it cannot be told, because more sessions
// were forgotten than the registry remembers or the whole cache was
// dropped, the entry serves this one request and is not cached.
func (r *Registry) load(ctx context.Context, s *store.APISession, since uint64) (*entry, error) {
	id, err := r.cfg.Store.GetIdentity(ctx, s.IdentityID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("session: get identity: %w", err)
	}
	e := &entry{session: *s, identity: *id, checkedAt: r.cfg.Now().UTC()}
	// A session keeps nothing of its login's configTypes, but a record
	// written by an earlier version may still hold them: the cache does not.
	e.session.ConfigTypes = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.byID[s.ID]; ok {
		return cur, nil
	}
	if n := r.forgets - since; n > forgetRing {
		return e, nil
	}
	for n := since; n != r.forgets; n++ {
		if r.forgotten[n%forgetRing] == s.ID {
			return nil, ErrInvalidToken
		}
	}
	r.byHash[s.TokenHash] = e
	r.byID[s.ID] = e
	return e, nil
}

// touch checks expiry and slides it. The first touch after a flush marks the
// entry dirty; later ones cost only the entry's lock.
func (r *Registry) touch(ctx context.Context, e *entry) (*Session, error) {
	now := r.cfg.Now().UTC()
	if err := r.revalidateIfDue(ctx, e, now); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if !now.Before(e.session.ExpiresAt) {
		e.mu.Unlock()
		return nil, ErrInvalidToken
	}
	e.session.LastActivityAt = now
	e.session.ExpiresAt = now.Add(e.session.Timeout)
	markDirty := !e.dirty
	e.dirty = true
	snap := &Session{APISession: e.session, Identity: e.identity}
	e.mu.Unlock()

	if markDirty {
		r.dirtyMu.Lock()
		r.dirty[e.session.ID] = e
		r.dirtyMu.Unlock()
	}
	return snap, nil
}

// revalidateIfDue reads the entry's session and identity again from the
// store when Config.Revalidate asks for it: when the entry was last read
// longer than Revalidate ago, or when it looks expired (another replica may
// have seen later activity). Activity merges by taking the later of the two,
// so neither this replica's unflushed activity nor another's is lost. It
// returns ErrInvalidToken, after forgetting the entry, when the session or
// its identity is gone, and a store error when the store cannot answer: a
// session that cannot be checked is not trusted.
func (r *Registry) revalidateIfDue(ctx context.Context, e *entry, now time.Time) error {
	if r.cfg.Revalidate <= 0 {
		return nil
	}
	e.mu.Lock()
	due := now.Sub(e.checkedAt) >= r.cfg.Revalidate || !now.Before(e.session.ExpiresAt)
	e.mu.Unlock()
	if !due {
		return nil
	}

	id := e.session.ID
	s, err := r.cfg.Store.GetAPISession(ctx, id)
	if err == nil {
		var ident *store.Identity
		if ident, err = r.cfg.Store.GetIdentity(ctx, s.IdentityID); err == nil {
			e.refresh(s, ident, now)
			return nil
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		r.Forget(id)
		return ErrInvalidToken
	}
	return fmt.Errorf("session: revalidate: %w", err)
}

// refresh merges a session and identity read from the store into the entry.
func (e *entry) refresh(s *store.APISession, ident *store.Identity, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.LastActivityAt.After(e.session.LastActivityAt) {
		e.session.LastActivityAt = s.LastActivityAt
	}
	if s.ExpiresAt.After(e.session.ExpiresAt) {
		e.session.ExpiresAt = s.ExpiresAt
	}
	e.identity = *ident
	e.checkedAt = now
}

func (e *entry) snapshot() *Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	return &Session{APISession: e.session, Identity: e.identity}
}

// Delete ends the session with that id and all its certificates, for the
// given cause, and returns the removal event. ErrNotFound if it is not live.
func (r *Registry) Delete(ctx context.Context, id string, cause store.Cause) (*store.Event, error) {
	ev, err := r.cfg.Store.DeleteAPISession(ctx, id, cause, r.cfg.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		r.Forget(id)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: delete: %w", err)
	}
	r.Forget(id)
	if r.cfg.Observer != nil {
		r.cfg.Observer.SessionRemoved(*ev)
	}
	return ev, nil
}

// Forget drops a session from the cache, so the next request with its token
// goes to the store. Call it when the session was removed elsewhere (by
// another replica, or with its identity).
func (r *Registry) Forget(id string) {
	r.mu.Lock()
	e, ok := r.byID[id]
	if ok {
		delete(r.byID, id)
		delete(r.byHash, e.session.TokenHash)
	}
	r.forgotten[r.forgets%forgetRing] = id
	r.forgets++
	r.mu.Unlock()
	r.dirtyMu.Lock()
	delete(r.dirty, id)
	r.dirtyMu.Unlock()
}

// IdentityChanged gives every cached session of the identity its new
// state, so that the next request of each sees the change (an admin flag
// taken away, say). Their unflushed activity is kept. Other replicas see
// the change within Config.Revalidate.
func (r *Registry) IdentityChanged(ident *store.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A load in flight may have read the identity before the change.
	r.forgetsPastRing()
	for _, e := range r.byID {
		e.mu.Lock()
		if e.identity.ID == ident.ID {
			e.identity = *ident
		}
		e.mu.Unlock()
	}
}

// ForgetIdentity drops every cached session of an identity, after the
// identity was deleted, so that the next request with one of their tokens
// goes to the store.
func (r *Registry) ForgetIdentity(identityID string) {
	r.mu.RLock()
	var ids []string
	for id, e := range r.byID {
		e.mu.Lock()
		if e.identity.ID == identityID {
			ids = append(ids, id)
		}
		e.mu.Unlock()
	}
	r.mu.RUnlock()
	for _, id := range ids {
		r.Forget(id)
	}
}

// Flush writes coalesced activity to the store.
func (r *Registry) Flush(ctx context.Context) error {
	r.dirtyMu.Lock()
	pending := r.dirty
	r.dirty = make(map[string]*entry, len(pending))
	r.dirtyMu.Unlock()
	if len(pending) == 0 {
		return nil
	}

	touches := make([]store.Touch, 0, len(pending))
	for _, e := range pending {
		e.mu.Lock()
		e.dirty = false
		touches = append(touches, store.Touch{
			APISessionID:   e.session.ID,
			LastActivityAt: e.session.LastActivityAt,
			ExpiresAt:      e.session.ExpiresAt,
		})
		e.mu.Unlock()
	}
	if err := r.cfg.Store.TouchAPISessions(ctx, touches); err != nil {
		// Put them back so that the next flush tries again.
		r.dirtyMu.Lock()
		for id, e := range pending {
			e.mu.Lock()
			e.dirty = true
			e.mu.Unlock()
			r.dirty[id] = e
		}
		r.dirtyMu.Unlock()
		return fmt.Errorf("session: flush activity: %w", err)
	}
	return nil
}

// Sweep flushes pending activity, then removes every expired session with
// its certificates, recording one event each, and removes certificates past
// their validity. It returns how many sessions it removed. With Revalidate
// set, a session is removed only once its stored ExpiresAt is the sweep
// margin old (see Config.Revalidate); its event is stamped with that
// cutoff, a moment at which it had expired on every replica.
func (r *Registry) Sweep(ctx context.Context) (int, error) {
	removed, expired, err := r.sweep(ctx)
	r.lastSweep.Lock()
	if err == nil {
		r.lastSweepAt = r.cfg.Now()
	}
	r.lastSweep.Unlock()
	if r.cfg.Observer != nil {
		r.cfg.Observer.SweepDone(removed, expired, err)
	}
	return removed, err
}

func (r *Registry) sweep(ctx context.Context) (removed, expired int, err error) {
	if err := r.Flush(ctx); err != nil {
		return 0, 0, err
	}
	for {
		cutoff := r.cfg.Now().UTC().Add(-r.sweepMargin())
		evs, err := r.cfg.Store.DeleteExpiredAPISessions(ctx, cutoff, sweepBatch)
		if err != nil {
			return removed, expired, fmt.Errorf("session: sweep: %w", err)
		}
		for _, ev := range evs {
			r.Forget(ev.APISessionID)
			if r.cfg.Observer != nil {
				r.cfg.Observer.SessionRemoved(ev)
			}
		}
		removed += len(evs)
		if len(evs) < sweepBatch {
			break
		}
	}
	for {
		n, err := r.cfg.Store.DeleteExpiredCertificates(ctx, r.cfg.Now().UTC(), sweepBatch)
		expired += n
		if err != nil {
			return removed, expired, fmt.Errorf("session: sweep certificates: %w", err)
		}
		if n < sweepBatch {
			return removed, expired, nil
		}
	}
}

// sweepMargin is how long after its stored ExpiresAt a session is swept:
// nothing for the store's only writer, which flushed its activity first;
// for replicas sharing the store, the activity another replica may not
// have written yet, as far as its clock may be off.
func (r *Registry) sweepMargin() time.Duration {
	if r.cfg.Revalidate <= 0 {
		return 0
	}
	return r.cfg.FlushInterval + r.cfg.ClockSkew
}

// LastSweep returns when the last successful sweep finished, or the zero
// time if none has.
func (r *Registry) LastSweep() time.Time {
	r.lastSweep.Lock()
	defer r.lastSweep.Unlock()
	return r.lastSweepAt
}

// Run flushes activity and sweeps expired sessions in the background until
// ctx is done, and follows the store's removal events so that sessions
// removed by another replica leave the cache. It returns when ctx is done.
func (r *Registry) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.followEvents(ctx)
	}()

	flush := time.NewTicker(r.cfg.FlushInterval)
	sweep := time.NewTicker(r.cfg.SweepInterval)
	defer flush.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-flush.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error("flush session activity failed", slog.Any("error", err))
			}
		case <-sweep.C:
			if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error("sweep failed", slog.Any("error", err))
			}
		}
	}
}

// followEvents evicts cached sessions named by removal events, so that a
// session ended on another replica is refused here too.
func (r *Registry) followEvents(ctx context.Context) {
	cursor, err := r.cfg.Store.EventCursor(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Warn("read event cursor failed", slog.Any("error", err))
		if !sleep(ctx, time.Second) {
			return
		}
		cursor, err = r.cfg.Store.EventCursor(ctx)
	}
	for ctx.Err() == nil {
		evs, err := r.cfg.Store.Events(ctx, cursor, 1000)
		switch {
		case errors.Is(err, store.ErrCursorExpired):
			// Events were lost: nothing in the cache can be trusted.
			r.forgetAll()
			if cursor, err = r.cfg.Store.EventCursor(ctx); err != nil {
				_ = sleep(ctx, time.Second)
			}
			continue
		case err != nil:
			if ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
				r.cfg.Logger.Warn("read events failed", slog.Any("error", err))
			}
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for _, ev := range evs {
			if ev.Type == store.EventAPISessionRemoved {
				r.Forget(ev.APISessionID)
			}
			cursor = ev.Cursor
		}
		if len(evs) > 0 {
			continue
		}
		if err := r.cfg.Store.WaitEvents(ctx, cursor); err != nil {
			if errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
				return
			}
			if !sleep(ctx, time.Second) {
				return
			}
		}
	}
}

func (r *Registry) forgetAll() {
	r.mu.Lock()
	r.byHash = make(map[store.TokenHash]*entry)
	r.byID = make(map[string]*entry)
	r.forgetsPastRing()
	r.mu.Unlock()
	// Dirty entries stay: their activity is real and must still be written.
}

// forgetsPastRing makes every load in flight cache nothing, when what
// changed cannot be named by one session id. The caller holds mu.
func (r *Registry) forgetsPastRing() { r.forgets += forgetRing + 1 }

// Close writes pending activity to the store. Call it after Run has
// returned and before the store is closed.
func (r *Registry) Close(ctx context.Context) error {
	return r.Flush(ctx)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Removed tells the registry about sessions that were removed with their
// identity or authenticator, so that it forgets them and tells its
// observer.
func (r *Registry) Removed(evs []store.Event) {
	for _, ev := range evs {
		r.Forget(ev.APISessionID)
		if r.cfg.Observer != nil {
			r.cfg.Observer.SessionRemoved(ev)
		}
	}
}

// List returns a page of stored sessions that have not expired, with the
// total count of stored sessions. Sessions past their expiry that the
// sweeper has not removed yet are left out of the page.
func (r *Registry) List(ctx context.Context, p store.Page) ([]*Session, int, error) {
	sessions, total, err := r.cfg.Store.ListAPISessions(ctx, p)
	if err != nil {
		return nil, 0, fmt.Errorf("session: list: %w", err)
	}
	now := r.cfg.Now()
	out := make([]*Session, 0, len(sessions))
	for _, s := range sessions {
		live, err := r.Get(ctx, s.ID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidToken) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if now.Before(live.ExpiresAt) {
			out = append(out, live)
		}
	}
	return out, total, nil
}

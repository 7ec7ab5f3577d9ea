// Package etcd is the clustered backend of store.Store: several
// sessioncert-server replicas keep their state in one etcd cluster and see
// each other's removals through an etcd watch.
//
// # Leases
//
// Every API session owns an etcd lease whose TTL is the session's idle
// timeout plus a slack (see Options.LeaseSlack). The session record, its
// token and identity index entries, its expiry index entry, and every
// certificate of the session with the certificate's index entries are
// written with that lease, so when the lease runs out etcd deletes all of
// them in one revision.
// Recorded activity renews the lease: every touch of a session that still
// exists renews it, whether or not that touch moved the stored record, so
// that a touch retried after its renewal failed renews. The lease is the
// backstop; the sweeper of the caller (DeleteExpiredAPISessions) normally
// removes an idle session first, soon after its ExpiresAt, and the slack
// keeps the lease from firing before it would. The slack must therefore
// exceed how late activity that came in time may reach etcd: a replica
// writes a request made just before the stored ExpiresAt (by its clock,
// which may lag) only at its next activity flush. Options.FlushInterval and
// Options.ClockSkew tell the Store those two, and it never uses a slack
// shorter than they need.
//
// # Transactions
//
// Every write is one etcd transaction guarded by compares: uniqueness of
// names, usernames, fingerprints, external ids and token hashes is a compare
// that the index key has never been created; a certificate's cap check
// compares that no certificate key of the session changed since the count
// was read, and retries otherwise; a session's removal deletes its record,
// its certificates and its index entries in one transaction that also writes
// the cause of the removal. The one exception is DeleteIdentity, see there.
//
// # Events
//
// The event stream is derived from an etcd watch on the live/ keys below
// that receives deletions only, each with the value it deleted: creations
// and activity, which are most writes, never reach the replicas' watches. A
// revision that deletes a session record is one apiSessionRemoved event
// naming the fingerprints of the certificate records deleted with it (a
// fingerprint is part of its record's key); a revision that deletes
// certificates without their session is one certificateDeleted event. A
// removal made by a Store writes live/cause in the same transaction; the
// watch reads that key as of each removal's revision, in one read per
// batch of revisions, which gives the event its cause and time. A revision
// without it is a lease expiry: cause expiry, stamped with the session's
// ExpiresAt. The cursor of an event is the etcd revision of its removal.
//
// Each Store keeps the newest Options.EventHistory events in memory, fed by
// one watch started at Open. A cursor from before Open is served by
// replaying etcd's history, one replay at a time per Store, and is expired
// when etcd has compacted it, when it is more than Options.ReplayRevisions
// revisions before Open, or when more than EventHistory events followed it.
// A replay costs etcd a scan of its history after the cursor, so run etcd
// with auto-compaction (for example --auto-compaction-mode=periodic
// --auto-compaction-retention=5m): the history it keeps is what a Store can
// replay, and every activity flush adds to it, so a busy cluster must keep
// only minutes of it to stay within its space quota (docs/scaling.md has
// the arithmetic). A cursor after etcd's current revision, which only a follower of
// another cluster or of a restored one can hold, is expired too. A removal
// no Store made, such as an operator deleting keys by hand, is reported as
// a lease expiry would be; a certificate deleted that way alone gets cause
// deleted and a zero At.
//
// EventCursor is the newest revision this Store's watch has processed, not
// etcd's current revision: a follower that starts there misses nothing,
// even an event another replica wrote a moment ago that this watch has not
// delivered yet.
//
// # Key layout
//
// Every key starts with Options.Prefix, written <p> here. Ids may not
// contain a slash; <ts> is a time as 24 hex digits that sort in time order.
// Keys marked L carry the lease of their session.
//
//	<p>live/marks/<random>              put and deleted by Open: where its stream starts
//	<p>live/cause                       JSON cause of the removal in the same revision
//	<p>live/sessions/<sessionId>        session JSON                                    L
//	<p>live/certs/<sessionId>/<fp>      certificate JSON, by fingerprint                L
//	<p>session-tokens/<hex sha256>      sessionId                                       L
//	<p>session-expiry/<ts>/<sessionId>  empty, ts = ExpiresAt                           L
//	<p>identity-sessions/<iid>/<sid>    empty                                           L
//	<p>cert-ids/<sessionId>/<certId>    <ts of ValidTo>/<fingerprint>                   L
//	<p>cert-expiry/<ts>/<sid>/<certId>  empty, ts = ValidTo                             L
//	<p>identities/<id>                  identity JSON
//	<p>identity-names/<name>            identity id
//	<p>identity-external-ids/<extId>    identity id
//	<p>identity-authenticators/<iid>/<aid>  empty
//	<p>authenticators/<id>              authenticator JSON
//	<p>authenticator-usernames/<name>   authenticator id
//	<p>authenticator-fingerprints/<fp>  authenticator id
//	<p>signers/<id>                     external JWT signer JSON
//	<p>signer-names/<name>              signer id
//
// Certificates are keyed by fingerprint because the edge router's admission
// check looks them up that way, in one read; cert-ids maps the id the API
// uses to the fingerprint and carries ValidTo, so that the cap check reads
// only those short values. The cert-expiry entries are not deleted with
// their session but left to the session's lease, which the Store revokes
// right after the removal: keeping them out of the removal keeps that
// transaction at a fixed size, whatever the number of certificates.
package etcd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Defaults applied by Open to the zero fields of Options.
const (
	// DefaultPrefix is the key prefix of a store.
	DefaultPrefix = "/sessioncert/"

	// DefaultEventHistory is how many removal events a Store keeps in
	// memory for followers that resume. At about 300 bytes an event it
	// costs a few megabytes; a router that falls further behind gets
	// store.ErrCursorExpired and rebuilds its cache once.
	DefaultEventHistory = 10_000

	// DefaultLeaseSlack is the least slack added to a session's timeout to
	// make its lease TTL, unless Options.LeaseSlack is negative. Activity is
	// written every few seconds, not per request, and the caller's sweeper
	// removes an idle session soon after its ExpiresAt; a minute covers both
	// the default coalescing delay and a sweeper that runs late, so that the
	// lease only fires when no replica sweeps at all. A longer flush
	// interval gets a longer slack: see Options.FlushInterval.
	DefaultLeaseSlack = time.Minute

	// DefaultRequestTimeout bounds each round trip to etcd.
	DefaultRequestTimeout = 5 * time.Second

	// DefaultDialTimeout bounds connecting to Options.Endpoints.
	DefaultDialTimeout = 5 * time.Second

	// DefaultMaxTxnOps is etcd's own default of --max-txn-ops.
	DefaultMaxTxnOps = 128

	// DefaultReplayRevisions is how far before its Open a Store replays
	// etcd's history for a follower. A million revisions is a few minutes
	// of a busy cluster (every activity write is a revision), enough for a
	// follower of a replica that restarted; the replay then reads at most
	// that many revisions of etcd's history.
	DefaultReplayRevisions = 1_000_000
)

// ErrNoSpace is wrapped, beside store.ErrUnavailable, by the error of every
// write that etcd refuses because its database reached its space quota, and
// by Ping's while etcd's NOSPACE alarm is raised. Clients see the same 503
// as for any unavailability, but this one does not clear by itself: etcd
// refuses writes until an operator frees space and disarms the alarm, as
// the message says.
var ErrNoSpace = errors.New("etcd: database space exceeded (NOSPACE alarm): compact and " +
	"defragment etcd (etcdctl compact, etcdctl defrag) or raise its --quota-backend-bytes, " +
	"then disarm the alarm (etcdctl alarm disarm)")

// noSpaceReportEvery is how often OnError hears that etcd is out of space,
// however many writes it refuses.
const noSpaceReportEvery = time.Minute

// markTTL is the TTL, in seconds, of the key Open puts and deletes again;
// it only matters when Open fails between the two.
const markTTL = 60

// revokeQueue is how many lease revocations may wait for the background
// revoker; beyond it a lease is left to expire by itself.
const revokeQueue = 4096

// Options configures Open.
type Options struct {
	// Client is an etcd client the Store uses and does not close. When nil,
	// Open connects to Endpoints and Close closes that connection.
	Client *clientv3.Client

	// Endpoints are the etcd client URLs to connect to when Client is nil.
	Endpoints []string

	// TLS configures the connection to Endpoints; nil means plain text.
	TLS *tls.Config

	// DialTimeout bounds connecting to Endpoints. Zero or less means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// Prefix is put before every key, so that several stores (or other
	// applications) can share one etcd cluster. It must end with a slash.
	// Empty means DefaultPrefix.
	Prefix string

	// EventHistory is how many of the newest removal events are kept in
	// memory; a cursor followed by more events than this gets
	// store.ErrCursorExpired. Zero or less means DefaultEventHistory.
	EventHistory int

	// LeaseSlack is added to a session's Timeout to make the TTL of its
	// lease, rounded up to whole seconds, when it is longer than what
	// FlushInterval and ClockSkew need (see there). Zero means
	// DefaultLeaseSlack; a negative value means only what they need, no
	// slack at all without them (tests use it to watch leases expire).
	LeaseSlack time.Duration

	// FlushInterval is how long a replica may hold a session's activity
	// before it writes it (session.Config.FlushInterval), and ClockSkew how
	// far apart the replicas' clocks may be (session.Config.ClockSkew).
	// A request just before a session's stored ExpiresAt, on a replica
	// whose clock lags by ClockSkew, renews the lease only at that
	// replica's next flush, FlushInterval later, or one more interval later
	// when that flush fails and is retried. So the slack is never less
	// than 2*FlushInterval + ClockSkew: a shorter one would let etcd delete
	// a session, with its certificates, while it is in use. Zero means
	// none of either.
	FlushInterval time.Duration
	ClockSkew     time.Duration

	// RequestTimeout bounds each round trip to etcd; a round trip that
	// runs out of it fails with store.ErrUnavailable. Zero or less means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration

	// ReplayRevisions is how many revisions before this Store's Open a
	// cursor may be and still be replayed from etcd's history; an older
	// one gets store.ErrCursorExpired at once. Zero or less means
	// DefaultReplayRevisions.
	ReplayRevisions int64

	// MaxTxnOps is the most operations the etcd cluster accepts in one
	// transaction, its --max-txn-ops; it must not be more than the
	// cluster's. Batches are cut to fit it, and it bounds the certificates
	// a session can start with. Zero or less means DefaultMaxTxnOps.
	MaxTxnOps int

	// OnError receives the errors of the Store's background work: restarts
	// of its watch and failed lease revocations; and, at most once a minute
	// while it lasts, an error wrapping ErrNoSpace when etcd refused a write
	// for lack of space, which an operator must resolve. Nil discards them.
	// It is called from the Store's goroutines and from callers' and must
	// not block.
	OnError func(error)
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.EventHistory <= 0 {
		o.EventHistory = DefaultEventHistory
	}
	o.LeaseSlack = leaseSlack(o)
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.ReplayRevisions <= 0 {
		o.ReplayRevisions = DefaultReplayRevisions
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
	return o
}

// leaseSlack is the one place that decides the slack of session leases:
// the larger of the slack asked for (DefaultLeaseSlack when zero, nothing
// when negative) and what the activity flushes need, as Options.FlushInterval
// explains.
func leaseSlack(o Options) time.Duration {
	asked := o.LeaseSlack
	switch {
	case asked == 0:
		asked = DefaultLeaseSlack
	case asked < 0:
		asked = 0
	}
	need := 2*max(o.FlushInterval, 0) + max(o.ClockSkew, 0)
	return max(asked, need)
}

// Store is a store.Store kept in etcd. It is safe for concurrent use, also
// by several processes on the same etcd and prefix. Every value it returns
// is a fresh copy that the caller may change. Besides the errors each
// method documents, every method returns store.ErrClosed after Close, ctx's
// error (wrapped) when ctx ends first, and a wrapped store.ErrUnavailable
// when etcd does not answer within RequestTimeout or has lost its leader.
type Store struct {
	cli       *clientv3.Client
	ownClient bool
	k         keys
	opts      Options
	closed    atomic.Bool

	// wrote is the newest revision at which this Store removed live/ keys.
	// Events and EventCursor wait until the watch has seen it, so that a
	// caller reads its own removals.
	wrote atomic.Int64

	// replaying holds a token while a replay of etcd's history runs: one
	// at a time, and a follower waiting for it is then served from what it
	// read, or replays only what is still missing.
	replaying chan struct{}
	replays   atomic.Int64 // replays run, for tests

	// noSpaceReported is when OnError last heard of ErrNoSpace, in Unix
	// nanoseconds.
	noSpaceReported atomic.Int64

	bg      context.Context // ends with Close; bounds the background work
	stop    context.CancelFunc
	wg      sync.WaitGroup
	revokes chan clientv3.LeaseID

	// capLocks serialize the capped certificate creations of a session
	// within this process (sessions hash onto them), so that they queue
	// here instead of failing each other's transactions in etcd; writers
	// in other processes still meet through the compare and retry.
	capLocks [64]sync.Mutex

	// mu guards the event buffer below, which the watch fills.
	mu sync.Mutex
	ev eventBuffer
}

var _ store.Store = (*Store)(nil)

// Open connects the Store to etcd, records where its event stream starts
// with one write, and starts the watch that feeds the stream. It returns an
// error when neither Client nor Endpoints is given or Prefix does not end
// with a slash, a wrapped store.ErrUnavailable when etcd cannot be reached,
// and ctx's error when ctx ends first.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("etcd: prefix %q does not end with a slash", opts.Prefix)
	}

	cli, own := opts.Client, false
	if cli == nil {
		if len(opts.Endpoints) == 0 {
			return nil, errors.New("etcd: neither a client nor endpoints are given")
		}
		var err error
		cli, err = clientv3.New(clientv3.Config{
			Endpoints:   opts.Endpoints,
			TLS:         opts.TLS,
			DialTimeout: opts.DialTimeout,
			Logger:      zap.NewNop(), // a library does not log
		})
		if err != nil {
			return nil, fmt.Errorf("etcd: connect to %v: %w", opts.Endpoints, err)
		}
		own = true
	}

	bg, stop := context.WithCancel(context.Background())
	s := &Store{
		cli:       cli,
		ownClient: own,
		k:         newKeys(opts.Prefix),
		opts:      opts,
		bg:        bg,
		stop:      stop,
		revokes:   make(chan clientv3.LeaseID, revokeQueue),
		replaying: make(chan struct{}, 1),
		ev:        newEventBuffer(opts.EventHistory),
	}

	start, err := s.mark(ctx)
	if err != nil {
		stop()
		if own {
			_ = cli.Close()
		}
		return nil, err
	}
	s.ev.start(start)

	s.wg.Add(2)
	go s.watch(start + 1)
	go s.revoker()
	return s, nil
}

// mark gives the event stream a starting revision that is this Store's
// own, and returns it: the revision of a deletion, which the watch (that
// receives deletions only) starts right after, and which a replay of older
// history is sure to reach, so that it knows it has caught up.
func (s *Store) mark(ctx context.Context) (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("etcd: open: %w", err)
	}
	key := s.k.marks + hex.EncodeToString(b[:])

	c, cancel := s.rpc(ctx)
	defer cancel()
	grant, err := s.cli.Grant(c, markTTL)
	if err != nil {
		return 0, s.fail(ctx, "open", err)
	}
	if _, err := s.cli.Put(c, key, "", clientv3.WithLease(grant.ID)); err != nil {
		return 0, s.fail(ctx, "open", err)
	}
	resp, err := s.cli.Delete(c, key)
	if err != nil {
		return 0, s.fail(ctx, "open", err)
	}
	return resp.Header.Revision, nil
}

// Prefix returns the key prefix the store was opened with.
func (s *Store) Prefix() string { return s.k.p }

// Ping makes one linearizable read through the etcd cluster's quorum and
// lists etcd's alarms, since a cluster that has raised one still serves
// reads but refuses writes. It returns a wrapped store.ErrUnavailable when
// the cluster cannot answer or has an alarm raised, wrapping ErrNoSpace too
// for the NOSPACE alarm, and store.ErrClosed after Close.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.get(ctx, "ping", s.k.cause, clientv3.WithCountOnly()); err != nil {
		return err
	}
	c, cancel := s.rpc(ctx)
	defer cancel()
	alarms, err := s.cli.AlarmList(c)
	if err != nil {
		return s.fail(ctx, "ping: list alarms", err)
	}
	for _, a := range alarms.Alarms {
		if a.Alarm == pb.AlarmType_NOSPACE {
			return fmt.Errorf("etcd: ping: %w: %w", store.ErrUnavailable, ErrNoSpace)
		}
	}
	for _, a := range alarms.Alarms {
		if a.Alarm != pb.AlarmType_NONE {
			return fmt.Errorf("etcd: ping: member %x raised alarm %s: %w",
				a.MemberID, a.Alarm, store.ErrUnavailable)
		}
	}
	return nil
}

// Close stops the watch, wakes every WaitEvents call with store.ErrClosed,
// and closes the etcd client if Open created it. Lease revocations still
// queued are dropped: those leases expire by themselves. A second Close
// returns store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return store.ErrClosed
	}
	s.closed.Store(true)
	s.ev.close()
	s.mu.Unlock()

	s.stop()
	s.wg.Wait()
	if s.ownClient {
		if err := s.cli.Close(); err != nil {
			return fmt.Errorf("etcd: close client: %w", err)
		}
	}
	return nil
}

// ready returns why an operation must not start: the store is closed or
// ctx is done.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// rpc derives the context of one round trip: bounded by RequestTimeout,
// and refused at once by a member that has lost its leader instead of
// waiting for one.
func (s *Store) rpc(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	return clientv3.WithRequireLeader(c), cancel
}

// get makes one read.
func (s *Store) get(
	ctx context.Context,
	op, key string,
	opts ...clientv3.OpOption,
) (*clientv3.GetResponse, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	c, cancel := s.rpc(ctx)
	defer cancel()
	resp, err := s.cli.Get(c, key, opts...)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return resp, nil
}

// txn commits one transaction. A transaction of reads alone is one
// linearizable read of several ranges at a single revision.
func (s *Store) txn(
	ctx context.Context,
	op string,
	cmps []clientv3.Cmp,
	then, els []clientv3.Op,
) (*clientv3.TxnResponse, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	c, cancel := s.rpc(ctx)
	defer cancel()
	resp, err := s.cli.Txn(c).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return resp, nil
}

// read runs ops as one read at a single revision.
func (s *Store) read(
	ctx context.Context,
	op string,
	ops ...clientv3.Op,
) (*clientv3.TxnResponse, error) {
	return s.txn(ctx, op, nil, ops, nil)
}

// noteWrite records that this Store removed live/ keys at rev. Only
// removals are noted: they are what the watch delivers.
func (s *Store) noteWrite(rev int64) {
	for {
		cur := s.wrote.Load()
		if rev <= cur || s.wrote.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// fail turns an error of the etcd client into the error a caller sees:
// store.ErrClosed after Close, ctx's own error when the caller gave up,
// store.ErrUnavailable with ErrNoSpace when etcd is out of space (reported
// to OnError too), and store.ErrUnavailable, wrapped with the cause, when
// etcd could not answer in time or has no leader.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case s.closed.Load():
		return store.ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("etcd: %s: %w", op, ctx.Err())
	case noSpace(err):
		err = fmt.Errorf("etcd: %s: %w: %w", op, store.ErrUnavailable, ErrNoSpace)
		s.reportNoSpace(err)
		return err
	case unavailable(err):
		return fmt.Errorf("etcd: %s: %w: %w", op, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("etcd: %s: %w", op, err)
	}
}

// noSpace reports whether err is etcd refusing a write because its
// database reached its quota.
func noSpace(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Error() == rpctypes.ErrNoSpace.Error()
	}
	return status.Code(err) == codes.ResourceExhausted &&
		rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCNoSpace)
}

// reportNoSpace passes err to OnError unless it heard of the lack of space
// less than noSpaceReportEvery ago.
func (s *Store) reportNoSpace(err error) {
	now := time.Now().UnixNano()
	last := s.noSpaceReported.Load()
	if now-last < int64(noSpaceReportEvery) || !s.noSpaceReported.CompareAndSwap(last, now) {
		return
	}
	s.opts.OnError(err)
}

// unavailable reports whether err means that etcd could not serve a request
// that may succeed when retried: no connection, no leader, a timeout, or
// too many requests.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// The sizes of batched transactions, from the operations each item costs.

// initialCerts is how many certificates a session can start with: four
// writes for the session, three for each certificate.
func (s *Store) initialCerts() int { return (s.opts.MaxTxnOps - 4) / 3 }

// touchChunk is how many sessions one touch transaction updates: up to
// three writes and one compare each.
func (s *Store) touchChunk() int { return s.opts.MaxTxnOps / 3 }

// sweepChunk is how many expired certificates one transaction removes:
// three deletes and one compare each, and the cause.
func (s *Store) sweepChunk() int { return (s.opts.MaxTxnOps - 1) / 3 }

// authsInTxn is how many authenticators the last transaction of
// DeleteIdentity removes with the identity: four deletes and a compare
// each, besides four deletes for the identity and three compares; an
// identity with more loses the others one by one first. It also bounds the
// authenticators CreateIdentity stores with an identity: four writes and
// three compares at most each, besides three of each for the identity.
func (s *Store) authsInTxn() int { return (s.opts.MaxTxnOps - 4) / 4 }

// revokeLater queues the lease of a removed session for revocation. The
// session's keys are gone already; revoking frees the lease and the index
// entries left to it. A full queue drops the lease, which then expires.
func (s *Store) revokeLater(id clientv3.LeaseID) {
	if id == clientv3.NoLease {
		return
	}
	select {
	case s.revokes <- id:
	default:
	}
}

// revoker revokes queued leases until Close.
func (s *Store) revoker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.bg.Done():
			return
		case id := <-s.revokes:
			c, cancel := s.rpc(s.bg)
			_, err := s.cli.Revoke(c, id)
			cancel()
			if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) && s.bg.Err() == nil {
				s.opts.OnError(fmt.Errorf("etcd: revoke lease %x: %w", int64(id), err))
			}
		}
	}
}

package etcd

import (
	"cmp"
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// notFound wraps store.ErrNotFound with what was looked for.
func notFound(kind, key string) error {
	return fmt.Errorf("etcd: %s %q: %w", kind, key, store.ErrNotFound)
}

// leaseTTL is the TTL, in whole seconds, of the lease of a session with the
// given idle timeout: the timeout plus the slack, rounded up, at least one.
func (s *Store) leaseTTL(timeout time.Duration) int64 {
	ttl := math.Ceil((max(timeout, 0) + s.opts.LeaseSlack).Seconds())
	return max(int64(ttl), 1)
}

// CreateAPISession grants the session a lease and stores it, its index
// entries and the certificates it starts with under that lease, in one
// transaction: either all of them are stored or none. A certificate's
// APISessionID may be empty (it is stored as s.ID) but may not name another
// session. It returns store.ErrNotFound when the identity does not exist, a
// *store.ConflictError naming "id" (of the session or of a certificate),
// "tokenHash" or "fingerprint" when one is taken, and an error for an
// invalid id or for more certificates than one transaction holds, which is
// (MaxTxnOps-4)/3: 41 with etcd's default. A session starts with one at
// most in practice, the client certificate of a cert login.
func (s *Store) CreateAPISession(
	ctx context.Context,
	sess *store.APISession,
	certs []*store.Certificate,
) error {
	if err := checkID("session", sess.ID); err != nil {
		return err
	}
	if err := checkID("identity", sess.IdentityID); err != nil {
		return err
	}
	if n := s.initialCerts(); len(certs) > n {
		return fmt.Errorf("etcd: session %q starts with %d certificates, more than the %d "+
			"that fit in a transaction of %d operations", sess.ID, len(certs), n, s.opts.MaxTxnOps)
	}
	rec := fromSession(sess)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	type initial struct{ key, value, idKey, idValue, expiryKey string }
	var inits []initial
	seen := make(map[string]bool, 2*len(certs))
	for _, c := range certs {
		if err := checkCertificate(c, sess.ID); err != nil {
			return err
		}
		if seen["fp:"+c.Fingerprint] {
			return &store.ConflictError{Field: "fingerprint", Value: c.Fingerprint}
		}
		if seen["id:"+c.ID] {
			return &store.ConflictError{Field: "id", Value: c.ID}
		}
		seen["fp:"+c.Fingerprint], seen["id:"+c.ID] = true, true
		cr := record.FromCertificate(c, sess.ID)
		v, err := encode(cr)
		if err != nil {
			return err
		}
		inits = append(inits, initial{
			key:       s.k.cert(sess.ID, cr.Fingerprint),
			value:     v,
			idKey:     s.k.certID(sess.ID, cr.ID),
			idValue:   certIDValue(cr.ValidTo, cr.Fingerprint),
			expiryKey: s.k.certExpiryOf(cr.ValidTo, sess.ID, cr.ID),
		})
	}
	if err := s.ready(ctx); err != nil {
		return err
	}

	// The lease first: every key of the session is written with it.
	c, cancel := s.rpc(ctx)
	grant, err := s.cli.Grant(c, s.leaseTTL(sess.Timeout))
	cancel()
	if err != nil {
		return s.fail(ctx, "grant session lease", err)
	}
	lease := clientv3.WithLease(grant.ID)

	identityKey, sessionKey, tokenKey := s.k.identity(rec.IdentityID), s.k.session(rec.ID),
		s.k.token(sess.TokenHash)
	then := []clientv3.Op{
		clientv3.OpPut(sessionKey, value, lease),
		clientv3.OpPut(tokenKey, rec.ID, lease),
		clientv3.OpPut(s.k.sessionExpiryOf(rec.ExpiresAt, rec.ID), "", lease),
		clientv3.OpPut(s.k.identitySession(rec.IdentityID, rec.ID), "", lease),
	}
	for _, in := range inits {
		then = append(then,
			clientv3.OpPut(in.key, in.value, lease),
			clientv3.OpPut(in.idKey, in.idValue, lease),
			clientv3.OpPut(in.expiryKey, "", lease))
	}
	resp, err := s.txn(ctx, "create session",
		[]clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(identityKey), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(sessionKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(tokenKey), "=", 0),
		},
		then,
		[]clientv3.Op{
			clientv3.OpGet(identityKey, clientv3.WithCountOnly()),
			clientv3.OpGet(sessionKey, clientv3.WithCountOnly()),
			clientv3.OpGet(tokenKey, clientv3.WithCountOnly()),
		})
	if err != nil {
		// Whether the transaction committed is unknown. Revoking the lease
		// would remove a session that may exist, and record its removal;
		// left alone, the lease expires by itself, with nothing or with a
		// session no one holds the token of.
		return err
	}
	if !resp.Succeeded {
		s.revokeLater(grant.ID)
		switch {
		case count(resp, 0) == 0:
			return notFound("identity", rec.IdentityID)
		case count(resp, 1) > 0:
			return &store.ConflictError{Field: "id", Value: rec.ID}
		default:
			return &store.ConflictError{Field: "tokenHash", Value: rec.TokenHash}
		}
	}
	return nil
}

// count returns the count of the i-th read of a transaction.
func count(resp *clientv3.TxnResponse, i int) int64 {
	return resp.Responses[i].GetResponseRange().GetCount()
}

// kvs returns the key-values of the i-th read of a transaction.
func kvs(resp *clientv3.TxnResponse, i int) []*mvccpb.KeyValue {
	return resp.Responses[i].GetResponseRange().GetKvs()
}

// GetAPISession returns the session or store.ErrNotFound, whether or not it
// has expired.
func (s *Store) GetAPISession(ctx context.Context, id string) (*store.APISession, error) {
	if !validID(id) {
		if err := s.ready(ctx); err != nil {
			return nil, err
		}
		return nil, notFound("session", id)
	}
	resp, err := s.get(ctx, "get session", s.k.session(id))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound("session", id)
	}
	return decodeSession(resp.Kvs[0])
}

// decodeSession decodes a stored session record.
func decodeSession(kv *mvccpb.KeyValue) (*store.APISession, error) {
	var rec sessionRecord
	if err := decode(kv.Key, kv.Value, &rec); err != nil {
		return nil, err
	}
	return sessionOf(&rec)
}

// FindAPISessionByTokenHash returns the session with that token hash or
// store.ErrNotFound, whether or not it has expired.
func (s *Store) FindAPISessionByTokenHash(
	ctx context.Context,
	h store.TokenHash,
) (*store.APISession, error) {
	resp, err := s.get(ctx, "find session by token hash", s.k.token(h))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		// The hash is not named: it is derived from a secret.
		return nil, fmt.Errorf("etcd: session by token hash: %w", store.ErrNotFound)
	}
	id := string(resp.Kvs[0].Value)
	sess, err := s.GetAPISession(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.TokenHash != h {
		// Removed and created again with the same id in between.
		return nil, fmt.Errorf("etcd: session by token hash: %w", store.ErrNotFound)
	}
	return sess, nil
}

// ListAPISessions returns the sessions at p in id order, expired or not,
// and how many sessions there are.
func (s *Store) ListAPISessions(
	ctx context.Context,
	p store.Page,
) ([]*store.APISession, int, error) {
	page, total, _, err := s.page(ctx, "list sessions", s.k.sessions, p)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*store.APISession, 0, len(page))
	for _, kv := range page {
		sess, err := decodeSession(kv)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sess)
	}
	return out, total, nil
}

// TouchAPISessions moves each session's LastActivityAt and ExpiresAt
// forward, never backward, and renews the session's lease, so that the
// lease runs Timeout plus slack from now. Touches of one session are merged,
// keeping the later of each time; sessions that do not exist are skipped.
// The sessions are written in transactions of MaxTxnOps/3, each retried
// when one of its sessions changed meanwhile.
//
// The lease of every touched session that exists is renewed, also when its
// record already holds the touch's times: a touch retried after its write
// committed but the renewal failed then renews the lease, which otherwise
// would end the session before its stored ExpiresAt. A renewal is never too
// early: the lease then runs past the stored ExpiresAt by the slack.
func (s *Store) TouchAPISessions(ctx context.Context, touches []store.Touch) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	merged := make(map[string]store.Touch, len(touches))
	var ids []string
	for _, t := range touches {
		if !validID(t.APISessionID) {
			continue
		}
		m, ok := merged[t.APISessionID]
		if !ok {
			ids = append(ids, t.APISessionID)
			m = t
		}
		if t.LastActivityAt.After(m.LastActivityAt) {
			m.LastActivityAt = t.LastActivityAt
		}
		if t.ExpiresAt.After(m.ExpiresAt) {
			m.ExpiresAt = t.ExpiresAt
		}
		merged[t.APISessionID] = m
	}

	for len(ids) > 0 {
		n := min(len(ids), s.touchChunk())
		if err := s.touch(ctx, ids[:n], merged); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// touch applies the touches of a chunk of sessions.
func (s *Store) touch(ctx context.Context, ids []string, touches map[string]store.Touch) error {
	reads := make([]clientv3.Op, len(ids))
	for i, id := range ids {
		reads[i] = clientv3.OpGet(s.k.session(id))
	}
	for {
		resp, err := s.read(ctx, "touch sessions", reads...)
		if err != nil {
			return err
		}
		var (
			cmps   []clientv3.Cmp
			writes []clientv3.Op
			leases []clientv3.LeaseID
		)
		for i, id := range ids {
			found := kvs(resp, i)
			if len(found) == 0 {
				continue
			}
			kv := found[0]
			leases = append(leases, clientv3.LeaseID(kv.Lease))
			var rec sessionRecord
			if err := decode(kv.Key, kv.Value, &rec); err != nil {
				return err
			}
			t := touches[id]
			last, expires := t.LastActivityAt.UTC(), t.ExpiresAt.UTC()
			oldExpiry := s.k.sessionExpiryOf(rec.ExpiresAt, id)
			moved, extended := false, false
			if last.After(rec.LastActivityAt) {
				rec.LastActivityAt, moved = last, true
			}
			if expires.After(rec.ExpiresAt) {
				rec.ExpiresAt, moved, extended = expires, true, true
			}
			if !moved {
				continue
			}
			value, err := encode(&rec)
			if err != nil {
				return err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=",
				kv.ModRevision))
			writes = append(writes,
				clientv3.OpPut(string(kv.Key), value, clientv3.WithIgnoreLease()))
			if extended {
				writes = append(writes,
					clientv3.OpDelete(oldExpiry),
					clientv3.OpPut(s.k.sessionExpiryOf(rec.ExpiresAt, id), "",
						clientv3.WithLease(clientv3.LeaseID(kv.Lease))))
			}
		}
		if len(writes) > 0 {
			tr, err := s.txn(ctx, "touch sessions", cmps, writes, nil)
			if err != nil {
				return err
			}
			if !tr.Succeeded {
				continue // a session of the chunk changed or ended meanwhile
			}
		}
		return s.keepAlive(ctx, leases)
	}
}

// keepAlive renews the leases once each. clientv3 opens a stream for every
// single renewal; one stream for the whole chunk costs one round trip. A
// lease that is gone belonged to a session that ended meanwhile, which is
// no error.
func (s *Store) keepAlive(ctx context.Context, leases []clientv3.LeaseID) error {
	leases = uniqueLeases(leases)
	if len(leases) == 0 {
		return nil
	}
	c, cancel := s.rpc(ctx)
	defer cancel()
	stream, err := pb.NewLeaseClient(s.cli.ActiveConnection()).LeaseKeepAlive(c)
	if err != nil {
		return s.fail(ctx, "renew session leases", err)
	}
	for _, id := range leases {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
			return s.fail(ctx, "renew session leases", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return s.fail(ctx, "renew session leases", err)
	}
	for range leases {
		if _, err := stream.Recv(); err != nil {
			return s.fail(ctx, "renew session leases", err)
		}
	}
	return nil
}

// uniqueLeases drops repeated and absent leases.
func uniqueLeases(leases []clientv3.LeaseID) []clientv3.LeaseID {
	seen := make(map[clientv3.LeaseID]bool, len(leases))
	out := leases[:0]
	for _, id := range leases {
		if id != clientv3.NoLease && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// DeleteAPISession removes the session, its certificates and its index
// entries in one transaction that records the cause, and returns the
// apiSessionRemoved event the watch derives from it. It returns
// store.ErrNotFound when the session does not exist.
func (s *Store) DeleteAPISession(
	ctx context.Context,
	id string,
	cause store.Cause,
	at time.Time,
) (*store.Event, error) {
	return s.removeSession(ctx, id, cause, at, nil)
}

// DeleteExpiredAPISessions removes up to limit sessions whose ExpiresAt is
// not after now, soonest expiry first, each in a transaction of its own
// with its certificates, and returns one event of cause expiry stamped now
// per session, in cursor order. A session touched past now meanwhile is
// left alone. It returns an error when limit is not positive.
//
// Each removal costs two round trips (the record, then the transaction),
// so the expired sessions of a page are removed by sweepWorkers at once,
// and in an order of this call's own: replicas that sweep the same page
// at the same moment then mostly take different sessions, instead of
// racing for the same ones and losing the round trips on each.
func (s *Store) DeleteExpiredAPISessions(
	ctx context.Context,
	now time.Time,
	limit int,
) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("etcd: limit %d is not positive", limit)
	}
	var out []store.Event
	from, end := s.k.sessionExpiry, upTo(s.k.sessionExpiry, now)
	for len(out) < limit {
		want := limit - len(out)
		resp, err := s.get(ctx, "find expired sessions", from, clientv3.WithRange(end),
			clientv3.WithKeysOnly(), clientv3.WithLimit(int64(want)))
		if err != nil {
			return byCursor(out), err
		}
		evs, err := s.sweepSessions(ctx, resp.Kvs, now)
		out = append(out, evs...)
		if err != nil {
			return byCursor(out), err
		}
		if len(resp.Kvs) < want {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return byCursor(out), nil
}

// sweepWorkers is how many expired sessions one sweep removes at once.
const sweepWorkers = 8

// sweepSessions removes the sessions that the expiry index entries name,
// if they are still expired at now, on up to sweepWorkers goroutines, and
// returns the events of those it removed. On the first error it starts no
// more removals, lets those under way finish, and returns their events
// with the error.
func (s *Store) sweepSessions(
	ctx context.Context,
	entries []*mvccpb.KeyValue,
	now time.Time,
) ([]store.Event, error) {
	expired := func(rec *sessionRecord) bool { return !rec.ExpiresAt.After(now) }
	order := mrand.Perm(len(entries)) //nolint:gosec // G404: spreads work, guards nothing
	var (
		mu     sync.Mutex
		out    []store.Event
		first  error
		failed atomic.Bool
		next   = make(chan int)
		wg     sync.WaitGroup
	)
	for range min(sweepWorkers, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ev, err := s.sweepSession(ctx, entries[i], now, expired)
				mu.Lock()
				if ev != nil {
					out = append(out, *ev)
				}
				if err != nil && first == nil {
					first = err
					failed.Store(true)
				}
				mu.Unlock()
			}
		}()
	}
	for _, i := range order {
		if failed.Load() {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return out, first
}

// sweepSession removes the session of one expiry index entry if it is
// expired, and drops the entry if no Store made the session's removal.
func (s *Store) sweepSession(
	ctx context.Context,
	kv *mvccpb.KeyValue,
	now time.Time,
	expired func(*sessionRecord) bool,
) (*store.Event, error) {
	r, _ := rest(kv.Key, s.k.sessionExpiry)
	_, id, ok := split2(r)
	if !ok {
		return nil, fmt.Errorf("%w: session expiry key %q", errCorrupt, kv.Key)
	}
	ev, err := s.removeSession(ctx, id, store.CauseExpiry, now, expired)
	if isNotFound(err) {
		// Swept by another replica meanwhile, or an entry left behind by a
		// removal no Store made: in either case, a stale entry.
		return nil, s.dropEntry(ctx, kv)
	}
	return ev, err
}

// byCursor sorts events by cursor and returns them.
func byCursor(evs []store.Event) []store.Event {
	slices.SortFunc(evs, func(a, b store.Event) int { return cmp.Compare(a.Cursor, b.Cursor) })
	return evs
}

// dropEntry deletes an index entry unless it changed since kv was read.
func (s *Store) dropEntry(ctx context.Context, kv *mvccpb.KeyValue) error {
	key := string(kv.Key)
	_, err := s.txn(ctx, "drop stale index entry",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
	return err
}

// removeSession removes one session with everything it owns and the cause,
// in one transaction guarded by the session record's revision, and returns
// the event. When qualifies is not nil and says the session no longer
// qualifies, nothing is removed and the event is nil.
func (s *Store) removeSession(
	ctx context.Context,
	id string,
	cause store.Cause,
	at time.Time,
	qualifies func(*sessionRecord) bool,
) (*store.Event, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, notFound("session", id)
	}
	cr := causeRecord{Cause: string(cause), At: at.UTC()}
	causeValue, err := encode(&cr)
	if err != nil {
		return nil, err
	}
	key := s.k.session(id)
	for {
		resp, err := s.get(ctx, "remove session", key)
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			return nil, notFound("session", id)
		}
		kv := resp.Kvs[0]
		var rec sessionRecord
		if err := decode(kv.Key, kv.Value, &rec); err != nil {
			return nil, err
		}
		if qualifies != nil && !qualifies(&rec) {
			return nil, nil
		}
		h, err := tokenHash(&rec)
		if err != nil {
			return nil, err
		}

		tr, err := s.txn(ctx, "remove session",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)},
			[]clientv3.Op{
				clientv3.OpDelete(key, clientv3.WithPrevKV()),
				clientv3.OpDelete(s.k.sessionCerts(id), clientv3.WithPrefix(),
					clientv3.WithPrevKV()),
				clientv3.OpDelete(s.k.sessionCertIDs(id), clientv3.WithPrefix()),
				clientv3.OpDelete(s.k.token(h)),
				clientv3.OpDelete(s.k.sessionExpiryOf(rec.ExpiresAt, id)),
				clientv3.OpDelete(s.k.identitySession(rec.IdentityID, id)),
				clientv3.OpPut(s.k.cause, causeValue),
			}, nil)
		if err != nil {
			return nil, err
		}
		if !tr.Succeeded {
			continue // touched or removed meanwhile: look again
		}
		s.noteWrite(tr.Header.Revision)
		s.revokeLater(clientv3.LeaseID(kv.Lease))

		ch := change{
			rev:      tr.Header.Revision,
			sessions: deletions(tr.Responses[0].GetResponseDeleteRange()),
			certs:    deletions(tr.Responses[1].GetResponseDeleteRange()),
			cause:    &cr,
		}
		evs := s.derive(ch, s.opts.OnError)
		if len(evs) != 1 {
			return nil, fmt.Errorf("etcd: removal of session %q made %d events", id, len(evs))
		}
		return &evs[0], nil
	}
}

// deletions lists what a delete in a transaction removed, as the watch
// reports it.
func deletions(r *pb.DeleteRangeResponse) []deletion {
	out := make([]deletion, 0, len(r.GetPrevKvs()))
	for _, kv := range r.GetPrevKvs() {
		out = append(out, deletion{key: kv.Key, prev: kv.Value})
	}
	return out
}

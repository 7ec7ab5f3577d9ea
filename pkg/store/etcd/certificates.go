package etcd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// checkCertificate refuses a certificate that cannot be stored under the
// session sessionID.
func checkCertificate(c *store.Certificate, sessionID string) error {
	if err := checkID("certificate", c.ID); err != nil {
		return err
	}
	if c.Fingerprint == "" {
		return fmt.Errorf("etcd: certificate %q has no fingerprint", c.ID)
	}
	if c.APISessionID != "" && c.APISessionID != sessionID {
		return fmt.Errorf("etcd: certificate %q names session %q, not %q",
			c.ID, c.APISessionID, sessionID)
	}
	return nil
}

// isNotFound reports whether err means a record does not exist.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// CreateCertificate stores c under its session, with the session's lease,
// durably (etcd has committed it to a quorum) before it returns. The cap
// check and the insert are one transaction that also compares that no
// certificate joined the session since the count was read; concurrent
// creations in one session retry until each sees the others. It returns
// store.ErrNotFound when the session does not exist, store.ErrLimitReached
// when the session already holds maxLive certificates whose ValidTo is after
// now (maxLive <= 0 means no limit), and a *store.ConflictError naming
// "fingerprint" or "id" when another certificate of the session holds the
// value.
func (s *Store) CreateCertificate(
	ctx context.Context,
	c *store.Certificate,
	maxLive int,
	now time.Time,
) error {
	sid := c.APISessionID
	if err := checkID("session", sid); err != nil {
		return err
	}
	if err := checkCertificate(c, sid); err != nil {
		return err
	}
	rec := record.FromCertificate(c, sid)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	sessionKey, certKey, idKey := s.k.session(sid), s.k.cert(sid, rec.Fingerprint),
		s.k.certID(sid, rec.ID)
	nowKey := timeKey(now)
	if maxLive > 0 {
		mu := s.capLock(sid)
		mu.Lock()
		defer mu.Unlock()
	}

	for {
		// The session and, for the cap, the ValidTo of its certificates,
		// read at one revision. The session is read whole: etcd leaves the
		// lease out of a keys-only read, and the lease is what is needed.
		reads := []clientv3.Op{clientv3.OpGet(sessionKey)}
		if maxLive > 0 {
			reads = append(reads, clientv3.OpGet(s.k.sessionCertIDs(sid), clientv3.WithPrefix()))
		}
		resp, err := s.read(ctx, "create certificate", reads...)
		if err != nil {
			return err
		}
		found := kvs(resp, 0)
		if len(found) == 0 {
			return notFound("session", sid)
		}
		sess := found[0]

		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(sessionKey), "=", sess.CreateRevision),
			clientv3.Compare(clientv3.CreateRevision(certKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0),
		}
		if maxLive > 0 {
			live := 0
			for _, kv := range kvs(resp, 1) {
				// The value starts with ValidTo's time key, which sorts like
				// the time itself.
				if len(kv.Value) >= timeKeyLen && string(kv.Value[:timeKeyLen]) > nowKey {
					live++
				}
			}
			if live >= maxLive {
				return fmt.Errorf("etcd: session %q holds %d live certificates: %w",
					sid, live, store.ErrLimitReached)
			}
			// No certificate of the session written since the count.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.k.sessionCertIDs(sid)),
				"<", resp.Header.Revision+1).WithPrefix())
		}

		lease := clientv3.WithLease(clientv3.LeaseID(sess.Lease))
		tr, err := s.txn(ctx, "create certificate", cmps,
			[]clientv3.Op{
				clientv3.OpPut(certKey, value, lease),
				clientv3.OpPut(idKey, certIDValue(rec.ValidTo, rec.Fingerprint), lease),
				clientv3.OpPut(s.k.certExpiryOf(rec.ValidTo, sid, rec.ID), "", lease),
			},
			[]clientv3.Op{
				clientv3.OpGet(sessionKey, clientv3.WithKeysOnly()),
				clientv3.OpGet(certKey, clientv3.WithCountOnly()),
				clientv3.OpGet(idKey, clientv3.WithCountOnly()),
			})
		if err != nil {
			return err
		}
		if tr.Succeeded {
			return nil
		}

		current := kvs(tr, 0)
		switch {
		case len(current) == 0 || current[0].CreateRevision != sess.CreateRevision:
			return notFound("session", sid)
		case count(tr, 1) > 0:
			return &store.ConflictError{Field: "fingerprint", Value: rec.Fingerprint}
		case count(tr, 2) > 0:
			return &store.ConflictError{Field: "id", Value: rec.ID}
		}
		// Another certificate joined the session: count again.
	}
}

// capLock returns the lock of the session's capped creations.
func (s *Store) capLock(sessionID string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sessionID))
	return &s.capLocks[h.Sum32()%uint32(len(s.capLocks))]
}

// GetCertificate returns the certificate with that id in that session. It
// returns store.ErrNotFound when there is none, also when the id belongs to
// a certificate of another session.
func (s *Store) GetCertificate(
	ctx context.Context,
	apiSessionID, id string,
) (*store.Certificate, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if !validID(apiSessionID) || !validID(id) {
		return nil, notFound("certificate", id)
	}
	resp, err := s.get(ctx, "get certificate", s.k.certID(apiSessionID, id))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound("certificate", id)
	}
	_, fp, err := parseCertIDValue(resp.Kvs[0].Key, resp.Kvs[0].Value)
	if err != nil {
		return nil, err
	}
	c, err := s.FindCertificateByFingerprint(ctx, apiSessionID, fp)
	if err == nil && c.ID != id {
		// Deleted, and its fingerprint taken by another one, in between.
		return nil, notFound("certificate", id)
	}
	if isNotFound(err) {
		return nil, notFound("certificate", id)
	}
	return c, err
}

// FindCertificateByFingerprint returns the certificate of the session with
// that fingerprint or store.ErrNotFound, in one read.
func (s *Store) FindCertificateByFingerprint(
	ctx context.Context,
	apiSessionID, fingerprint string,
) (*store.Certificate, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if !validID(apiSessionID) || fingerprint == "" {
		return nil, notFound("certificate fingerprint", fingerprint)
	}
	resp, err := s.get(ctx, "find certificate", s.k.cert(apiSessionID, fingerprint))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound("certificate fingerprint", fingerprint)
	}
	var rec certificateRecord
	if err := decode(resp.Kvs[0].Key, resp.Kvs[0].Value, &rec); err != nil {
		return nil, err
	}
	return rec.Certificate(), nil
}

// ListCertificates returns the session's certificates whose ValidTo is
// after now, ordered by CreatedAt (then by id), the page p of them, and how
// many there are. It returns store.ErrNotFound when the session does not
// exist or its ExpiresAt is not after now.
func (s *Store) ListCertificates(
	ctx context.Context,
	apiSessionID string,
	now time.Time,
	p store.Page,
) ([]*store.Certificate, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	if err := s.ready(ctx); err != nil {
		return nil, 0, err
	}
	if !validID(apiSessionID) {
		return nil, 0, notFound("session", apiSessionID)
	}
	resp, err := s.read(ctx, "list certificates",
		clientv3.OpGet(s.k.session(apiSessionID)),
		clientv3.OpGet(s.k.sessionCerts(apiSessionID), clientv3.WithPrefix()))
	if err != nil {
		return nil, 0, err
	}
	found := kvs(resp, 0)
	if len(found) == 0 {
		return nil, 0, notFound("session", apiSessionID)
	}
	var sess sessionRecord
	if err := decode(found[0].Key, found[0].Value, &sess); err != nil {
		return nil, 0, err
	}
	if !sess.ExpiresAt.After(now) {
		// Expired, and not swept yet: its certificates are no longer its.
		return nil, 0, notFound("session", apiSessionID)
	}

	// A session holds few certificates (the cap sees to that), so they are
	// read whole and sorted here rather than kept in a creation index.
	var live []*store.Certificate
	for _, kv := range kvs(resp, 1) {
		var rec certificateRecord
		if err := decode(kv.Key, kv.Value, &rec); err != nil {
			return nil, 0, err
		}
		if rec.ValidTo.After(now) {
			live = append(live, rec.Certificate())
		}
	}
	sort.Slice(live, func(i, j int) bool {
		a, b := live[i], live[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	})
	total := len(live)
	from := min(p.Offset, total)
	to := min(from+p.Limit, total)
	return live[from:to:to], total, nil
}

// DeleteCertificate removes one certificate of a session in a transaction
// that records the cause, and returns the certificateDeleted event (cause
// deleted) the watch derives from it. It returns store.ErrNotFound when the
// session has no certificate with that id, and then changes nothing.
func (s *Store) DeleteCertificate(
	ctx context.Context,
	apiSessionID, id string,
	at time.Time,
) (*store.Event, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if !validID(apiSessionID) || !validID(id) {
		return nil, notFound("certificate", id)
	}
	idKey := s.k.certID(apiSessionID, id)
	for {
		resp, err := s.read(ctx, "delete certificate",
			clientv3.OpGet(idKey), clientv3.OpGet(s.k.session(apiSessionID)))
		if err != nil {
			return nil, err
		}
		ids, sessions := kvs(resp, 0), kvs(resp, 1)
		if len(ids) == 0 || len(sessions) == 0 {
			return nil, notFound("certificate", id)
		}
		validTo, fp, err := parseCertIDValue(ids[0].Key, ids[0].Value)
		if err != nil {
			return nil, err
		}
		var sess sessionRecord
		if err := decode(sessions[0].Key, sessions[0].Value, &sess); err != nil {
			return nil, err
		}
		cr := causeRecord{Cause: string(store.CauseDeleted), At: at.UTC(),
			IdentityID: sess.IdentityID}
		causeValue, err := encode(&cr)
		if err != nil {
			return nil, err
		}

		tr, err := s.txn(ctx, "delete certificate",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(idKey), "=", ids[0].ModRevision)},
			[]clientv3.Op{
				clientv3.OpDelete(s.k.cert(apiSessionID, fp), clientv3.WithPrevKV()),
				clientv3.OpDelete(idKey),
				clientv3.OpDelete(s.k.certExpiryOf(validTo, apiSessionID, id)),
				clientv3.OpPut(s.k.cause, causeValue),
			}, nil)
		if err != nil {
			return nil, err
		}
		if !tr.Succeeded {
			continue // removed meanwhile: look again
		}
		s.noteWrite(tr.Header.Revision)

		ch := change{
			rev:   tr.Header.Revision,
			certs: deletions(tr.Responses[0].GetResponseDeleteRange()),
			cause: &cr,
		}
		evs := s.derive(ch, s.opts.OnError)
		if len(evs) != 1 {
			return nil, fmt.Errorf("%w: certificate %q of session %q had no record",
				errCorrupt, id, apiSessionID)
		}
		return &evs[0], nil
	}
}

// DeleteExpiredCertificates removes up to limit certificates whose ValidTo
// is not after now, soonest first, in transactions of MaxTxnOps/3, and returns
// how many it removed. It records no event: each transaction marks its
// cause quiet. Index entries of certificates already removed with their
// session are dropped on the way and not counted. It returns an error when
// limit is not positive.
func (s *Store) DeleteExpiredCertificates(
	ctx context.Context,
	now time.Time,
	limit int,
) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("etcd: limit %d is not positive", limit)
	}
	cr := causeRecord{At: now.UTC(), Quiet: true}
	causeValue, err := encode(&cr)
	if err != nil {
		return 0, err
	}
	removed := 0
	from, end := s.k.certExpiry, upTo(s.k.certExpiry, now)
	for removed < limit {
		want := min(limit-removed, s.sweepChunk())
		resp, err := s.get(ctx, "find expired certificates", from, clientv3.WithRange(end),
			clientv3.WithKeysOnly(), clientv3.WithLimit(int64(want)))
		if err != nil {
			return removed, err
		}
		if len(resp.Kvs) == 0 {
			break
		}
		n, err := s.sweepCertificates(ctx, resp.Kvs, causeValue)
		removed += n
		if err != nil {
			return removed, err
		}
		if len(resp.Kvs) < want {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return removed, nil
}

// sweepCertificates removes the certificates named by the expiry index
// entries entries in one transaction, retried while one of them changes,
// and returns how many it removed.
func (s *Store) sweepCertificates(
	ctx context.Context,
	entries []*mvccpb.KeyValue,
	causeValue string,
) (int, error) {
	type target struct{ entry, sessionID, id, idKey string }
	targets := make([]target, 0, len(entries))
	reads := make([]clientv3.Op, 0, len(entries))
	for _, kv := range entries {
		r, _ := rest(kv.Key, s.k.certExpiry)
		_, sub, ok := split2(r)
		sid, id, ok2 := split2(sub)
		if !ok || !ok2 {
			return 0, fmt.Errorf("%w: certificate expiry key %q", errCorrupt, kv.Key)
		}
		t := target{entry: string(kv.Key), sessionID: sid, id: id, idKey: s.k.certID(sid, id)}
		targets = append(targets, t)
		reads = append(reads, clientv3.OpGet(t.idKey))
	}

	for {
		resp, err := s.read(ctx, "delete expired certificates", reads...)
		if err != nil {
			return 0, err
		}
		var (
			cmps    []clientv3.Cmp
			deletes []clientv3.Op
			n       int
		)
		for i, t := range targets {
			found := kvs(resp, i)
			deletes = append(deletes, clientv3.OpDelete(t.entry))
			if len(found) == 0 {
				continue // the session took it along
			}
			_, fp, err := parseCertIDValue(found[0].Key, found[0].Value)
			if err != nil {
				return 0, err
			}
			cmps = append(cmps,
				clientv3.Compare(clientv3.ModRevision(t.idKey), "=", found[0].ModRevision))
			deletes = append(deletes,
				clientv3.OpDelete(s.k.cert(t.sessionID, fp)),
				clientv3.OpDelete(t.idKey))
			n++
		}
		if n > 0 {
			deletes = append(deletes, clientv3.OpPut(s.k.cause, causeValue))
		}
		tr, err := s.txn(ctx, "delete expired certificates", cmps, deletes, nil)
		if err != nil {
			return 0, err
		}
		if tr.Succeeded {
			if n > 0 {
				s.noteWrite(tr.Header.Revision)
			}
			return n, nil
		}
	}
}

// CountCertificates returns how many certificate records are stored, in
// one count-only read of their prefix: etcd counts the keys in its index
// without reading their values. Certificates past their ValidTo that no
// sweep removed yet are counted; those that left with their session's
// lease are not.
func (s *Store) CountCertificates(ctx context.Context) (int, error) {
	resp, err := s.get(ctx, "count certificates", s.k.certs,
		clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return int(resp.Count), nil
}

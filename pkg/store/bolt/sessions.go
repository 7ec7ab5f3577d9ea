package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// CreateAPISession stores a new session of an existing identity together
// with the certificates it starts with, in one group-committed transaction:
// either all of them are stored or none. A certificate's APISessionID may be
// empty (it is stored as s.ID) but may not name another session. It returns
// store.ErrNotFound when the identity does not exist, and a
// *store.ConflictError naming "id", "tokenHash" or "fingerprint" when one is
// taken.
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
	rec := sessionToRecord(sess)
	certRecs := make([]*certificateRecord, 0, len(certs))
	values := make([][]byte, 0, len(certs))
	seen := make(map[string]bool, 2*len(certs))
	for _, c := range certs {
		if err := checkCertificate(c, sess.ID); err != nil {
			return err
		}
		if seen["id:"+c.ID] {
			return &store.ConflictError{Field: "id", Value: c.ID}
		}
		if seen["fp:"+c.Fingerprint] {
			return &store.ConflictError{Field: "fingerprint", Value: c.Fingerprint}
		}
		seen["id:"+c.ID], seen["fp:"+c.Fingerprint] = true, true

		cr := record.FromCertificate(c, sess.ID)
		v, err := certificateValue(cr)
		if err != nil {
			return err
		}
		certRecs, values = append(certRecs, cr), append(values, v)
	}

	return s.batch(ctx, func(tx *bbolt.Tx) error {
		// Decide everything before writing anything.
		if _, err := getIdentity(tx, rec.IdentityID); err != nil {
			return err
		}
		if tx.Bucket(bucketSessions).Get([]byte(rec.ID)) != nil {
			return &store.ConflictError{Field: "id", Value: rec.ID}
		}
		if tx.Bucket(bucketSessionTokens).Get(rec.TokenHash) != nil {
			h := hex.EncodeToString(rec.TokenHash)
			return &store.ConflictError{Field: "tokenHash", Value: h}
		}
		seen := make(map[string]bool, len(certRecs))
		for _, cr := range certRecs {
			if seen[cr.Fingerprint] {
				return &store.ConflictError{Field: "fingerprint", Value: cr.Fingerprint}
			}
			seen[cr.Fingerprint] = true
		}

		if err := putSession(tx, rec); err != nil {
			return err
		}
		if err := countUp(tx, keyCountSessions); err != nil {
			return err
		}
		for i, cr := range certRecs {
			if err := putCertificate(tx, cr, values[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// putSession stores a session record with its index entries.
func putSession(tx *bbolt.Tx, rec *sessionRecord) error {
	if err := putJSON(tx.Bucket(bucketSessions), []byte(rec.ID), rec); err != nil {
		return err
	}
	if err := put(tx.Bucket(bucketSessionTokens), rec.TokenHash, []byte(rec.ID)); err != nil {
		return err
	}
	if err := put(tx.Bucket(bucketSessionExpiry), expiryKey(rec), []byte{}); err != nil {
		return err
	}
	return put(tx.Bucket(bucketIdentitySessions), join(rec.IdentityID, rec.ID), []byte{})
}

// expiryKey is the session's entry in the expiry index.
func expiryKey(rec *sessionRecord) []byte {
	return append(timeKey(rec.ExpiresAt), rec.ID...)
}

// getSession reads one session record.
func getSession(tx *bbolt.Tx, id string) (*sessionRecord, error) {
	var rec sessionRecord
	ok, err := getJSON(tx.Bucket(bucketSessions), []byte(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("session", id)
	}
	return &rec, nil
}

// GetAPISession returns the session or store.ErrNotFound, whether or not it
// has expired.
func (s *Store) GetAPISession(ctx context.Context, id string) (*store.APISession, error) {
	var out *store.APISession
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rec, err := getSession(tx, id)
		if err == nil {
			out = sessionOf(rec)
		}
		return err
	})
	return out, err
}

// FindAPISessionByTokenHash returns the session with that token hash or
// store.ErrNotFound, whether or not it has expired.
func (s *Store) FindAPISessionByTokenHash(
	ctx context.Context,
	h store.TokenHash,
) (*store.APISession, error) {
	var out *store.APISession
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketSessionTokens).Get(h[:])
		if id == nil {
			// The hash is not named: it is derived from a secret.
			return fmt.Errorf("bolt: session by token hash: %w", store.ErrNotFound)
		}
		rec, err := getSession(tx, string(id))
		if err == nil {
			out = sessionOf(rec)
		}
		return err
	})
	return out, err
}

// ListAPISessions returns the sessions at p in id order, expired or not,
// and how many sessions there are.
func (s *Store) ListAPISessions(
	ctx context.Context,
	p store.Page,
) ([]*store.APISession, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	var (
		out   []*store.APISession
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		total = count(tx, keyCountSessions)
		return pageOf(tx.Bucket(bucketSessions), p, func(k, v []byte) error {
			var rec sessionRecord
			if err := decodeJSON(k, v, &rec); err != nil {
				return err
			}
			out = append(out, sessionOf(&rec))
			return nil
		})
	})
	return out, total, err
}

// TouchAPISessions applies all touches in one group-committed transaction.
// Each moves LastActivityAt and ExpiresAt forward, never backward; touches
// of sessions that do not exist are skipped.
func (s *Store) TouchAPISessions(ctx context.Context, touches []store.Touch) error {
	if len(touches) == 0 {
		return s.ready(ctx)
	}
	return s.batch(ctx, func(tx *bbolt.Tx) error {
		for _, t := range touches {
			rec, err := getSession(tx, t.APISessionID)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return err
			}
			last, expires := t.LastActivityAt.UTC(), t.ExpiresAt.UTC()
			moved := false
			if last.After(rec.LastActivityAt) {
				rec.LastActivityAt, moved = last, true
			}
			if expires.After(rec.ExpiresAt) {
				expiry := tx.Bucket(bucketSessionExpiry)
				if err := del(expiry, expiryKey(rec)); err != nil {
					return err
				}
				rec.ExpiresAt, moved = expires, true
				if err := put(expiry, expiryKey(rec), []byte{}); err != nil {
					return err
				}
			}
			if !moved {
				continue
			}
			if err := putJSON(tx.Bucket(bucketSessions), []byte(rec.ID), rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteAPISession removes the session and its certificates in one
// group-committed transaction, together with the apiSessionRemoved event it
// returns. It returns store.ErrNotFound when the session does not exist.
func (s *Store) DeleteAPISession(
	ctx context.Context,
	id string,
	cause store.Cause,
	at time.Time,
) (*store.Event, error) {
	var (
		ev store.Event
		ap appended
	)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		ap = appended{}
		rec, err := getSession(tx, id)
		if err != nil {
			return err
		}
		ev, err = s.removeSession(tx, rec, cause, at, &ap)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.publish(ap)
	return &ev, nil
}

// DeleteExpiredAPISessions removes up to limit sessions whose ExpiresAt is
// not after now, soonest expiry first, each with its certificates and an
// event of cause expiry stamped now, in one group-committed transaction. It
// returns the events, and an error when limit is not positive.
func (s *Store) DeleteExpiredAPISessions(
	ctx context.Context,
	now time.Time,
	limit int,
) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("bolt: limit %d is not positive", limit)
	}
	var (
		events []store.Event
		ap     appended
	)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		events, ap = nil, appended{}

		// The expiry index is ordered by time, so the expired sessions are
		// the ones before the first key past now.
		var ids []string
		nowKey := timeKey(now)
		c := tx.Bucket(bucketSessionExpiry).Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			if len(k) < timeKeyLen || bytes.Compare(k[:timeKeyLen], nowKey) > 0 {
				break
			}
			ids = append(ids, string(k[timeKeyLen:]))
		}

		for _, id := range ids {
			rec, err := getSession(tx, id)
			if err != nil {
				return err
			}
			ev, err := s.removeSession(tx, rec, store.CauseExpiry, now, &ap)
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.publish(ap)
	return events, nil
}

// removeSession deletes a session, its certificates and all their index
// entries, and appends the apiSessionRemoved event naming every
// certificate's fingerprint.
func (s *Store) removeSession(
	tx *bbolt.Tx,
	rec *sessionRecord,
	cause store.Cause,
	at time.Time,
	ap *appended,
) (store.Event, error) {
	certs := tx.Bucket(bucketCertificates)
	var fingerprints []string
	for _, k := range keysWithPrefix(certs, prefix(rec.ID)) {
		cr, err := readCertificate(k, certs.Get(k))
		if err != nil {
			return store.Event{}, err
		}
		if err := removeCertificate(tx, k, cr); err != nil {
			return store.Event{}, err
		}
		fingerprints = append(fingerprints, cr.Fingerprint)
	}

	if err := del(tx.Bucket(bucketSessionTokens), rec.TokenHash); err != nil {
		return store.Event{}, err
	}
	if err := del(tx.Bucket(bucketSessionExpiry), expiryKey(rec)); err != nil {
		return store.Event{}, err
	}
	owners := tx.Bucket(bucketIdentitySessions)
	if err := del(owners, join(rec.IdentityID, rec.ID)); err != nil {
		return store.Event{}, err
	}
	if err := del(tx.Bucket(bucketSessions), []byte(rec.ID)); err != nil {
		return store.Event{}, err
	}
	if err := countDown(tx, keyCountSessions); err != nil {
		return store.Event{}, err
	}

	ev := store.Event{
		Type:         store.EventAPISessionRemoved,
		APISessionID: rec.ID,
		IdentityID:   rec.IdentityID,
		Fingerprints: fingerprints,
		Cause:        cause,
		At:           at.UTC(),
	}
	if err := s.appendEvent(tx, &ev, ap); err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

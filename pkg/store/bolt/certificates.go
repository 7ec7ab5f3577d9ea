package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"

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
		return fmt.Errorf("bolt: certificate %q has no fingerprint", c.ID)
	}
	if c.APISessionID != "" && c.APISessionID != sessionID {
		return fmt.Errorf("bolt: certificate %q names session %q, not %q",
			c.ID, c.APISessionID, sessionID)
	}
	return nil
}

// certificateValue encodes a certificate as stored: its ValidTo as a time
// key, then the JSON record.
func certificateValue(rec *certificateRecord) ([]byte, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("bolt: encode certificate: %w", err)
	}
	return append(timeKey(rec.ValidTo), data...), nil
}

// readCertificate decodes a value written by certificateValue.
func readCertificate(key, v []byte) (*certificateRecord, error) {
	if len(v) < timeKeyLen {
		return nil, fmt.Errorf("%w: certificate %q is %d bytes", errCorrupt, key, len(v))
	}
	var rec certificateRecord
	if err := decodeJSON(key, v[timeKeyLen:], &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// putCertificate stores a certificate under its session with its index
// entries.
func putCertificate(tx *bbolt.Tx, rec *certificateRecord, value []byte) error {
	key := join(rec.APISessionID, rec.ID)
	if err := put(tx.Bucket(bucketCertificates), key, value); err != nil {
		return err
	}
	fp := join(rec.APISessionID, rec.Fingerprint)
	if err := put(tx.Bucket(bucketCertFingerprints), fp, key); err != nil {
		return err
	}
	expiry := append(timeKey(rec.ValidTo), key...)
	if err := put(tx.Bucket(bucketCertExpiry), expiry, []byte{}); err != nil {
		return err
	}
	return countUp(tx, keyCountCerts)
}

// removeCertificate deletes the certificate stored at key with its index
// entries.
func removeCertificate(tx *bbolt.Tx, key []byte, rec *certificateRecord) error {
	if err := del(tx.Bucket(bucketCertFingerprints), join(rec.APISessionID, rec.Fingerprint)); err != nil {
		return err
	}
	expiry := append(timeKey(rec.ValidTo), key...)
	if err := del(tx.Bucket(bucketCertExpiry), expiry); err != nil {
		return err
	}
	if err := del(tx.Bucket(bucketCertificates), key); err != nil {
		return err
	}
	return countDown(tx, keyCountCerts)
}

// CreateCertificate stores c under its session, durably, before it returns;
// concurrent calls share one commit. The cap check and the insert are one
// transaction, so concurrent calls never exceed maxLive. It returns
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
	if err := checkID("session", c.APISessionID); err != nil {
		return err
	}
	if err := checkCertificate(c, c.APISessionID); err != nil {
		return err
	}
	rec := record.FromCertificate(c, c.APISessionID)
	value, err := certificateValue(rec)
	if err != nil {
		return err
	}
	key := join(rec.APISessionID, rec.ID)
	nowKey := timeKey(now)

	return s.batch(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketSessions).Get([]byte(rec.APISessionID)) == nil {
			return notFound("session", rec.APISessionID)
		}
		if tx.Bucket(bucketCertFingerprints).Get(join(rec.APISessionID, rec.Fingerprint)) != nil {
			return &store.ConflictError{Field: "fingerprint", Value: rec.Fingerprint}
		}
		certs := tx.Bucket(bucketCertificates)
		if certs.Get(key) != nil {
			return &store.ConflictError{Field: "id", Value: rec.ID}
		}
		if maxLive > 0 {
			live := 0
			p := prefix(rec.APISessionID)
			cur := certs.Cursor()
			for k, v := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = cur.Next() {
				if len(v) >= timeKeyLen && bytes.Compare(v[:timeKeyLen], nowKey) > 0 {
					live++
				}
			}
			if live >= maxLive {
				return fmt.Errorf("bolt: session %q holds %d live certificates: %w",
					rec.APISessionID, live, store.ErrLimitReached)
			}
		}
		return putCertificate(tx, rec, value)
	})
}

// GetCertificate returns the certificate with that id in that session. It
// returns store.ErrNotFound when there is none, also when the id belongs to
// a certificate of another session.
func (s *Store) GetCertificate(
	ctx context.Context,
	apiSessionID, id string,
) (*store.Certificate, error) {
	var out *store.Certificate
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rec, err := getCertificate(tx, apiSessionID, id)
		if err == nil {
			out = rec.Certificate()
		}
		return err
	})
	return out, err
}

// getCertificate reads one certificate of a session.
func getCertificate(tx *bbolt.Tx, sessionID, id string) (*certificateRecord, error) {
	key := join(sessionID, id)
	v := tx.Bucket(bucketCertificates).Get(key)
	if v == nil {
		return nil, notFound("certificate", id)
	}
	return readCertificate(key, v)
}

// FindCertificateByFingerprint returns the certificate of the session with
// that fingerprint or store.ErrNotFound.
func (s *Store) FindCertificateByFingerprint(
	ctx context.Context,
	apiSessionID, fingerprint string,
) (*store.Certificate, error) {
	if err := checkID("session", apiSessionID); err != nil {
		return nil, notFound("certificate fingerprint", fingerprint)
	}
	var out *store.Certificate
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		key := tx.Bucket(bucketCertFingerprints).Get(join(apiSessionID, fingerprint))
		if key == nil {
			return notFound("certificate fingerprint", fingerprint)
		}
		sessionID, id := splitKey(key)
		rec, err := getCertificate(tx, sessionID, id)
		if err == nil {
			out = rec.Certificate()
		}
		return err
	})
	return out, err
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
	var live []*store.Certificate
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		sess, err := getSession(tx, apiSessionID)
		if err != nil {
			return err
		}
		if !sess.ExpiresAt.After(now) {
			// Expired, and not swept yet: its certificates are no longer its.
			return notFound("session", apiSessionID)
		}
		// A session holds few certificates (the cap sees to that), so they
		// are read whole and sorted here rather than kept in a second,
		// creation-ordered index.
		nowKey := timeKey(now)
		pre := prefix(apiSessionID)
		c := tx.Bucket(bucketCertificates).Cursor()
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			if len(v) >= timeKeyLen && bytes.Compare(v[:timeKeyLen], nowKey) <= 0 {
				continue
			}
			rec, err := readCertificate(k, v)
			if err != nil {
				return err
			}
			live = append(live, rec.Certificate())
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
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

// DeleteCertificate removes one certificate of a session in a
// group-committed transaction, together with the certificateDeleted event
// (cause deleted) it returns. It returns store.ErrNotFound when the session
// has no certificate with that id, and then changes nothing.
func (s *Store) DeleteCertificate(
	ctx context.Context,
	apiSessionID, id string,
	at time.Time,
) (*store.Event, error) {
	var (
		ev store.Event
		ap appended
	)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		ap = appended{}
		sess, err := getSession(tx, apiSessionID)
		if err != nil {
			return err
		}
		rec, err := getCertificate(tx, apiSessionID, id)
		if err != nil {
			return err
		}
		if err := removeCertificate(tx, join(apiSessionID, id), rec); err != nil {
			return err
		}
		ev = store.Event{
			Type:         store.EventCertificateDeleted,
			APISessionID: apiSessionID,
			IdentityID:   sess.IdentityID,
			Fingerprints: []string{rec.Fingerprint},
			Cause:        store.CauseDeleted,
			At:           at.UTC(),
		}
		return s.appendEvent(tx, &ev, &ap)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ap)
	return &ev, nil
}

// DeleteExpiredCertificates removes up to limit certificates whose ValidTo
// is not after now, soonest first, in one group-committed transaction, and
// returns how many it removed. It records no event. It returns an error when
// limit is not positive.
func (s *Store) DeleteExpiredCertificates(
	ctx context.Context,
	now time.Time,
	limit int,
) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("bolt: limit %d is not positive", limit)
	}
	var removed int
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		removed = 0

		var keys [][]byte
		nowKey := timeKey(now)
		c := tx.Bucket(bucketCertExpiry).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			if len(k) < timeKeyLen || bytes.Compare(k[:timeKeyLen], nowKey) > 0 {
				break
			}
			keys = append(keys, bytes.Clone(k[timeKeyLen:]))
		}

		for _, key := range keys {
			v := tx.Bucket(bucketCertificates).Get(key)
			if v == nil {
				return fmt.Errorf("%w: expiry index names missing certificate %q",
					errCorrupt, key)
			}
			rec, err := readCertificate(key, v)
			if err != nil {
				return err
			}
			if err := removeCertificate(tx, key, rec); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// CountCertificates returns how many certificates are stored, expired or
// not, from the count every write keeps: one read, whatever their number.
func (s *Store) CountCertificates(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		n = count(tx, keyCountCerts)
		return nil
	})
	return n, err
}

// isNotFound reports whether err means a record does not exist.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// notFound wraps store.ErrNotFound with what was looked for.
func notFound(kind, key string) error {
	return fmt.Errorf("bolt: %s %q: %w", kind, key, store.ErrNotFound)
}

// checkPage refuses pages the interface calls invalid.
func checkPage(p store.Page) error {
	if p.Limit <= 0 || p.Offset < 0 {
		return fmt.Errorf("bolt: invalid page (offset %d, limit %d): limit must be positive, "+
			"offset not negative", p.Offset, p.Limit)
	}
	return nil
}

// CreateIdentity stores a new identity with its first authenticators in one
// transaction. It returns a *store.ConflictError naming "id", "name",
// "externalId", "username" or "fingerprint" when one is taken, and an error
// when the id or name is empty or an authenticator names another identity.
func (s *Store) CreateIdentity(
	ctx context.Context,
	id *store.Identity,
	auths ...*store.Authenticator,
) error {
	if err := checkID("identity", id.ID); err != nil {
		return err
	}
	if id.Name == "" {
		return errors.New("bolt: identity name is empty")
	}
	rec := record.FromIdentity(id)
	authRecs := make([]*authenticatorRecord, len(auths))
	for i, a := range auths {
		if err := checkID("authenticator", a.ID); err != nil {
			return err
		}
		if a.IdentityID != id.ID {
			return fmt.Errorf("bolt: authenticator %q names identity %q, not %q", a.ID, a.IdentityID, id.ID)
		}
		authRecs[i] = record.FromAuthenticator(a)
	}

	return s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketIdentities).Get([]byte(rec.ID)) != nil {
			return &store.ConflictError{Field: "id", Value: rec.ID}
		}
		if err := claim(tx.Bucket(bucketIdentityNames), "name", rec.Name, rec.ID); err != nil {
			return err
		}
		if rec.ExternalID != "" {
			b := tx.Bucket(bucketIdentityExternalIDs)
			if err := claim(b, "externalId", rec.ExternalID, rec.ID); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bucketIdentities), []byte(rec.ID), rec); err != nil {
			return err
		}
		if err := countUp(tx, keyCountIdentities); err != nil {
			return err
		}
		for _, a := range authRecs {
			if err := putNewAuthenticator(tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetIdentity returns the identity or store.ErrNotFound.
func (s *Store) GetIdentity(ctx context.Context, id string) (*store.Identity, error) {
	var out *store.Identity
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rec, err := getIdentity(tx, id)
		if err == nil {
			out = rec.Identity()
		}
		return err
	})
	return out, err
}

// FindIdentityByName returns the identity with that name or
// store.ErrNotFound.
func (s *Store) FindIdentityByName(ctx context.Context, name string) (*store.Identity, error) {
	return s.findIdentity(ctx, bucketIdentityNames, "identity name", name)
}

// FindIdentityByExternalID returns the identity with that external id or
// store.ErrNotFound. The empty external id matches nothing.
func (s *Store) FindIdentityByExternalID(
	ctx context.Context,
	externalID string,
) (*store.Identity, error) {
	return s.findIdentity(ctx, bucketIdentityExternalIDs, "identity external id", externalID)
}

// findIdentity resolves key through the unique index bucket.
func (s *Store) findIdentity(
	ctx context.Context,
	index []byte,
	kind, key string,
) (*store.Identity, error) {
	var out *store.Identity
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if key == "" {
			return notFound(kind, key)
		}
		id := tx.Bucket(index).Get([]byte(key))
		if id == nil {
			return notFound(kind, key)
		}
		rec, err := getIdentity(tx, string(id))
		if err == nil {
			out = rec.Identity()
		}
		return err
	})
	return out, err
}

// getIdentity reads one identity record.
func getIdentity(tx *bbolt.Tx, id string) (*identityRecord, error) {
	var rec identityRecord
	ok, err := getJSON(tx.Bucket(bucketIdentities), []byte(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("identity", id)
	}
	return &rec, nil
}

// UpdateIdentity replaces the stored identity with the same ID. It returns
// store.ErrNotFound when there is none, and a *store.ConflictError naming
// "name" or "externalId" when another identity holds the new value.
func (s *Store) UpdateIdentity(ctx context.Context, id *store.Identity) error {
	if id.Name == "" {
		return errors.New("bolt: identity name is empty")
	}
	rec := record.FromIdentity(id)

	return s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getIdentity(tx, rec.ID)
		if err != nil {
			return err
		}
		names := tx.Bucket(bucketIdentityNames)
		if err := reclaim(names, "name", old.Name, rec.Name, rec.ID); err != nil {
			return err
		}
		ext := tx.Bucket(bucketIdentityExternalIDs)
		err = reclaim(ext, "externalId", old.ExternalID, rec.ExternalID, rec.ID)
		if err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketIdentities), []byte(rec.ID), rec)
	})
}

// DeleteIdentity removes the identity, its authenticators, its sessions and
// their certificates in one group-committed transaction, and returns one
// apiSessionRemoved event of cause admin per session, stamped at. It returns
// store.ErrNotFound when the identity does not exist.
func (s *Store) DeleteIdentity(
	ctx context.Context,
	id string,
	at time.Time,
) ([]store.Event, error) {
	var (
		events []store.Event
		ap     appended
	)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		events, ap = nil, appended{}

		rec, err := getIdentity(tx, id)
		if err != nil {
			return err
		}

		// The identity's sessions, each with its certificates and event.
		if events, err = s.removeIdentitySessions(tx, id, "", at, &ap); err != nil {
			return err
		}

		// Its authenticators, with their unique index entries.
		for _, k := range keysWithPrefix(tx.Bucket(bucketIdentityAuths), prefix(id)) {
			_, aid := splitKey(k)
			a, err := getAuthenticator(tx, aid)
			if err != nil {
				return err
			}
			if err := removeAuthenticator(tx, a); err != nil {
				return err
			}
		}

		// The identity itself.
		if err := del(tx.Bucket(bucketIdentityNames), []byte(rec.Name)); err != nil {
			return err
		}
		if rec.ExternalID != "" {
			b := tx.Bucket(bucketIdentityExternalIDs)
			if err := del(b, []byte(rec.ExternalID)); err != nil {
				return err
			}
		}
		if err := del(tx.Bucket(bucketIdentities), []byte(id)); err != nil {
			return err
		}
		return countDown(tx, keyCountIdentities)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ap)
	return events, nil
}

// ListIdentities returns the identities at p in name order, and how many
// identities there are.
func (s *Store) ListIdentities(ctx context.Context, p store.Page) ([]*store.Identity, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	var (
		out   []*store.Identity
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		total = count(tx, keyCountIdentities)
		return pageOf(tx.Bucket(bucketIdentityNames), p, func(_, id []byte) error {
			rec, err := getIdentity(tx, string(id))
			if err == nil {
				out = append(out, rec.Identity())
			}
			return err
		})
	})
	return out, total, err
}

// CountIdentities returns how many identities exist.
func (s *Store) CountIdentities(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		n = count(tx, keyCountIdentities)
		return nil
	})
	return n, err
}

// pageOf calls fn for the entries of b at p, in key order.
func pageOf(b *bbolt.Bucket, p store.Page, fn func(k, v []byte) error) error {
	c := b.Cursor()
	k, v := c.First()
	for i := 0; k != nil && i < p.Offset; i++ {
		k, v = c.Next()
	}
	for n := 0; k != nil && n < p.Limit; n++ {
		if err := fn(k, v); err != nil {
			return err
		}
		k, v = c.Next()
	}
	return nil
}

// CreateAuthenticator stores a credential of an existing identity. It
// returns store.ErrNotFound when the identity does not exist, and a
// *store.ConflictError naming "id", "username" or "fingerprint" when one is
// taken.
func (s *Store) CreateAuthenticator(ctx context.Context, a *store.Authenticator) error {
	if err := checkID("authenticator", a.ID); err != nil {
		return err
	}
	if err := checkID("identity", a.IdentityID); err != nil {
		return err
	}
	rec := record.FromAuthenticator(a)

	return s.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := getIdentity(tx, rec.IdentityID); err != nil {
			return err
		}
		return putNewAuthenticator(tx, rec)
	})
}

// putNewAuthenticator stores a new authenticator with its index entries,
// claiming its id, username and fingerprint.
func putNewAuthenticator(tx *bbolt.Tx, rec *authenticatorRecord) error {
	if tx.Bucket(bucketAuthenticators).Get([]byte(rec.ID)) != nil {
		return &store.ConflictError{Field: "id", Value: rec.ID}
	}
	if err := indexAuthenticator(tx, nil, rec); err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bucketAuthenticators), []byte(rec.ID), rec); err != nil {
		return err
	}
	return countUp(tx, keyCountAuths)
}

// indexAuthenticator moves the index entries of an authenticator from old
// (nil for a new one) to rec, claiming the unique ones.
func indexAuthenticator(tx *bbolt.Tx, old, rec *authenticatorRecord) error {
	if old == nil {
		old = &authenticatorRecord{}
	}
	users := tx.Bucket(bucketAuthUsernames)
	if err := reclaim(users, "username", old.Username, rec.Username, rec.ID); err != nil {
		return err
	}
	fps := tx.Bucket(bucketAuthFingerprints)
	err := reclaim(fps, "fingerprint", old.Fingerprint, rec.Fingerprint, rec.ID)
	if err != nil {
		return err
	}
	if old.IdentityID == rec.IdentityID {
		return nil
	}
	owners := tx.Bucket(bucketIdentityAuths)
	if old.IdentityID != "" {
		if err := del(owners, join(old.IdentityID, rec.ID)); err != nil {
			return err
		}
	}
	return put(owners, join(rec.IdentityID, rec.ID), []byte{})
}

// GetAuthenticator returns the authenticator or store.ErrNotFound.
func (s *Store) GetAuthenticator(ctx context.Context, id string) (*store.Authenticator, error) {
	var out *store.Authenticator
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rec, err := getAuthenticator(tx, id)
		if err == nil {
			out = rec.Authenticator()
		}
		return err
	})
	return out, err
}

// FindAuthenticatorByUsername returns the authenticator with that username
// or store.ErrNotFound.
func (s *Store) FindAuthenticatorByUsername(
	ctx context.Context,
	username string,
) (*store.Authenticator, error) {
	return s.findAuthenticator(ctx, bucketAuthUsernames, "authenticator username", username)
}

// FindAuthenticatorByFingerprint returns the authenticator with that
// certificate fingerprint or store.ErrNotFound.
func (s *Store) FindAuthenticatorByFingerprint(
	ctx context.Context,
	fingerprint string,
) (*store.Authenticator, error) {
	return s.findAuthenticator(ctx, bucketAuthFingerprints, "authenticator fingerprint",
		fingerprint)
}

// findAuthenticator resolves key through the unique index bucket.
func (s *Store) findAuthenticator(
	ctx context.Context,
	index []byte,
	kind, key string,
) (*store.Authenticator, error) {
	var out *store.Authenticator
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if key == "" {
			return notFound(kind, key)
		}
		id := tx.Bucket(index).Get([]byte(key))
		if id == nil {
			return notFound(kind, key)
		}
		rec, err := getAuthenticator(tx, string(id))
		if err == nil {
			out = rec.Authenticator()
		}
		return err
	})
	return out, err
}

// getAuthenticator reads one authenticator record.
func getAuthenticator(tx *bbolt.Tx, id string) (*authenticatorRecord, error) {
	var rec authenticatorRecord
	ok, err := getJSON(tx.Bucket(bucketAuthenticators), []byte(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("authenticator", id)
	}
	return &rec, nil
}

// UpdateAuthenticator replaces the stored authenticator with the same ID.
// It returns store.ErrNotFound when there is none or when the identity it
// now names does not exist, and a *store.ConflictError naming "username" or
// "fingerprint" when another authenticator holds the new value.
func (s *Store) UpdateAuthenticator(ctx context.Context, a *store.Authenticator) error {
	if err := checkID("identity", a.IdentityID); err != nil {
		return err
	}
	rec := record.FromAuthenticator(a)

	return s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getAuthenticator(tx, rec.ID)
		if err != nil {
			return err
		}
		if old.IdentityID != rec.IdentityID {
			if _, err := getIdentity(tx, rec.IdentityID); err != nil {
				return err
			}
		}
		if err := indexAuthenticator(tx, old, rec); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketAuthenticators), []byte(rec.ID), rec)
	})
}

// DeleteAuthenticator removes the authenticator and the sessions it created,
// with their certificates, in one group-committed transaction, and returns
// one apiSessionRemoved event of cause admin per session, stamped at. It
// returns store.ErrNotFound when the authenticator does not exist.
func (s *Store) DeleteAuthenticator(
	ctx context.Context,
	id string,
	at time.Time,
) ([]store.Event, error) {
	var (
		events []store.Event
		ap     appended
	)
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		events, ap = nil, appended{}

		rec, err := getAuthenticator(tx, id)
		if err != nil {
			return err
		}

		// The sessions it created are among its identity's.
		if events, err = s.removeIdentitySessions(tx, rec.IdentityID, id, at, &ap); err != nil {
			return err
		}
		return removeAuthenticator(tx, rec)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ap)
	return events, nil
}

// removeIdentitySessions removes the sessions of identityID, each with its
// certificates, as an administrator's delete (cause admin, stamped at), and
// returns their events. With authenticatorID set, only the sessions that
// authenticator logged in go.
func (s *Store) removeIdentitySessions(
	tx *bbolt.Tx,
	identityID, authenticatorID string,
	at time.Time,
	ap *appended,
) ([]store.Event, error) {
	var events []store.Event
	for _, k := range keysWithPrefix(tx.Bucket(bucketIdentitySessions), prefix(identityID)) {
		_, sid := splitKey(k)
		sess, err := getSession(tx, sid)
		if err != nil {
			return nil, err
		}
		if authenticatorID != "" && sess.AuthenticatorID != authenticatorID {
			continue
		}
		ev, err := s.removeSession(tx, sess, store.CauseAdmin, at, ap)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// removeAuthenticator deletes an authenticator with its index entries.
func removeAuthenticator(tx *bbolt.Tx, rec *authenticatorRecord) error {
	if rec.Username != "" {
		if err := del(tx.Bucket(bucketAuthUsernames), []byte(rec.Username)); err != nil {
			return err
		}
	}
	if rec.Fingerprint != "" {
		if err := del(tx.Bucket(bucketAuthFingerprints), []byte(rec.Fingerprint)); err != nil {
			return err
		}
	}
	if err := del(tx.Bucket(bucketIdentityAuths), join(rec.IdentityID, rec.ID)); err != nil {
		return err
	}
	if err := del(tx.Bucket(bucketAuthenticators), []byte(rec.ID)); err != nil {
		return err
	}
	return countDown(tx, keyCountAuths)
}

// ListAuthenticators returns the authenticators at p in id order, and how
// many authenticators there are.
func (s *Store) ListAuthenticators(
	ctx context.Context,
	p store.Page,
) ([]*store.Authenticator, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	var (
		out   []*store.Authenticator
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		total = count(tx, keyCountAuths)
		return pageOf(tx.Bucket(bucketAuthenticators), p, func(k, v []byte) error {
			var rec authenticatorRecord
			if err := decodeJSON(k, v, &rec); err != nil {
				return err
			}
			out = append(out, rec.Authenticator())
			return nil
		})
	})
	return out, total, err
}

// CreateExtJWTSigner stores a signer. It returns a *store.ConflictError
// naming "id" or "name" when one is taken, and an error when the id or name
// is empty.
func (s *Store) CreateExtJWTSigner(ctx context.Context, sg *store.ExtJWTSigner) error {
	if err := checkID("signer", sg.ID); err != nil {
		return err
	}
	if sg.Name == "" {
		return errors.New("bolt: signer name is empty")
	}
	rec := record.FromSigner(sg)

	return s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketSigners).Get([]byte(rec.ID)) != nil {
			return &store.ConflictError{Field: "id", Value: rec.ID}
		}
		if err := claim(tx.Bucket(bucketSignerNames), "name", rec.Name, rec.ID); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketSigners), []byte(rec.ID), rec); err != nil {
			return err
		}
		return countUp(tx, keyCountSigners)
	})
}

// GetExtJWTSigner returns the signer or store.ErrNotFound.
func (s *Store) GetExtJWTSigner(ctx context.Context, id string) (*store.ExtJWTSigner, error) {
	var out *store.ExtJWTSigner
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rec, err := getSigner(tx, id)
		if err == nil {
			out = rec.Signer()
		}
		return err
	})
	return out, err
}

// getSigner reads one signer record.
func getSigner(tx *bbolt.Tx, id string) (*signerRecord, error) {
	var rec signerRecord
	ok, err := getJSON(tx.Bucket(bucketSigners), []byte(id), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("signer", id)
	}
	return &rec, nil
}

// UpdateExtJWTSigner replaces the stored signer with the same ID. It returns
// store.ErrNotFound when there is none, and a *store.ConflictError naming
// "name" when another signer holds the new name.
func (s *Store) UpdateExtJWTSigner(ctx context.Context, sg *store.ExtJWTSigner) error {
	if sg.Name == "" {
		return errors.New("bolt: signer name is empty")
	}
	rec := record.FromSigner(sg)

	return s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getSigner(tx, rec.ID)
		if err != nil {
			return err
		}
		names := tx.Bucket(bucketSignerNames)
		if err := reclaim(names, "name", old.Name, rec.Name, rec.ID); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketSigners), []byte(rec.ID), rec)
	})
}

// DeleteExtJWTSigner removes the signer, or returns store.ErrNotFound.
func (s *Store) DeleteExtJWTSigner(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		rec, err := getSigner(tx, id)
		if err != nil {
			return err
		}
		if err := del(tx.Bucket(bucketSignerNames), []byte(rec.Name)); err != nil {
			return err
		}
		if err := del(tx.Bucket(bucketSigners), []byte(id)); err != nil {
			return err
		}
		return countDown(tx, keyCountSigners)
	})
}

// ListExtJWTSigners returns the signers at p in name order, and how many
// signers there are.
func (s *Store) ListExtJWTSigners(
	ctx context.Context,
	p store.Page,
) ([]*store.ExtJWTSigner, int, error) {
	if err := checkPage(p); err != nil {
		return nil, 0, err
	}
	var (
		out   []*store.ExtJWTSigner
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		total = count(tx, keyCountSigners)
		return pageOf(tx.Bucket(bucketSignerNames), p, func(_, id []byte) error {
			rec, err := getSigner(tx, string(id))
			if err == nil {
				out = append(out, rec.Signer())
			}
			return err
		})
	})
	return out, total, err
}

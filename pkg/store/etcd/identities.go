package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// CreateIdentity stores a new identity with its first authenticators in one
// transaction. It returns a *store.ConflictError naming "id", "name",
// "externalId", "username" or "fingerprint" when one is taken, and an error
// when an id is invalid, the name empty, an authenticator names another
// identity, or there are more authenticators than one transaction holds
// ((MaxTxnOps-4)/4: 31 with etcd's default).
func (s *Store) CreateIdentity(
	ctx context.Context,
	i *store.Identity,
	auths ...*store.Authenticator,
) error {
	if err := checkID("identity", i.ID); err != nil {
		return err
	}
	if i.Name == "" {
		return errors.New("etcd: identity name is empty")
	}
	if n := s.authsInTxn(); len(auths) > n {
		return fmt.Errorf("etcd: identity %q comes with %d authenticators, more than the %d that fit "+
			"in a transaction of %d operations", i.ID, len(auths), n, s.opts.MaxTxnOps)
	}
	rec := record.FromIdentity(i)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	key, nameKey := s.k.identity(rec.ID), s.k.identityNames+rec.Name
	guards := []guard{
		absent(key, &store.ConflictError{Field: "id", Value: rec.ID}),
		absent(nameKey, &store.ConflictError{Field: "name", Value: rec.Name}),
	}
	then := []clientv3.Op{clientv3.OpPut(key, value), clientv3.OpPut(nameKey, rec.ID)}
	if rec.ExternalID != "" {
		extKey := s.k.identityExtIDs + rec.ExternalID
		guards = append(guards,
			absent(extKey, &store.ConflictError{Field: "externalId", Value: rec.ExternalID}))
		then = append(then, clientv3.OpPut(extKey, rec.ID))
	}
	for _, a := range auths {
		if a.IdentityID != i.ID {
			return fmt.Errorf("etcd: authenticator %q names identity %q, not %q", a.ID, a.IdentityID, i.ID)
		}
		g, ops, err := s.newAuthenticator(a)
		if err != nil {
			return err
		}
		guards, then = append(guards, g...), append(then, ops...)
	}
	return s.commitOnce(ctx, "create identity", guards, then)
}

// getIdentity reads one identity record and its key-value.
func (s *Store) getIdentity(
	ctx context.Context,
	id string,
) (*identityRecord, *mvccpb.KeyValue, error) {
	if err := s.ready(ctx); err != nil {
		return nil, nil, err
	}
	if !validID(id) {
		return nil, nil, notFound("identity", id)
	}
	resp, err := s.get(ctx, "get identity", s.k.identity(id))
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, notFound("identity", id)
	}
	var rec identityRecord
	if err := decode(resp.Kvs[0].Key, resp.Kvs[0].Value, &rec); err != nil {
		return nil, nil, err
	}
	return &rec, resp.Kvs[0], nil
}

// GetIdentity returns the identity or store.ErrNotFound.
func (s *Store) GetIdentity(ctx context.Context, id string) (*store.Identity, error) {
	rec, _, err := s.getIdentity(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.Identity(), nil
}

// FindIdentityByName returns the identity with that name or
// store.ErrNotFound.
func (s *Store) FindIdentityByName(ctx context.Context, name string) (*store.Identity, error) {
	return s.findIdentity(ctx, s.k.identityNames, "identity name", name,
		func(r *identityRecord) string { return r.Name })
}

// FindIdentityByExternalID returns the identity with that external id or
// store.ErrNotFound. The empty external id matches nothing.
func (s *Store) FindIdentityByExternalID(
	ctx context.Context,
	externalID string,
) (*store.Identity, error) {
	return s.findIdentity(ctx, s.k.identityExtIDs, "identity external id", externalID,
		func(r *identityRecord) string { return r.ExternalID })
}

// findIdentity resolves value through the unique index under index, and
// checks that the identity still holds it (it may have been renamed
// between the two reads).
func (s *Store) findIdentity(
	ctx context.Context,
	index, kind, value string,
	field func(*identityRecord) string,
) (*store.Identity, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, notFound(kind, value)
	}
	resp, err := s.get(ctx, "find identity", index+value)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound(kind, value)
	}
	rec, _, err := s.getIdentity(ctx, string(resp.Kvs[0].Value))
	if isNotFound(err) || (err == nil && field(rec) != value) {
		return nil, notFound(kind, value)
	}
	if err != nil {
		return nil, err
	}
	return rec.Identity(), nil
}

// UpdateIdentity replaces the stored identity with the same ID, moving its
// unique index entries in the same transaction. It returns
// store.ErrNotFound when there is none, and a *store.ConflictError naming
// "name" or "externalId" when another identity holds the new value.
func (s *Store) UpdateIdentity(ctx context.Context, i *store.Identity) error {
	if i.Name == "" {
		return errors.New("etcd: identity name is empty")
	}
	rec := record.FromIdentity(i)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	for {
		old, kv, err := s.getIdentity(ctx, rec.ID)
		if err != nil {
			return err
		}
		guards := []guard{unchanged(kv)}
		then := []clientv3.Op{clientv3.OpPut(string(kv.Key), value)}
		g, ops := s.moveIndex(s.k.identityNames, "name", old.Name, rec.Name, rec.ID)
		guards, then = append(guards, g...), append(then, ops...)
		g, ops = s.moveIndex(s.k.identityExtIDs, "externalId", old.ExternalID, rec.ExternalID,
			rec.ID)
		guards, then = append(guards, g...), append(then, ops...)

		_, err = s.guarded(ctx, "update identity", guards, then...)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// moveIndex returns the guards and writes that move owner's entry in the
// unique index under index from old to value; an empty value has no entry.
func (s *Store) moveIndex(
	index, field, old, value, owner string,
) ([]guard, []clientv3.Op) {
	if old == value {
		return nil, nil
	}
	var (
		guards []guard
		ops    []clientv3.Op
	)
	if old != "" {
		ops = append(ops, clientv3.OpDelete(index+old))
	}
	if value != "" {
		guards = append(guards,
			absent(index+value, &store.ConflictError{Field: field, Value: value}))
		ops = append(ops, clientv3.OpPut(index+value, owner))
	}
	return guards, ops
}

// DeleteIdentity removes the identity, its authenticators, its sessions and
// their certificates, and returns one apiSessionRemoved event of cause admin
// per session, stamped at, with increasing cursors. It returns
// store.ErrNotFound when the identity does not exist.
//
// Unlike the bolt backend it is not one transaction. Each session is
// removed in a transaction of its own, with its certificates and its event
// (one revision, so one cursor, per event); then the identity and its
// authenticators go in a last transaction that commits only if no session
// of the identity is left and no authenticator changed, and otherwise the
// whole is done again. A login racing the delete either fails because the
// identity is gone or is removed by the next round. An interruption leaves
// an identity with fewer sessions, which is a consistent state, and calling
// DeleteIdentity again finishes the work. One transaction could hold only
// a few dozen sessions within etcd's limit of 128 operations.
func (s *Store) DeleteIdentity(
	ctx context.Context,
	id string,
	at time.Time,
) ([]store.Event, error) {
	if _, _, err := s.getIdentity(ctx, id); err != nil {
		return nil, err
	}
	var events []store.Event
	for {
		resp, err := s.read(ctx, "delete identity",
			clientv3.OpGet(s.k.identity(id)),
			clientv3.OpGet(s.k.ownedSessions(id), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(s.k.ownedAuths(id), clientv3.WithPrefix(), clientv3.WithKeysOnly()))
		if err != nil {
			return nil, err
		}
		found := kvs(resp, 0)
		if len(found) == 0 {
			// Deleted by someone else meanwhile: the work is done.
			return events, nil
		}

		// The sessions first, each with its certificates and its event.
		if owned := kvs(resp, 1); len(owned) > 0 {
			for _, kv := range owned {
				sid, _ := rest(kv.Key, s.k.ownedSessions(id))
				ev, err := s.removeSession(ctx, sid, store.CauseAdmin, at, nil)
				if isNotFound(err) {
					continue // it ended meanwhile
				}
				if err != nil {
					return nil, err
				}
				events = append(events, *ev)
			}
			continue // look again for sessions created meanwhile
		}

		// Then the identity with its authenticators.
		auths := kvs(resp, 2)
		if n := s.authsInTxn(); len(auths) > n {
			for _, kv := range auths[n:] {
				aid, _ := rest(kv.Key, s.k.ownedAuths(id))
				if err := s.removeAuthenticator(ctx, aid); err != nil && !isNotFound(err) {
					return nil, err
				}
			}
			continue
		}
		err = s.removeIdentity(ctx, found[0], auths, resp.Header.Revision)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return events, nil
	}
}

// removeIdentity deletes the identity read as kv and the authenticators
// named by the index entries owned (read at revision rev), if the identity
// has no session left and its authenticators did not change since rev.
func (s *Store) removeIdentity(
	ctx context.Context,
	kv *mvccpb.KeyValue,
	owned []*mvccpb.KeyValue,
	rev int64,
) error {
	var rec identityRecord
	if err := decode(kv.Key, kv.Value, &rec); err != nil {
		return err
	}
	keys := make([]string, len(owned))
	for i, o := range owned {
		aid, _ := rest(o.Key, s.k.ownedAuths(rec.ID))
		keys[i] = s.k.authenticator(aid)
	}
	auths, err := s.getMany(ctx, "delete identity", keys, rev)
	if err != nil {
		return err
	}

	guards := []guard{
		unchanged(kv),
		emptyRange(s.k.ownedSessions(rec.ID)),
		unchangedRange(s.k.ownedAuths(rec.ID), rev),
	}
	then := []clientv3.Op{
		clientv3.OpDelete(string(kv.Key)),
		clientv3.OpDelete(s.k.identityNames + rec.Name),
		clientv3.OpDelete(s.k.ownedAuths(rec.ID), clientv3.WithPrefix()),
	}
	if rec.ExternalID != "" {
		then = append(then, clientv3.OpDelete(s.k.identityExtIDs+rec.ExternalID))
	}
	for _, a := range auths {
		var ar authenticatorRecord
		if err := decode(a.Key, a.Value, &ar); err != nil {
			return err
		}
		guards = append(guards, unchanged(a))
		then = append(then, s.unindexAuthenticator(&ar)...)
		then = append(then, clientv3.OpDelete(string(a.Key)))
	}
	_, err = s.guarded(ctx, "delete identity", guards, then...)
	return err
}

// ListIdentities returns the identities at p in name order, and how many
// identities there are.
func (s *Store) ListIdentities(ctx context.Context, p store.Page) ([]*store.Identity, int, error) {
	records, total, err := s.pageRecords(ctx, "list identities", s.k.identityNames, p,
		s.k.identity)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*store.Identity, 0, len(records))
	for _, kv := range records {
		var rec identityRecord
		if err := decode(kv.Key, kv.Value, &rec); err != nil {
			return nil, 0, err
		}
		out = append(out, rec.Identity())
	}
	return out, total, nil
}

// CountIdentities returns how many identities exist.
func (s *Store) CountIdentities(ctx context.Context) (int, error) {
	resp, err := s.get(ctx, "count identities", s.k.identities,
		clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return int(resp.Count), nil
}

// CreateAuthenticator stores a credential of an existing identity. It
// returns store.ErrNotFound when the identity does not exist, and a
// *store.ConflictError naming "id", "username" or "fingerprint" when one is
// taken.
func (s *Store) CreateAuthenticator(ctx context.Context, a *store.Authenticator) error {
	if err := checkID("identity", a.IdentityID); err != nil {
		return err
	}
	guards, then, err := s.newAuthenticator(a)
	if err != nil {
		return err
	}
	guards = append(guards,
		present(s.k.identity(a.IdentityID), notFound("identity", a.IdentityID)))
	return s.commitOnce(ctx, "create authenticator", guards, then)
}

// newAuthenticator returns the guards and writes that store a new
// authenticator with its index entries, claiming its id, username and
// fingerprint: four guards and four writes at most.
func (s *Store) newAuthenticator(a *store.Authenticator) ([]guard, []clientv3.Op, error) {
	if err := checkID("authenticator", a.ID); err != nil {
		return nil, nil, err
	}
	rec := record.FromAuthenticator(a)
	value, err := encode(rec)
	if err != nil {
		return nil, nil, err
	}
	key := s.k.authenticator(rec.ID)
	guards := []guard{absent(key, &store.ConflictError{Field: "id", Value: rec.ID})}
	then := []clientv3.Op{
		clientv3.OpPut(key, value),
		clientv3.OpPut(s.k.identityAuth(rec.IdentityID, rec.ID), ""),
	}
	g, ops := s.moveIndex(s.k.authUsernames, "username", "", rec.Username, rec.ID)
	guards, then = append(guards, g...), append(then, ops...)
	g, ops = s.moveIndex(s.k.authFingerprints, "fingerprint", "", rec.Fingerprint, rec.ID)
	guards, then = append(guards, g...), append(then, ops...)
	return guards, then, nil
}

// getAuthenticator reads one authenticator record and its key-value.
func (s *Store) getAuthenticator(
	ctx context.Context,
	id string,
) (*authenticatorRecord, *mvccpb.KeyValue, error) {
	if err := s.ready(ctx); err != nil {
		return nil, nil, err
	}
	if !validID(id) {
		return nil, nil, notFound("authenticator", id)
	}
	resp, err := s.get(ctx, "get authenticator", s.k.authenticator(id))
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, notFound("authenticator", id)
	}
	var rec authenticatorRecord
	if err := decode(resp.Kvs[0].Key, resp.Kvs[0].Value, &rec); err != nil {
		return nil, nil, err
	}
	return &rec, resp.Kvs[0], nil
}

// GetAuthenticator returns the authenticator or store.ErrNotFound.
func (s *Store) GetAuthenticator(ctx context.Context, id string) (*store.Authenticator, error) {
	rec, _, err := s.getAuthenticator(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.Authenticator(), nil
}

// FindAuthenticatorByUsername returns the authenticator with that username
// or store.ErrNotFound.
func (s *Store) FindAuthenticatorByUsername(
	ctx context.Context,
	username string,
) (*store.Authenticator, error) {
	return s.findAuthenticator(ctx, s.k.authUsernames, "authenticator username", username,
		func(r *authenticatorRecord) string { return r.Username })
}

// FindAuthenticatorByFingerprint returns the authenticator with that
// certificate fingerprint or store.ErrNotFound.
func (s *Store) FindAuthenticatorByFingerprint(
	ctx context.Context,
	fingerprint string,
) (*store.Authenticator, error) {
	return s.findAuthenticator(ctx, s.k.authFingerprints, "authenticator fingerprint",
		fingerprint, func(r *authenticatorRecord) string { return r.Fingerprint })
}

// findAuthenticator resolves value through the unique index under index,
// and checks that the authenticator still holds it.
func (s *Store) findAuthenticator(
	ctx context.Context,
	index, kind, value string,
	field func(*authenticatorRecord) string,
) (*store.Authenticator, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if value == "" {
		return nil, notFound(kind, value)
	}
	resp, err := s.get(ctx, "find authenticator", index+value)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, notFound(kind, value)
	}
	rec, _, err := s.getAuthenticator(ctx, string(resp.Kvs[0].Value))
	if isNotFound(err) || (err == nil && field(rec) != value) {
		return nil, notFound(kind, value)
	}
	if err != nil {
		return nil, err
	}
	return rec.Authenticator(), nil
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
	value, err := encode(rec)
	if err != nil {
		return err
	}
	for {
		old, kv, err := s.getAuthenticator(ctx, rec.ID)
		if err != nil {
			return err
		}
		guards := []guard{unchanged(kv)}
		then := []clientv3.Op{clientv3.OpPut(string(kv.Key), value)}
		if old.IdentityID != rec.IdentityID {
			guards = append(guards,
				present(s.k.identity(rec.IdentityID), notFound("identity", rec.IdentityID)))
			then = append(then,
				clientv3.OpDelete(s.k.identityAuth(old.IdentityID, rec.ID)),
				clientv3.OpPut(s.k.identityAuth(rec.IdentityID, rec.ID), ""))
		}
		g, ops := s.moveIndex(s.k.authUsernames, "username", old.Username, rec.Username, rec.ID)
		guards, then = append(guards, g...), append(then, ops...)
		g, ops = s.moveIndex(s.k.authFingerprints, "fingerprint", old.Fingerprint,
			rec.Fingerprint, rec.ID)
		guards, then = append(guards, g...), append(then, ops...)

		_, err = s.guarded(ctx, "update authenticator", guards, then...)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// unindexAuthenticator returns the deletes of an authenticator's index
// entries.
func (s *Store) unindexAuthenticator(rec *authenticatorRecord) []clientv3.Op {
	ops := []clientv3.Op{clientv3.OpDelete(s.k.identityAuth(rec.IdentityID, rec.ID))}
	if rec.Username != "" {
		ops = append(ops, clientv3.OpDelete(s.k.authUsernames+rec.Username))
	}
	if rec.Fingerprint != "" {
		ops = append(ops, clientv3.OpDelete(s.k.authFingerprints+rec.Fingerprint))
	}
	return ops
}

// DeleteAuthenticator removes the authenticator with its index entries and
// ends the sessions it created, and returns one apiSessionRemoved event of
// cause admin per session, stamped at, with increasing cursors. It returns
// store.ErrNotFound when the authenticator does not exist.
//
// As DeleteIdentity, it is not one transaction. The sessions of the
// authenticator's identity are read at one revision; those it created are
// removed, each in a transaction of its own with its certificates and its
// event; then the authenticator goes in a transaction that commits only if
// no session of the identity was created since that revision, and otherwise
// the whole is done again. An interruption leaves the authenticator with
// fewer sessions, and calling DeleteAuthenticator again finishes the work.
func (s *Store) DeleteAuthenticator(
	ctx context.Context,
	id string,
	at time.Time,
) ([]store.Event, error) {
	if _, _, err := s.getAuthenticator(ctx, id); err != nil {
		return nil, err
	}
	createdBy := func(r *sessionRecord) bool { return r.AuthenticatorID == id }
	var events []store.Event
	for {
		rec, kv, err := s.getAuthenticator(ctx, id)
		if isNotFound(err) {
			// Deleted by someone else meanwhile: the work is done.
			return events, nil
		}
		if err != nil {
			return nil, err
		}
		owned := s.k.ownedSessions(rec.IdentityID)
		resp, err := s.read(ctx, "delete authenticator",
			clientv3.OpGet(owned, clientv3.WithPrefix(), clientv3.WithKeysOnly()))
		if err != nil {
			return nil, err
		}
		rev := resp.Header.Revision
		keys := make([]string, 0, len(kvs(resp, 0)))
		for _, kv := range kvs(resp, 0) {
			sid, _ := rest(kv.Key, owned)
			keys = append(keys, s.k.session(sid))
		}
		sessions, err := s.getMany(ctx, "delete authenticator", keys, rev)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}

		// The sessions it created, each with its certificates and event.
		for _, skv := range sessions {
			var sr sessionRecord
			if err := decode(skv.Key, skv.Value, &sr); err != nil {
				return nil, err
			}
			if !createdBy(&sr) {
				continue
			}
			ev, err := s.removeSession(ctx, sr.ID, store.CauseAdmin, at, createdBy)
			if isNotFound(err) {
				continue // it ended meanwhile
			}
			if err != nil {
				return nil, err
			}
			if ev != nil {
				events = append(events, *ev)
			}
		}

		// Then the authenticator, unless a login made a session meanwhile.
		// Removals since rev leave the guard on the session index intact.
		then := append(s.unindexAuthenticator(rec), clientv3.OpDelete(string(kv.Key)))
		_, err = s.guarded(ctx, "delete authenticator",
			[]guard{unchanged(kv), unchangedRange(owned, rev)}, then...)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return events, nil
	}
}

// removeAuthenticator deletes an authenticator with its index entries,
// leaving its sessions alone, or returns store.ErrNotFound.
func (s *Store) removeAuthenticator(ctx context.Context, id string) error {
	for {
		rec, kv, err := s.getAuthenticator(ctx, id)
		if err != nil {
			return err
		}
		then := append(s.unindexAuthenticator(rec), clientv3.OpDelete(string(kv.Key)))
		_, err = s.guarded(ctx, "delete authenticator", []guard{unchanged(kv)}, then...)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// ListAuthenticators returns the authenticators at p in id order, and how
// many authenticators there are.
func (s *Store) ListAuthenticators(
	ctx context.Context,
	p store.Page,
) ([]*store.Authenticator, int, error) {
	page, total, _, err := s.page(ctx, "list authenticators", s.k.authenticators, p)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*store.Authenticator, 0, len(page))
	for _, kv := range page {
		var rec authenticatorRecord
		if err := decode(kv.Key, kv.Value, &rec); err != nil {
			return nil, 0, err
		}
		out = append(out, rec.Authenticator())
	}
	return out, total, nil
}

// CreateExtJWTSigner stores a signer. It returns a *store.ConflictError
// naming "id" or "name" when one is taken, and an error when the id is
// invalid or the name empty.
func (s *Store) CreateExtJWTSigner(ctx context.Context, sg *store.ExtJWTSigner) error {
	if err := checkID("signer", sg.ID); err != nil {
		return err
	}
	if sg.Name == "" {
		return errors.New("etcd: signer name is empty")
	}
	rec := record.FromSigner(sg)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	key, nameKey := s.k.signer(rec.ID), s.k.signerNames+rec.Name
	return s.commitOnce(ctx, "create signer",
		[]guard{
			absent(key, &store.ConflictError{Field: "id", Value: rec.ID}),
			absent(nameKey, &store.ConflictError{Field: "name", Value: rec.Name}),
		},
		[]clientv3.Op{clientv3.OpPut(key, value), clientv3.OpPut(nameKey, rec.ID)})
}

// getSigner reads one signer record and its key-value.
func (s *Store) getSigner(
	ctx context.Context,
	id string,
) (*signerRecord, *mvccpb.KeyValue, error) {
	if err := s.ready(ctx); err != nil {
		return nil, nil, err
	}
	if !validID(id) {
		return nil, nil, notFound("signer", id)
	}
	resp, err := s.get(ctx, "get signer", s.k.signer(id))
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, notFound("signer", id)
	}
	var rec signerRecord
	if err := decode(resp.Kvs[0].Key, resp.Kvs[0].Value, &rec); err != nil {
		return nil, nil, err
	}
	return &rec, resp.Kvs[0], nil
}

// GetExtJWTSigner returns the signer or store.ErrNotFound.
func (s *Store) GetExtJWTSigner(ctx context.Context, id string) (*store.ExtJWTSigner, error) {
	rec, _, err := s.getSigner(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.Signer(), nil
}

// UpdateExtJWTSigner replaces the stored signer with the same ID. It returns
// store.ErrNotFound when there is none, and a *store.ConflictError naming
// "name" when another signer holds the new name.
func (s *Store) UpdateExtJWTSigner(ctx context.Context, sg *store.ExtJWTSigner) error {
	if sg.Name == "" {
		return errors.New("etcd: signer name is empty")
	}
	rec := record.FromSigner(sg)
	value, err := encode(rec)
	if err != nil {
		return err
	}
	for {
		old, kv, err := s.getSigner(ctx, rec.ID)
		if err != nil {
			return err
		}
		guards := []guard{unchanged(kv)}
		then := []clientv3.Op{clientv3.OpPut(string(kv.Key), value)}
		g, ops := s.moveIndex(s.k.signerNames, "name", old.Name, rec.Name, rec.ID)
		guards, then = append(guards, g...), append(then, ops...)

		_, err = s.guarded(ctx, "update signer", guards, then...)
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// DeleteExtJWTSigner removes the signer, or returns store.ErrNotFound.
func (s *Store) DeleteExtJWTSigner(ctx context.Context, id string) error {
	for {
		rec, kv, err := s.getSigner(ctx, id)
		if err != nil {
			return err
		}
		_, err = s.guarded(ctx, "delete signer", []guard{unchanged(kv)},
			clientv3.OpDelete(s.k.signerNames+rec.Name), clientv3.OpDelete(string(kv.Key)))
		if !errors.Is(err, errRetry) {
			return err
		}
	}
}

// ListExtJWTSigners returns the signers at p in name order, and how many
// signers there are.
func (s *Store) ListExtJWTSigners(
	ctx context.Context,
	p store.Page,
) ([]*store.ExtJWTSigner, int, error) {
	records, total, err := s.pageRecords(ctx, "list signers", s.k.signerNames, p, s.k.signer)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*store.ExtJWTSigner, 0, len(records))
	for _, kv := range records {
		var rec signerRecord
		if err := decode(kv.Key, kv.Value, &rec); err != nil {
			return nil, 0, err
		}
		out = append(out, rec.Signer())
	}
	return out, total, nil
}

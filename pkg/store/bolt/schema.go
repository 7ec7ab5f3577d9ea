package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// The layout, version 1. Every bucket is top level. Records are JSON of the
// private structs in records.go; "a\x00b" is two ids joined by a NUL byte,
// which is why ids may not contain one; "ts" is the 12-byte order-preserving
// encoding of a time from timeKey.
//
//	meta                      schemaVersion -> uint32; eventsDropped -> uint64;
//	                          count/<kind> -> uint64 (records of that kind:
//	                          identities, authenticators, signers, sessions,
//	                          certificates)
//	identities                id -> identityRecord
//	identityNames             name -> id
//	identityExternalIDs       externalId -> id
//	identityAuthenticators    identityId\x00authenticatorId -> empty
//	identitySessions          identityId\x00sessionId -> empty
//	authenticators            id -> authenticatorRecord
//	authenticatorUsernames    username -> id
//	authenticatorFingerprints fingerprint -> id
//	signers                   id -> signerRecord
//	signerNames               name -> id
//	sessions                  id -> sessionRecord
//	sessionTokens             tokenHash (32 bytes) -> sessionId
//	sessionExpiry             ts(ExpiresAt) sessionId -> empty
//	certificates              sessionId\x00certificateId -> ts(ValidTo) certificateRecord
//	certificateFingerprints   sessionId\x00fingerprint -> sessionId\x00certificateId
//	certificateExpiry         ts(ValidTo) sessionId\x00certificateId -> empty
//	events                    cursor (uint64) -> eventRecord
//	health                    pings -> uint64 (Ping's writes; the bucket is
//	                          created on open when a file lacks it, since
//	                          version 1 files written before it exist)
//
// Integers are big-endian so that keys sort numerically. A certificate is
// keyed under its session, so a session's certificates are one contiguous
// range that its removal deletes in the same transaction. A certificate value
// starts with its ValidTo so that the live-certificate cap is checked without
// decoding JSON. The events bucket's sequence is the newest cursor ever
// given; eventsDropped is the newest cursor removed by trimming, so a cursor
// is expired exactly when it is below eventsDropped.
const schemaVersion = 1

var (
	bucketMeta                = []byte("meta")
	bucketIdentities          = []byte("identities")
	bucketIdentityNames       = []byte("identityNames")
	bucketIdentityExternalIDs = []byte("identityExternalIDs")
	bucketIdentityAuths       = []byte("identityAuthenticators")
	bucketIdentitySessions    = []byte("identitySessions")
	bucketAuthenticators      = []byte("authenticators")
	bucketAuthUsernames       = []byte("authenticatorUsernames")
	bucketAuthFingerprints    = []byte("authenticatorFingerprints")
	bucketSigners             = []byte("signers")
	bucketSignerNames         = []byte("signerNames")
	bucketSessions            = []byte("sessions")
	bucketSessionTokens       = []byte("sessionTokens")
	bucketSessionExpiry       = []byte("sessionExpiry")
	bucketCertificates        = []byte("certificates")
	bucketCertFingerprints    = []byte("certificateFingerprints")
	bucketCertExpiry          = []byte("certificateExpiry")
	bucketEvents              = []byte("events")
	bucketHealth              = []byte("health")

	allBuckets = [][]byte{
		bucketMeta,
		bucketIdentities, bucketIdentityNames, bucketIdentityExternalIDs,
		bucketIdentityAuths, bucketIdentitySessions,
		bucketAuthenticators, bucketAuthUsernames, bucketAuthFingerprints,
		bucketSigners, bucketSignerNames,
		bucketSessions, bucketSessionTokens, bucketSessionExpiry,
		bucketCertificates, bucketCertFingerprints, bucketCertExpiry,
		bucketEvents,
	}
)

// Keys of the meta bucket.
var (
	keySchemaVersion   = []byte("schemaVersion")
	keyEventsDropped   = []byte("eventsDropped")
	keyCountIdentities = []byte("count/identities")
	keyCountAuths      = []byte("count/authenticators")
	keyCountSigners    = []byte("count/signers")
	keyCountSessions   = []byte("count/sessions")
	keyCountCerts      = []byte("count/certificates")
)

// keyPings is the key of the health bucket that Ping rewrites.
var keyPings = []byte("pings")

// errCorrupt is wrapped by errors about values this package did not write
// as found; it means the file was damaged or edited by hand.
var errCorrupt = errors.New("bolt: corrupt value")

// prepare creates the layout in a new file, or checks that an existing file
// has the layout this build writes.
func prepare(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bbolt.Bucket) error {
			empty = false
			return nil
		})
		if !empty {
			return ErrNotStore
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("bolt: create bucket %s: %w", name, err)
			}
		}
		meta = tx.Bucket(bucketMeta)
		if err := put(meta, keyCountCerts, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			return err
		}
		v := binary.BigEndian.AppendUint32(nil, schemaVersion)
		if err := put(meta, keySchemaVersion, v); err != nil {
			return err
		}
		return ensureHealthBucket(tx)
	}

	v := meta.Get(keySchemaVersion)
	if len(v) != 4 {
		return fmt.Errorf("%w: schema version record is malformed", ErrNotStore)
	}
	if got := binary.BigEndian.Uint32(v); got != schemaVersion {
		return fmt.Errorf("%w: file has version %d, this build reads version %d",
			ErrSchemaVersion, got, schemaVersion)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bolt: bucket %s is missing from a version %d file",
				name, schemaVersion)
		}
	}
	if err := ensureHealthBucket(tx); err != nil {
		return err
	}
	return countCertificatesOnce(tx)
}

// ensureHealthBucket creates the bucket Ping writes to when the file lacks
// it. It is not in allBuckets: a version 1 file written before it existed
// is still a complete version 1 file, and a build before it ignores it.
func ensureHealthBucket(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketHealth); err != nil {
		return fmt.Errorf("bolt: create bucket %s: %w", bucketHealth, err)
	}
	return nil
}

// countCertificatesOnce gives a file written before the certificate count
// existed its count, from the expiry index, which holds one short key per
// certificate. It runs once: afterwards every write keeps the count.
func countCertificatesOnce(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyCountCerts) != nil {
		return nil
	}
	var n uint64
	c := tx.Bucket(bucketCertExpiry).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return put(meta, keyCountCerts, binary.BigEndian.AppendUint64(nil, n))
}

// checkID refuses ids that cannot be used in keys: empty ones, and ones with
// a NUL byte, which joins ids in composite keys.
func checkID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("bolt: %s id is empty", kind)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("bolt: %s id %q contains a NUL byte", kind, id)
	}
	return nil
}

// join builds the composite key parent\x00child.
func join(parent, child string) []byte {
	k := make([]byte, 0, len(parent)+1+len(child))
	k = append(k, parent...)
	k = append(k, 0)
	return append(k, child...)
}

// prefix is the first key of every composite key under parent.
func prefix(parent string) []byte { return join(parent, "") }

// splitKey splits a composite key into its parent and child ids.
func splitKey(k []byte) (parent, child string) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), string(k[i+1:])
}

// timeKeyLen is the length of timeKey's encoding.
const timeKeyLen = 12

// timeKey encodes t so that byte order is time order over the whole range
// of time.Time, not only the years UnixNano can hold: seconds since the Unix
// epoch with the sign bit flipped, then nanoseconds.
func timeKey(t time.Time) []byte {
	k := make([]byte, timeKeyLen)
	// Reinterpreting the bits is the point: with the sign bit flipped,
	// negative seconds sort before positive ones as unsigned integers.
	sec := uint64(t.Unix()) ^ (1 << 63) //nolint:gosec // G115: intended, see above
	binary.BigEndian.PutUint64(k, sec)
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond())) //nolint:gosec // G115: < 1e9
	return k
}

// cursorKey encodes an event cursor.
func cursorKey(c uint64) []byte { return binary.BigEndian.AppendUint64(nil, c) }

// readUint64 returns the big-endian integer stored at key, or 0.
func readUint64(b *bbolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// countUp adds one to the record count kept at key in the meta bucket; the
// counts let lists report their total without walking the whole bucket.
func countUp(tx *bbolt.Tx, key []byte) error {
	meta := tx.Bucket(bucketMeta)
	return put(meta, key, binary.BigEndian.AppendUint64(nil, readUint64(meta, key)+1))
}

// countDown takes one from the record count kept at key.
func countDown(tx *bbolt.Tx, key []byte) error {
	meta := tx.Bucket(bucketMeta)
	n := readUint64(meta, key)
	if n == 0 {
		return fmt.Errorf("%w: count %s would go below zero", errCorrupt, key)
	}
	return put(meta, key, binary.BigEndian.AppendUint64(nil, n-1))
}

// count reads a record count kept by countUp and countDown.
func count(tx *bbolt.Tx, key []byte) int {
	n := readUint64(tx.Bucket(bucketMeta), key)
	if n > math.MaxInt32 {
		// A count this large is corruption, and int is what the interface
		// returns; clamp rather than wrap.
		return math.MaxInt32
	}
	return int(n)
}

// put stores value at key. bbolt keeps a reference to value until the
// transaction ends, so callers pass a slice they will not change again.
func put(b *bbolt.Bucket, key, value []byte) error {
	if err := b.Put(key, value); err != nil {
		return fmt.Errorf("bolt: put: %w", err)
	}
	return nil
}

// del removes key.
func del(b *bbolt.Bucket, key []byte) error {
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("bolt: delete: %w", err)
	}
	return nil
}

// putJSON stores v as JSON at key.
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bolt: encode: %w", err)
	}
	return put(b, key, data)
}

// getJSON decodes the JSON at key into v and reports whether key exists.
func getJSON(b *bbolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, decodeJSON(key, data, v)
}

// decodeJSON decodes the value stored at key into v.
func decodeJSON(key, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %q: %w", errCorrupt, key, err)
	}
	return nil
}

// keysWithPrefix returns copies of the keys of b that start with p, in
// order. Deleting while a bbolt cursor walks the same bucket can skip keys,
// so removals collect first and delete afterwards.
func keysWithPrefix(b *bbolt.Bucket, p []byte) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

// claim makes key in the unique index b point at owner, or returns a
// *store.ConflictError naming field when another owner holds it.
func claim(b *bbolt.Bucket, field, key, owner string) error {
	if cur := b.Get([]byte(key)); cur != nil && string(cur) != owner {
		return &store.ConflictError{Field: field, Value: key}
	}
	return put(b, []byte(key), []byte(owner))
}

// reclaim moves owner's entry in the unique index b from old to key; an
// empty key means no entry, for optional fields.
func reclaim(b *bbolt.Bucket, field, old, key, owner string) error {
	if key == old {
		return nil
	}
	if key != "" {
		if err := claim(b, field, key, owner); err != nil {
			return err
		}
	}
	if old != "" {
		return del(b, []byte(old))
	}
	return nil
}

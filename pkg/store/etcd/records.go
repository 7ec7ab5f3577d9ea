package etcd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// The values are JSON of the records of package record, mapped field by
// field from and to the public types, so that changing a public struct
// cannot change what is in etcd unnoticed, and of the records below, which
// only this backend keeps. Times are kept in UTC with their nanoseconds
// (RFC 3339 in JSON): a time read back equals the time written.

// errCorrupt is wrapped by errors about values this package did not write
// as found: edited by hand, or by a different program on the same prefix.
var errCorrupt = errors.New("etcd: corrupt value")

// encode marshals a record. The records hold only strings, booleans,
// numbers and times, so it fails only on a time outside years 0 to 9999.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("etcd: encode: %w", err)
	}
	return string(b), nil
}

// decode unmarshals the value stored at key into v.
func decode(key, value []byte, v any) error {
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("%w: %q: %w", errCorrupt, key, err)
	}
	return nil
}

// The records etcd shares with the other backends are in package record;
// this package names them after what they record.
type (
	identityRecord      = record.Identity
	authenticatorRecord = record.Authenticator
	signerRecord        = record.Signer
	certificateRecord   = record.Certificate

	// sessionRecord keeps the token hash as a hex string.
	sessionRecord = record.Session[string]
)

func fromSession(s *store.APISession) *sessionRecord {
	return record.FromSession(s, hex.EncodeToString(s.TokenHash[:]))
}

// tokenHash decodes the token hash of r; a malformed one is corruption.
func tokenHash(r *sessionRecord) (store.TokenHash, error) {
	var h store.TokenHash
	b, err := hex.DecodeString(r.TokenHash)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%w: token hash of session %q", errCorrupt, r.ID)
	}
	copy(h[:], b)
	return h, nil
}

// sessionOf returns the session that r records, or an error wrapping
// errCorrupt if its token hash is malformed.
func sessionOf(r *sessionRecord) (*store.APISession, error) {
	h, err := tokenHash(r)
	if err != nil {
		return nil, err
	}
	return r.Session(h), nil
}

// certIDValue is what cert-ids/<session>/<id> holds: the certificate's
// ValidTo and its fingerprint, all the cap check and a lookup by id need.
func certIDValue(validTo time.Time, fingerprint string) string {
	return timeKey(validTo) + "/" + fingerprint
}

// parseCertIDValue reverses certIDValue.
func parseCertIDValue(key, v []byte) (validTo time.Time, fingerprint string, err error) {
	s := string(v)
	if len(s) < timeKeyLen+2 || s[timeKeyLen] != '/' {
		return time.Time{}, "", fmt.Errorf("%w: certificate id entry %q", errCorrupt, key)
	}
	validTo, err = parseTimeKey(s[:timeKeyLen])
	return validTo, s[timeKeyLen+1:], err
}

// causeRecord is the value of live/cause: why the records deleted in the
// same revision were removed. Quiet marks removals that are no event
// (certificates past their ValidTo).
type causeRecord struct {
	Cause      string    `json:"cause,omitempty"`
	At         time.Time `json:"at"`
	IdentityID string    `json:"identityId,omitempty"`
	Quiet      bool      `json:"quiet,omitempty"`
}

package bolt

import (
	"bytes"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/internal/record"
)

// The records below are what the file holds. Those the backends share are
// in package record, mapped field by field from and to the public types, so
// that a change to a public struct cannot change the file format unnoticed.
// The names here keep the schema in schema.go readable.
type (
	identityRecord      = record.Identity
	authenticatorRecord = record.Authenticator
	signerRecord        = record.Signer
	certificateRecord   = record.Certificate

	// sessionRecord keeps the token hash as bytes, base64 in JSON.
	sessionRecord = record.Session[[]byte]
)

func sessionToRecord(s *store.APISession) *sessionRecord {
	return record.FromSession(s, bytes.Clone(s.TokenHash[:]))
}

// sessionOf returns the session that r records. A stored hash of the wrong
// length is copied as far as it goes, as this file has always read it.
func sessionOf(r *sessionRecord) *store.APISession {
	var h store.TokenHash
	copy(h[:], r.TokenHash)
	return r.Session(h)
}

// eventRecord is an event without its cursor, which is its key. Only this
// backend keeps events as records, so it is not in package record. Times
// are kept in UTC with their nanoseconds, as in package record.
type eventRecord struct {
	Type         string    `json:"type"`
	APISessionID string    `json:"apiSessionId"`
	IdentityID   string    `json:"identityId,omitempty"`
	Fingerprints []string  `json:"fingerprints,omitempty"`
	Cause        string    `json:"cause"`
	At           time.Time `json:"at"`
}

func eventToRecord(e *store.Event) *eventRecord {
	return &eventRecord{
		Type:         string(e.Type),
		APISessionID: e.APISessionID,
		IdentityID:   e.IdentityID,
		Fingerprints: append([]string(nil), e.Fingerprints...),
		Cause:        string(e.Cause),
		At:           e.At.UTC(),
	}
}

func (r *eventRecord) event(cursor uint64) store.Event {
	return store.Event{
		Cursor:       cursor,
		Type:         store.EventType(r.Type),
		APISessionID: r.APISessionID,
		IdentityID:   r.IdentityID,
		Fingerprints: append([]string(nil), r.Fingerprints...),
		Cause:        store.Cause(r.Cause),
		At:           r.At,
	}
}

package bolt

import (
	"bytes"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// The records below are what the file holds. They are mapped field by field
// from and to the public types, so that a change to a public struct cannot
// change the file format unnoticed. Times are stored in UTC with their
// nanoseconds (RFC 3339 in JSON); a time read back equals the time written.

type identityRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	IsAdmin    bool      `json:"isAdmin,omitempty"`
	ExternalID string    `json:"externalId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

func identityToRecord(i *store.Identity) *identityRecord {
	return &identityRecord{
		ID:         i.ID,
		Name:       i.Name,
		Type:       string(i.Type),
		IsAdmin:    i.IsAdmin,
		ExternalID: i.ExternalID,
		CreatedAt:  i.CreatedAt.UTC(),
		UpdatedAt:  i.UpdatedAt.UTC(),
	}
}

func (r *identityRecord) identity() *store.Identity {
	return &store.Identity{
		ID:         r.ID,
		Name:       r.Name,
		Type:       store.IdentityType(r.Type),
		IsAdmin:    r.IsAdmin,
		ExternalID: r.ExternalID,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
	}
}

type authenticatorRecord struct {
	ID           string    `json:"id"`
	IdentityID   string    `json:"identityId"`
	Method       string    `json:"method"`
	Username     string    `json:"username,omitempty"`
	PasswordHash string    `json:"passwordHash,omitempty"`
	CertPEM      string    `json:"certPem,omitempty"`
	Fingerprint  string    `json:"fingerprint,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

func authenticatorToRecord(a *store.Authenticator) *authenticatorRecord {
	return &authenticatorRecord{
		ID:           a.ID,
		IdentityID:   a.IdentityID,
		Method:       string(a.Method),
		Username:     a.Username,
		PasswordHash: a.PasswordHash,
		CertPEM:      a.CertPEM,
		Fingerprint:  a.Fingerprint,
		CreatedAt:    a.CreatedAt.UTC(),
		UpdatedAt:    a.UpdatedAt.UTC(),
	}
}

func (r *authenticatorRecord) authenticator() *store.Authenticator {
	return &store.Authenticator{
		ID:           r.ID,
		IdentityID:   r.IdentityID,
		Method:       store.AuthMethod(r.Method),
		Username:     r.Username,
		PasswordHash: r.PasswordHash,
		CertPEM:      r.CertPEM,
		Fingerprint:  r.Fingerprint,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}
}

type signerRecord struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Issuer         string    `json:"issuer,omitempty"`
	Audience       string    `json:"audience,omitempty"`
	JWKSEndpoint   string    `json:"jwksEndpoint,omitempty"`
	CertPEM        string    `json:"certPem,omitempty"`
	ClaimsProperty string    `json:"claimsProperty,omitempty"`
	UseExternalID  bool      `json:"useExternalId,omitempty"`
	Enabled        bool      `json:"enabled,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

func signerToRecord(s *store.ExtJWTSigner) *signerRecord {
	return &signerRecord{
		ID:             s.ID,
		Name:           s.Name,
		Issuer:         s.Issuer,
		Audience:       s.Audience,
		JWKSEndpoint:   s.JWKSEndpoint,
		CertPEM:        s.CertPEM,
		ClaimsProperty: s.ClaimsProperty,
		UseExternalID:  s.UseExternalID,
		Enabled:        s.Enabled,
		CreatedAt:      s.CreatedAt.UTC(),
		UpdatedAt:      s.UpdatedAt.UTC(),
	}
}

func (r *signerRecord) signer() *store.ExtJWTSigner {
	return &store.ExtJWTSigner{
		ID:             r.ID,
		Name:           r.Name,
		Issuer:         r.Issuer,
		Audience:       r.Audience,
		JWKSEndpoint:   r.JWKSEndpoint,
		CertPEM:        r.CertPEM,
		ClaimsProperty: r.ClaimsProperty,
		UseExternalID:  r.UseExternalID,
		Enabled:        r.Enabled,
		CreatedAt:      r.CreatedAt,
		UpdatedAt:      r.UpdatedAt,
	}
}

type sessionRecord struct {
	ID              string    `json:"id"`
	TokenHash       []byte    `json:"tokenHash"`
	IdentityID      string    `json:"identityId"`
	AuthenticatorID string    `json:"authenticatorId,omitempty"`
	AuthMethod      string    `json:"authMethod,omitempty"`
	IPAddress       string    `json:"ipAddress,omitempty"`
	ConfigTypes     []string  `json:"configTypes,omitempty"`
	TimeoutNanos    int64     `json:"timeoutNanos"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
	LastActivityAt  time.Time `json:"lastActivityAt"`
	ExpiresAt       time.Time `json:"expiresAt"`
}

func sessionToRecord(s *store.APISession) *sessionRecord {
	return &sessionRecord{
		ID:              s.ID,
		TokenHash:       bytes.Clone(s.TokenHash[:]),
		IdentityID:      s.IdentityID,
		AuthenticatorID: s.AuthenticatorID,
		AuthMethod:      s.AuthMethod,
		IPAddress:       s.IPAddress,
		ConfigTypes:     append([]string(nil), s.ConfigTypes...),
		TimeoutNanos:    int64(s.Timeout),
		CreatedAt:       s.CreatedAt.UTC(),
		UpdatedAt:       s.UpdatedAt.UTC(),
		LastActivityAt:  s.LastActivityAt.UTC(),
		ExpiresAt:       s.ExpiresAt.UTC(),
	}
}

func (r *sessionRecord) session() *store.APISession {
	s := &store.APISession{
		ID:              r.ID,
		IdentityID:      r.IdentityID,
		AuthenticatorID: r.AuthenticatorID,
		AuthMethod:      r.AuthMethod,
		IPAddress:       r.IPAddress,
		ConfigTypes:     append([]string(nil), r.ConfigTypes...),
		Timeout:         time.Duration(r.TimeoutNanos),
		CreatedAt:       r.CreatedAt,
		UpdatedAt:       r.UpdatedAt,
		LastActivityAt:  r.LastActivityAt,
		ExpiresAt:       r.ExpiresAt,
	}
	copy(s.TokenHash[:], r.TokenHash)
	return s
}

type certificateRecord struct {
	ID           string    `json:"id"`
	APISessionID string    `json:"apiSessionId"`
	IdentityID   string    `json:"identityId,omitempty"`
	Fingerprint  string    `json:"fingerprint"`
	Subject      string    `json:"subject,omitempty"`
	Serial       string    `json:"serial,omitempty"`
	ChainPEM     string    `json:"chainPem,omitempty"`
	ValidFrom    time.Time `json:"validFrom"`
	ValidTo      time.Time `json:"validTo"`
	CreatedAt    time.Time `json:"createdAt"`
}

// certificateToRecord maps c into a record of the session sessionID, which
// the caller has checked c may name.
func certificateToRecord(c *store.Certificate, sessionID string) *certificateRecord {
	return &certificateRecord{
		ID:           c.ID,
		APISessionID: sessionID,
		IdentityID:   c.IdentityID,
		Fingerprint:  c.Fingerprint,
		Subject:      c.Subject,
		Serial:       c.Serial,
		ChainPEM:     c.ChainPEM,
		ValidFrom:    c.ValidFrom.UTC(),
		ValidTo:      c.ValidTo.UTC(),
		CreatedAt:    c.CreatedAt.UTC(),
	}
}

func (r *certificateRecord) certificate() *store.Certificate {
	return &store.Certificate{
		ID:           r.ID,
		APISessionID: r.APISessionID,
		IdentityID:   r.IdentityID,
		Fingerprint:  r.Fingerprint,
		Subject:      r.Subject,
		Serial:       r.Serial,
		ChainPEM:     r.ChainPEM,
		ValidFrom:    r.ValidFrom,
		ValidTo:      r.ValidTo,
		CreatedAt:    r.CreatedAt,
	}
}

// eventRecord is an event without its cursor, which is its key.
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

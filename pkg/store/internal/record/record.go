// Package record holds the JSON records that the store backends write for
// the public types of package store, and the mappings between the two.
//
// The mapping is field by field so that a change to a public struct cannot
// change what a backend stores unnoticed. The JSON field names, their order
// and their encodings are a stored format: values written by earlier
// releases are read back through these structs, so they must not change.
// Times are kept in UTC with their nanoseconds (RFC 3339 in JSON): a time
// read back equals the time written.
//
// What the backends store differently on purpose stays in the backends:
// the encoding of a session's token hash (see [Session]), the framing of a
// value around its record, and events, which only some backends keep as
// records.
package record

import (
	"slices"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Identity is the stored form of a [store.Identity].
type Identity struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	IsAdmin    bool      `json:"isAdmin,omitempty"`
	ExternalID string    `json:"externalId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// FromIdentity returns the record of i, with its times in UTC.
func FromIdentity(i *store.Identity) *Identity {
	return &Identity{
		ID:         i.ID,
		Name:       i.Name,
		Type:       string(i.Type),
		IsAdmin:    i.IsAdmin,
		ExternalID: i.ExternalID,
		CreatedAt:  i.CreatedAt.UTC(),
		UpdatedAt:  i.UpdatedAt.UTC(),
	}
}

// Identity returns the identity that r records.
func (r *Identity) Identity() *store.Identity {
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

// Authenticator is the stored form of a [store.Authenticator].
type Authenticator struct {
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

// FromAuthenticator returns the record of a, with its times in UTC.
func FromAuthenticator(a *store.Authenticator) *Authenticator {
	return &Authenticator{
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

// Authenticator returns the authenticator that r records.
func (r *Authenticator) Authenticator() *store.Authenticator {
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

// Signer is the stored form of a [store.ExtJWTSigner].
type Signer struct {
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

// FromSigner returns the record of s, with its times in UTC.
func FromSigner(s *store.ExtJWTSigner) *Signer {
	return &Signer{
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

// Signer returns the signer that r records.
func (r *Signer) Signer() *store.ExtJWTSigner {
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

// Session is the stored form of a [store.APISession]. H is how the backend
// encodes the token hash, which the backends do differently: bolt stores
// the bytes (base64 in JSON), etcd a hex string. The conversion between
// H and [store.TokenHash], and what a malformed stored hash means, belong
// to the backend; the hash sits in the record where the format puts it.
type Session[H []byte | string] struct {
	ID              string    `json:"id"`
	TokenHash       H         `json:"tokenHash"`
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

// FromSession returns the record of s, with its times in UTC and hash,
// the backend's encoding of s.TokenHash, as its token hash.
func FromSession[H []byte | string](s *store.APISession, hash H) *Session[H] {
	return &Session[H]{
		ID:              s.ID,
		TokenHash:       hash,
		IdentityID:      s.IdentityID,
		AuthenticatorID: s.AuthenticatorID,
		AuthMethod:      s.AuthMethod,
		IPAddress:       s.IPAddress,
		ConfigTypes:     slices.Clone(s.ConfigTypes),
		TimeoutNanos:    int64(s.Timeout),
		CreatedAt:       s.CreatedAt.UTC(),
		UpdatedAt:       s.UpdatedAt.UTC(),
		LastActivityAt:  s.LastActivityAt.UTC(),
		ExpiresAt:       s.ExpiresAt.UTC(),
	}
}

// Session returns the session that r records, with hash, the backend's
// decoding of r.TokenHash, as its token hash.
func (r *Session[H]) Session(hash store.TokenHash) *store.APISession {
	return &store.APISession{
		ID:              r.ID,
		TokenHash:       hash,
		IdentityID:      r.IdentityID,
		AuthenticatorID: r.AuthenticatorID,
		AuthMethod:      r.AuthMethod,
		IPAddress:       r.IPAddress,
		ConfigTypes:     slices.Clone(r.ConfigTypes),
		Timeout:         time.Duration(r.TimeoutNanos),
		CreatedAt:       r.CreatedAt,
		UpdatedAt:       r.UpdatedAt,
		LastActivityAt:  r.LastActivityAt,
		ExpiresAt:       r.ExpiresAt,
	}
}

// Certificate is the stored form of a [store.Certificate].
type Certificate struct {
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

// FromCertificate returns the record of c as a certificate of the session
// sessionID, with its times in UTC. The caller has checked that c may name
// that session: c.APISessionID is not consulted.
func FromCertificate(c *store.Certificate, sessionID string) *Certificate {
	return &Certificate{
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

// Certificate returns the certificate that r records.
func (r *Certificate) Certificate() *store.Certificate {
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

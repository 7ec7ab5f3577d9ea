package etcd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// The values are JSON of the private records below, mapped field by field
// from and to the public types, so that changing a public struct cannot
// change what is in etcd unnoticed. Times are kept in UTC with their
// nanoseconds (RFC 3339 in JSON): a time read back equals the time written.

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

type identityRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	IsAdmin    bool      `json:"isAdmin,omitempty"`
	ExternalID string    `json:"externalId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

func fromIdentity(i *store.Identity) *identityRecord {
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

func fromAuthenticator(a *store.Authenticator) *authenticatorRecord {
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

func fromSigner(s *store.ExtJWTSigner) *signerRecord {
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
	TokenHash       string    `json:"tokenHash"` // hex
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

func fromSession(s *store.APISession) *sessionRecord {
	return &sessionRecord{
		ID:              s.ID,
		TokenHash:       hex.EncodeToString(s.TokenHash[:]),
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

// tokenHash decodes the record's token hash; a malformed one is corruption.
func (r *sessionRecord) tokenHash() (store.TokenHash, error) {
	var h store.TokenHash
	b, err := hex.DecodeString(r.TokenHash)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%w: token hash of session %q", errCorrupt, r.ID)
	}
	copy(h[:], b)
	return h, nil
}

func (r *sessionRecord) session() (*store.APISession, error) {
	h, err := r.tokenHash()
	if err != nil {
		return nil, err
	}
	return &store.APISession{
		ID:              r.ID,
		TokenHash:       h,
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
	}, nil
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

// fromCertificate maps c into a record of the session sessionID, which the
// caller has checked c may name.
func fromCertificate(c *store.Certificate, sessionID string) *certificateRecord {
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

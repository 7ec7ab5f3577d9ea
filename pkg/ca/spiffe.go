package ca

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxIDLength is the longest identity, API session or certificate id, in
// bytes, that SessionCertID accepts. The identity id becomes the subject's
// common name, whose upper bound in X.520 is 64 characters.
const MaxIDLength = 64

// Path segments that name the parts of a session certificate id.
const (
	segIdentity    = "identity"
	segAPISession  = "apiSession"
	segSessionCert = "apiSessionCertificate"
)

// ErrInvalidID is returned by SessionCertID, ParseSessionCertID and Sign when
// an id cannot be, or is not, part of a session certificate SPIFFE id.
var ErrInvalidID = errors.New("ca: invalid session certificate id")

// SessionCertID returns the SPIFFE id of an API Session Certificate:
//
//	spiffe://<td>/identity/<identityID>/apiSession/<apiSessionID>/apiSessionCertificate/<certID>
//
// Each id must be a valid SPIFFE path segment (letters, digits, '.', '-',
// '_'; not "." or "..") of 1 to MaxIDLength bytes, and td must not be zero;
// otherwise it returns ErrInvalidID naming the offending part.
func SessionCertID(
	td spiffeid.TrustDomain,
	identityID, apiSessionID, certID string,
) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, fmt.Errorf("%w: no trust domain", ErrInvalidID)
	}
	parts := [...]struct{ name, value string }{
		{"identity id", identityID},
		{"api session id", apiSessionID},
		{"certificate id", certID},
	}
	for _, p := range parts {
		if err := checkIDSegment(p.value); err != nil {
			return spiffeid.ID{}, fmt.Errorf("%w: %s: %w", ErrInvalidID, p.name, err)
		}
	}
	id, err := spiffeid.FromSegments(td,
		segIdentity, identityID,
		segAPISession, apiSessionID,
		segSessionCert, certID)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	return id, nil
}

// checkIDSegment checks one id for use as a path segment.
func checkIDSegment(s string) error {
	if len(s) > MaxIDLength {
		return fmt.Errorf("longer than %d bytes", MaxIDLength)
	}
	return spiffeid.ValidatePathSegment(s)
}

// ParseSessionCertID splits the SPIFFE id of an API Session Certificate, as
// built by SessionCertID, into its three ids. It accepts any trust domain:
// callers check it, for instance with spiffeid.ID.MemberOf, or rely on the
// certificate having verified against this CA. It returns ErrInvalidID when u
// is nil, is not a valid SPIFFE id, or does not have the session certificate
// path.
func ParseSessionCertID(u *url.URL) (identityID, apiSessionID, certID string, err error) {
	if u == nil {
		return "", "", "", fmt.Errorf("%w: no uri", ErrInvalidID)
	}
	id, err := spiffeid.FromURI(u)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: %w", ErrInvalidID, err)
	}

	seg := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(seg) != 6 ||
		seg[0] != segIdentity || seg[2] != segAPISession || seg[4] != segSessionCert {
		return "", "", "", fmt.Errorf("%w: not a session certificate path", ErrInvalidID)
	}
	for _, s := range [...]string{seg[1], seg[3], seg[5]} {
		if err := checkIDSegment(s); err != nil {
			return "", "", "", fmt.Errorf("%w: %w", ErrInvalidID, err)
		}
	}
	return seg[1], seg[3], seg[5], nil
}

// Package store defines what sessioncert keeps durably: identities and their
// authenticators, external JWT signers, API sessions with their expiry, the
// certificates issued to each session, and an ordered stream of removal
// events that edge routers follow.
//
// The interface is deliberately narrow so that an embedded backend (bolt) and
// a clustered one (etcd) can both implement it with the same guarantees:
//
//   - A session's certificates are stored under it and removed with it, in the
//     same transaction (or lease), together with one removal event.
//   - Every removal of a session or of a certificate appends exactly one event
//     whose cursor is greater than every earlier cursor.
//   - Methods that filter by time take the time as an argument; a Store never
//     reads a clock, so callers (and tests) decide what "now" is.
//
// Implementations must be safe for concurrent use. The conformance suite in
// package storetest checks these guarantees against any backend.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// Errors returned by Store methods. Backends wrap them with %w; callers match
// them with errors.Is.
var (
	// ErrNotFound is returned when the record asked for does not exist, or
	// exists but not under the parent that was named (a certificate of
	// another session, for example).
	ErrNotFound = errors.New("store: not found")

	// ErrConflict is matched by every *ConflictError.
	ErrConflict = errors.New("store: conflict")

	// ErrLimitReached is returned by CreateCertificate when the session
	// already holds the maximum number of live certificates.
	ErrLimitReached = errors.New("store: limit reached")

	// ErrCursorExpired is returned by Events and WaitEvents when the cursor
	// is older than the retained history: the caller must start again from
	// the current cursor.
	ErrCursorExpired = errors.New("store: cursor expired")

	// ErrUnavailable is returned when the backend cannot be reached or has
	// lost quorum; the request may be retried.
	ErrUnavailable = errors.New("store: unavailable")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
)

// ConflictError reports that a unique field already holds the value.
type ConflictError struct {
	Field string // wire name of the field, e.g. "name" or "username"
	Value string
}

// Error names the field and the value.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: %s %q already exists", e.Field, e.Value)
}

// Is makes errors.Is(err, ErrConflict) true for every ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// IdentityType says what kind of principal an identity is.
type IdentityType string

// Identity types.
const (
	IdentityTypeUser   IdentityType = "User"
	IdentityTypeRouter IdentityType = "Router"
)

// Identity is a principal that may log in.
type Identity struct {
	ID         string
	Name       string // unique
	Type       IdentityType
	IsAdmin    bool
	ExternalID string // optional; unique when set; used by ext-jwt mapping
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// AuthMethod names the kind of an authenticator.
type AuthMethod string

// Authenticator methods.
const (
	AuthMethodPassword AuthMethod = "updb"
	AuthMethodCert     AuthMethod = "cert"
)

// Authenticator is a credential of an identity: a username with a password
// hash, or a client certificate known by its fingerprint.
type Authenticator struct {
	ID           string
	IdentityID   string
	Method       AuthMethod
	Username     string // updb only; unique
	PasswordHash string // updb only; an encoded argon2id hash, never the password
	CertPEM      string // cert only
	Fingerprint  string // cert only; lower-case hex SHA-1 of the DER; unique
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ExtJWTSigner is an external issuer whose JWTs are accepted for login.
type ExtJWTSigner struct {
	ID             string
	Name           string // unique
	Issuer         string
	Audience       string
	JWKSEndpoint   string // either this or CertPEM
	CertPEM        string // a certificate or a public key, PEM
	ClaimsProperty string // claim that names the identity, "sub" by default
	UseExternalID  bool   // map the claim to Identity.ExternalID instead of ID
	Enabled        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TokenHash is the SHA-256 of a session token. Tokens themselves are never
// stored.
type TokenHash [sha256.Size]byte

// APISession is a logged-in session of an identity.
type APISession struct {
	ID              string
	TokenHash       TokenHash // unique
	IdentityID      string
	AuthenticatorID string
	AuthMethod      string // "password", "cert" or "ext-jwt"
	IPAddress       string
	ConfigTypes     []string
	Timeout         time.Duration // idle timeout; ExpiresAt = LastActivityAt + Timeout
	CreatedAt       time.Time
	UpdatedAt       time.Time
	LastActivityAt  time.Time
	ExpiresAt       time.Time
}

// Certificate is an API session certificate: issued by our CA to a session,
// or the client certificate a session logged in with.
type Certificate struct {
	ID           string
	APISessionID string
	IdentityID   string
	Fingerprint  string // lower-case hex SHA-1 of the leaf DER; unique within its session
	Subject      string // e.g. "CN=<identityId>"
	Serial       string // hex
	ChainPEM     string // leaf followed by intermediates
	ValidFrom    time.Time
	ValidTo      time.Time
	CreatedAt    time.Time
}

// EventType says what a removal event removed.
type EventType string

// Event types.
const (
	EventAPISessionRemoved  EventType = "apiSessionRemoved"
	EventCertificateDeleted EventType = "certificateDeleted"
)

// Cause says why a session or certificate was removed.
type Cause string

// Removal causes.
const (
	CauseLogout  Cause = "logout"  // the session deleted itself
	CauseExpiry  Cause = "expiry"  // the idle timeout passed
	CauseAdmin   Cause = "admin"   // an administrator deleted the session or its identity
	CauseDeleted Cause = "deleted" // the session deleted one of its certificates
)

// Event records the removal of a session (with all its certificates) or of
// one certificate. Fingerprints lists every certificate that stopped being
// valid with it.
type Event struct {
	Cursor       uint64
	Type         EventType
	APISessionID string
	IdentityID   string
	Fingerprints []string
	Cause        Cause
	At           time.Time
}

// Page selects a window of a list. Limit must be positive.
type Page struct {
	Offset int
	Limit  int
}

// Touch is a coalesced activity update of one session.
type Touch struct {
	APISessionID   string
	LastActivityAt time.Time
	ExpiresAt      time.Time
}

// Store is everything sessioncert persists. See the package comment for the
// guarantees every implementation gives.
type Store interface {
	IdentityStore
	AuthenticatorStore
	ExtJWTSignerStore
	SessionStore
	CertificateStore
	EventStore

	// Ping makes one real round trip to the backend, for the health check:
	// bolt commits a small write, so that a disk that cannot take one
	// fails it; etcd reads through the cluster's quorum.
	Ping(ctx context.Context) error

	// Close releases the backend. Later calls return ErrClosed.
	Close() error
}

// IdentityStore keeps identities.
type IdentityStore interface {
	// CreateIdentity stores a new identity together with its first
	// authenticators, if any, in one transaction: all of them or none. A
	// taken name or external id returns a *ConflictError naming "name" or
	// "externalId", a taken username or fingerprint one naming "username"
	// or "fingerprint". Every authenticator must name the identity in its
	// IdentityID.
	CreateIdentity(ctx context.Context, id *Identity, auths ...*Authenticator) error

	// GetIdentity returns the identity or ErrNotFound.
	GetIdentity(ctx context.Context, id string) (*Identity, error)

	// FindIdentityByName returns the identity with that name or ErrNotFound.
	FindIdentityByName(ctx context.Context, name string) (*Identity, error)

	// FindIdentityByExternalID returns the identity with that external id
	// or ErrNotFound.
	FindIdentityByExternalID(ctx context.Context, externalID string) (*Identity, error)

	// UpdateIdentity replaces a stored identity (matched by ID), keeping
	// names unique as CreateIdentity does. ErrNotFound if it is gone.
	UpdateIdentity(ctx context.Context, id *Identity) error

	// DeleteIdentity removes the identity with its authenticators, its
	// sessions and their certificates in one transaction, and returns one
	// apiSessionRemoved event (cause admin) per session removed.
	DeleteIdentity(ctx context.Context, id string, at time.Time) ([]Event, error)

	// ListIdentities returns a page of identities ordered by name, and the
	// total count.
	ListIdentities(ctx context.Context, p Page) ([]*Identity, int, error)

	// CountIdentities returns how many identities exist.
	CountIdentities(ctx context.Context) (int, error)
}

// AuthenticatorStore keeps the credentials of identities.
type AuthenticatorStore interface {
	// CreateAuthenticator stores a credential. ErrNotFound if the identity
	// does not exist; *ConflictError on a taken "username" or
	// "fingerprint".
	CreateAuthenticator(ctx context.Context, a *Authenticator) error

	// GetAuthenticator returns the authenticator or ErrNotFound.
	GetAuthenticator(ctx context.Context, id string) (*Authenticator, error)

	// FindAuthenticatorByUsername returns the updb authenticator with that
	// username or ErrNotFound.
	FindAuthenticatorByUsername(ctx context.Context, username string) (*Authenticator, error)

	// FindAuthenticatorByFingerprint returns the cert authenticator with that
	// fingerprint or ErrNotFound.
	FindAuthenticatorByFingerprint(ctx context.Context, fingerprint string) (*Authenticator, error)

	// UpdateAuthenticator replaces a stored authenticator (matched by ID),
	// keeping usernames unique. ErrNotFound if it is gone.
	UpdateAuthenticator(ctx context.Context, a *Authenticator) error

	// DeleteAuthenticator removes it and ends the sessions it created (those
	// whose AuthenticatorID is id), each with its certificates, and returns
	// one apiSessionRemoved event (cause admin, stamped at) per session
	// ended. ErrNotFound if it does not exist.
	DeleteAuthenticator(ctx context.Context, id string, at time.Time) ([]Event, error)

	// ListAuthenticators returns a page ordered by id, and the total count.
	ListAuthenticators(ctx context.Context, p Page) ([]*Authenticator, int, error)
}

// ExtJWTSignerStore keeps external JWT signers.
type ExtJWTSignerStore interface {
	// CreateExtJWTSigner stores a signer; *ConflictError on a taken "name".
	CreateExtJWTSigner(ctx context.Context, s *ExtJWTSigner) error

	// GetExtJWTSigner returns the signer or ErrNotFound.
	GetExtJWTSigner(ctx context.Context, id string) (*ExtJWTSigner, error)

	// UpdateExtJWTSigner replaces a stored signer. ErrNotFound if gone.
	UpdateExtJWTSigner(ctx context.Context, s *ExtJWTSigner) error

	// DeleteExtJWTSigner removes it, or returns ErrNotFound.
	DeleteExtJWTSigner(ctx context.Context, id string) error

	// ListExtJWTSigners returns a page ordered by name, and the total count.
	ListExtJWTSigners(ctx context.Context, p Page) ([]*ExtJWTSigner, int, error)
}

// SessionStore keeps API sessions.
type SessionStore interface {
	// CreateAPISession stores a new session together with the certificates
	// it starts with (the client certificate of a cert login), atomically.
	// ErrNotFound if the identity does not exist.
	CreateAPISession(ctx context.Context, s *APISession, certs []*Certificate) error

	// GetAPISession returns the session or ErrNotFound. It does not look at
	// expiry: callers compare ExpiresAt with their clock.
	GetAPISession(ctx context.Context, id string) (*APISession, error)

	// FindAPISessionByTokenHash returns the session with that token hash or
	// ErrNotFound.
	FindAPISessionByTokenHash(ctx context.Context, h TokenHash) (*APISession, error)

	// ListAPISessions returns a page ordered by id, and the total count.
	ListAPISessions(ctx context.Context, p Page) ([]*APISession, int, error)

	// TouchAPISessions records coalesced activity. Sessions that no longer
	// exist are skipped silently; a touch never moves ExpiresAt backwards.
	TouchAPISessions(ctx context.Context, touches []Touch) error

	// DeleteAPISession removes the session and all its certificates in one
	// transaction and returns the apiSessionRemoved event it recorded.
	// ErrNotFound if it is gone.
	DeleteAPISession(ctx context.Context, id string, cause Cause, at time.Time) (*Event, error)

	// DeleteExpiredAPISessions removes up to limit sessions whose ExpiresAt
	// is not after now, each with its certificates and one event of cause
	// expiry, and returns the events.
	DeleteExpiredAPISessions(ctx context.Context, now time.Time, limit int) ([]Event, error)
}

// CertificateStore keeps the certificates of sessions.
type CertificateStore interface {
	// CreateCertificate stores a certificate under its session, durably,
	// before returning. ErrNotFound if the session does not exist;
	// ErrLimitReached if the session already holds maxLive certificates
	// whose ValidTo is after now (maxLive <= 0 means no limit);
	// *ConflictError on a "fingerprint" the session already holds.
	CreateCertificate(ctx context.Context, c *Certificate, maxLive int, now time.Time) error

	// GetCertificate returns the certificate with that id in that session,
	// or ErrNotFound, also when the id belongs to another session.
	GetCertificate(ctx context.Context, apiSessionID, id string) (*Certificate, error)

	// FindCertificateByFingerprint returns the certificate of the session
	// with that fingerprint, or ErrNotFound. A fingerprint is unique only
	// within a session: a client certificate that logged in twice is a
	// certificate of both sessions.
	FindCertificateByFingerprint(ctx context.Context, apiSessionID, fingerprint string) (*Certificate, error)

	// ListCertificates returns a page of the session's certificates whose
	// ValidTo is after now, ordered by creation, and their total count.
	ListCertificates(
		ctx context.Context,
		apiSessionID string,
		now time.Time,
		p Page,
	) ([]*Certificate, int, error)

	// DeleteCertificate removes one certificate of a session and returns the
	// certificateDeleted event it recorded. ErrNotFound if it is not a
	// certificate of that session.
	DeleteCertificate(ctx context.Context, apiSessionID, id string, at time.Time) (*Event, error)

	// DeleteExpiredCertificates removes up to limit certificates whose ValidTo
	// is not after now. No event is recorded: such a certificate is refused
	// by its own validity already. It returns how many it removed.
	DeleteExpiredCertificates(ctx context.Context, now time.Time, limit int) (int, error)

	// CountCertificates returns how many certificate records exist, in every
	// session, expired but not yet swept ones included. It is cheap enough
	// to call for a gauge: backends keep or read a count, not the records.
	CountCertificates(ctx context.Context) (int, error)
}

// EventStore is the ordered stream of removal events.
type EventStore interface {
	// Events returns up to limit events with a cursor greater than after,
	// oldest first. ErrCursorExpired if events after that cursor have
	// already been dropped from the retained history.
	Events(ctx context.Context, after uint64, limit int) ([]Event, error)

	// EventCursor returns the cursor of the newest event or a later point
	// (an etcd revision moves with every write), or the point the stream
	// starts from when there is none yet. A caller that starts following at
	// this cursor misses nothing that happens afterwards.
	EventCursor(ctx context.Context) (uint64, error)

	// WaitEvents blocks until an event with a cursor greater than after
	// exists, ctx is done (returning ctx.Err()), or the store closes
	// (ErrClosed).
	WaitEvents(ctx context.Context, after uint64) error
}

// Package manage is the administration of sessioncert: identities, their
// authenticators, external JWT signers and API sessions. It checks what an
// administrator asks for, keeps secrets write-only (passwords are stored only
// as argon2id hashes, certificates only as PEM with their fingerprint), and
// ends sessions when their identity, or the authenticator they logged in
// with, goes.
//
// Every change is recorded before it is applied: once a request is
// validated and the change's before and after are known, the Observer
// records it, and only then is the store written. A change the Observer
// cannot record is not made. A change the store then refuses is recorded
// again as failed, so that the trail holds every change that happened, and
// a recorded change without a later failure is one that happened.
package manage

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// MinPasswordLength is the shortest password an administrator may set.
const MinPasswordLength = 8

// FieldError reports a request field that cannot be accepted.
type FieldError struct {
	Field  string // wire name of the field
	Reason string
}

func (e *FieldError) Error() string { return "manage: " + e.Field + ": " + e.Reason }

// Config configures a Service.
type Config struct {
	Store      store.Store
	Registry   *session.Registry
	HashParams auth.HashParams
	Now        func() time.Time
	Rand       io.Reader

	// Observer records every change before it is made, for the audit
	// trail; nil means no one listens.
	Observer Observer
}

// Change describes one administrative change for the audit trail. Before
// and After are copies without secrets; either is nil for a create or a
// delete.
type Change struct {
	Actor  string // identity id of the administrator
	Action string // "create", "update" or "delete"
	Kind   string // "identity", "authenticator", "externalJwtSigner" or "apiSession"
	ID     string
	Before any
	After  any
}

// Observer records administrative changes.
type Observer interface {
	// Changed is called before the change is applied, once it is
	// validated. It returns an error when it could not record the change
	// durably; the change is then not made and the request fails.
	Changed(ctx context.Context, c Change) error

	// ChangeFailed is called after Changed when the store refused the
	// change, with the reason: one of the Failed* constants. Nothing
	// changed. Recording it is best effort.
	ChangeFailed(ctx context.Context, c Change, reason string)
}

// Reasons passed to Observer.ChangeFailed.
const (
	FailedConflict    = "conflict"    // a unique value is taken
	FailedNotFound    = "not_found"   // the entity went away meanwhile
	FailedUnavailable = "unavailable" // the store could not be reached
	FailedError       = "error"       // anything else
)

// Service performs administrative operations.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.HashParams == (auth.HashParams{}) {
		cfg.HashParams = auth.DefaultHashParams
	}
	return &Service{cfg: cfg}
}

// apply records c, then makes it with change. When change fails, the
// failure is recorded too and change's error returned. When c cannot be
// recorded, change is never called.
func (s *Service) apply(ctx context.Context, c Change, change func() error) error {
	if s.cfg.Observer != nil {
		if err := s.cfg.Observer.Changed(ctx, c); err != nil {
			return fmt.Errorf("manage: record change: %w", err)
		}
	}
	if err := change(); err != nil {
		if s.cfg.Observer != nil {
			s.cfg.Observer.ChangeFailed(ctx, c, failureReason(err))
		}
		return err
	}
	return nil
}

// failureReason names why the store refused a change.
func failureReason(err error) string {
	switch {
	case errors.Is(err, store.ErrConflict):
		return FailedConflict
	case errors.Is(err, store.ErrNotFound), errors.Is(err, session.ErrNotFound):
		return FailedNotFound
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		return FailedUnavailable
	default:
		return FailedError
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) newID() (string, error) { return store.NewID(s.cfg.Rand) }

// IdentityInput holds the fields of an identity create or update; nil
// pointers are left unchanged by an update.
type IdentityInput struct {
	Name       *string
	Type       *string
	IsAdmin    *bool
	ExternalID *string
}

// CreateIdentity stores a new identity. A taken name is a
// *store.ConflictError.
func (s *Service) CreateIdentity(ctx context.Context, actor string, in IdentityInput) (*store.Identity, error) {
	now := s.now()
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	ident := &store.Identity{ID: id, Type: store.IdentityTypeUser, CreatedAt: now, UpdatedAt: now}
	if err := applyIdentity(ident, in); err != nil {
		return nil, err
	}

	c := Change{Actor: actor, Action: "create", Kind: "identity", ID: id, After: *ident}
	if err := s.apply(ctx, c, func() error { return s.cfg.Store.CreateIdentity(ctx, ident) }); err != nil {
		return nil, err
	}
	return ident, nil
}

// UpdateIdentity changes the given fields of an identity. ErrNotFound
// (store) when it does not exist. Sessions of the identity see the change
// on their next request.
func (s *Service) UpdateIdentity(ctx context.Context, actor, id string, in IdentityInput) error {
	ident, err := s.cfg.Store.GetIdentity(ctx, id)
	if err != nil {
		return err
	}
	before := *ident
	if err := applyIdentity(ident, in); err != nil {
		return err
	}
	ident.UpdatedAt = s.now()

	c := Change{Actor: actor, Action: "update", Kind: "identity", ID: id, Before: before, After: *ident}
	if err := s.apply(ctx, c, func() error { return s.cfg.Store.UpdateIdentity(ctx, ident) }); err != nil {
		return err
	}
	s.cfg.Registry.IdentityChanged(ident)
	return nil
}

func applyIdentity(ident *store.Identity, in IdentityInput) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" {
			return &FieldError{Field: "name", Reason: "must not be empty"}
		}
		ident.Name = name
	}
	if in.Type != nil {
		switch t := store.IdentityType(*in.Type); t {
		case store.IdentityTypeUser, store.IdentityTypeRouter:
			ident.Type = t
		default:
			return &FieldError{Field: "type", Reason: "must be User or Router"}
		}
	}
	if in.IsAdmin != nil {
		ident.IsAdmin = *in.IsAdmin
	}
	if in.ExternalID != nil {
		ident.ExternalID = *in.ExternalID
	}
	return nil
}

// DeleteIdentity removes an identity with its authenticators, and ends its
// sessions with all their certificates at once, recording removal events.
func (s *Service) DeleteIdentity(ctx context.Context, actor, id string) error {
	ident, err := s.cfg.Store.GetIdentity(ctx, id)
	if err != nil {
		return err
	}

	var evs []store.Event
	c := Change{Actor: actor, Action: "delete", Kind: "identity", ID: id, Before: *ident}
	err = s.apply(ctx, c, func() error {
		var derr error
		evs, derr = s.cfg.Store.DeleteIdentity(ctx, id, s.now())
		return derr
	})
	if err != nil {
		return err
	}
	s.cfg.Registry.ForgetIdentity(id)
	s.cfg.Registry.Removed(evs)
	return nil
}

// GetIdentity returns one identity.
func (s *Service) GetIdentity(ctx context.Context, id string) (*store.Identity, error) {
	return s.cfg.Store.GetIdentity(ctx, id)
}

// ListIdentities returns a page of identities and their total.
func (s *Service) ListIdentities(ctx context.Context, p store.Page) ([]*store.Identity, int, error) {
	return s.cfg.Store.ListIdentities(ctx, p)
}

// AuthenticatorInput holds the fields of an authenticator create or update.
type AuthenticatorInput struct {
	Method     string // "updb" or "cert"; create only
	IdentityID string // create only
	Username   *string
	Password   *string
	CertPEM    *string // create only
}

// redacted is an authenticator as the audit trail may see it.
type redacted struct {
	ID, IdentityID, Method, Username, Fingerprint string
}

func redact(a *store.Authenticator) redacted {
	return redacted{ID: a.ID, IdentityID: a.IdentityID, Method: string(a.Method),
		Username: a.Username, Fingerprint: a.Fingerprint}
}

// CreateAuthenticator adds a credential to an identity: a username and
// password (updb) or a client certificate (cert). An unknown identity is a
// *FieldError on identityId.
func (s *Service) CreateAuthenticator(
	ctx context.Context,
	actor string,
	in AuthenticatorInput,
) (*store.Authenticator, error) {
	now := s.now()
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	a := &store.Authenticator{ID: id, IdentityID: in.IdentityID, CreatedAt: now, UpdatedAt: now}
	switch in.Method {
	case string(store.AuthMethodPassword):
		if in.CertPEM != nil {
			return nil, &FieldError{Field: "certPem", Reason: "not allowed for updb"}
		}
		if in.Username == nil || strings.TrimSpace(*in.Username) == "" {
			return nil, &FieldError{Field: "username", Reason: "required for updb"}
		}
		if in.Password == nil {
			return nil, &FieldError{Field: "password", Reason: "required for updb"}
		}
		a.Method = store.AuthMethodPassword
		a.Username = strings.TrimSpace(*in.Username)
		if a.PasswordHash, err = s.hash(*in.Password); err != nil {
			return nil, err
		}
	case string(store.AuthMethodCert):
		if in.Username != nil || in.Password != nil {
			return nil, &FieldError{Field: "username", Reason: "not allowed for cert"}
		}
		if in.CertPEM == nil {
			return nil, &FieldError{Field: "certPem", Reason: "required for cert"}
		}
		leaf, err := parseOneCertificate(*in.CertPEM)
		if err != nil {
			return nil, &FieldError{Field: "certPem", Reason: err.Error()}
		}
		a.Method = store.AuthMethodCert
		a.CertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
		a.Fingerprint = ca.Fingerprint(leaf.Raw)
	default:
		return nil, &FieldError{Field: "method", Reason: "must be updb or cert"}
	}

	// An unknown identity is a field error, which records nothing; one
	// deleted from here on is a change that failed.
	if _, err := s.cfg.Store.GetIdentity(ctx, a.IdentityID); err != nil {
		return nil, unknownIdentity(err)
	}

	c := Change{Actor: actor, Action: "create", Kind: "authenticator", ID: id, After: redact(a)}
	if err := s.apply(ctx, c, func() error { return s.cfg.Store.CreateAuthenticator(ctx, a) }); err != nil {
		return nil, unknownIdentity(err)
	}
	return a, nil
}

// unknownIdentity turns the store's ErrNotFound for the identity of an
// authenticator into a *FieldError on identityId.
func unknownIdentity(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &FieldError{Field: "identityId", Reason: "no identity has this id"}
	}
	return err
}

// UpdateAuthenticator changes the username or password of a updb
// authenticator. Sessions it created live on.
func (s *Service) UpdateAuthenticator(ctx context.Context, actor, id string, in AuthenticatorInput) error {
	a, err := s.cfg.Store.GetAuthenticator(ctx, id)
	if err != nil {
		return err
	}
	if a.Method != store.AuthMethodPassword && (in.Username != nil || in.Password != nil) {
		return &FieldError{Field: "password", Reason: "only updb authenticators have one"}
	}
	before := redact(a)
	if in.Username != nil {
		if strings.TrimSpace(*in.Username) == "" {
			return &FieldError{Field: "username", Reason: "must not be empty"}
		}
		a.Username = strings.TrimSpace(*in.Username)
	}
	if in.Password != nil {
		if a.PasswordHash, err = s.hash(*in.Password); err != nil {
			return err
		}
	}
	a.UpdatedAt = s.now()

	c := Change{Actor: actor, Action: "update", Kind: "authenticator", ID: id,
		Before: before, After: redact(a)}
	return s.apply(ctx, c, func() error { return s.cfg.Store.UpdateAuthenticator(ctx, a) })
}

func (s *Service) hash(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", &FieldError{Field: "password",
			Reason: fmt.Sprintf("must be at least %d characters", MinPasswordLength)}
	}
	return auth.HashPassword(password, s.cfg.HashParams, s.cfg.Rand)
}

// DeleteAuthenticator removes a credential and ends the sessions that
// logged in with it, with all their certificates, as DeleteSession does:
// taking away a device's certificate or a password takes away the access
// gained with it. Sessions of the identity's other credentials live on.
func (s *Service) DeleteAuthenticator(ctx context.Context, actor, id string) error {
	a, err := s.cfg.Store.GetAuthenticator(ctx, id)
	if err != nil {
		return err
	}

	var evs []store.Event
	c := Change{Actor: actor, Action: "delete", Kind: "authenticator", ID: id, Before: redact(a)}
	err = s.apply(ctx, c, func() error {
		var derr error
		evs, derr = s.cfg.Store.DeleteAuthenticator(ctx, id, s.now())
		return derr
	})
	if err != nil {
		return err
	}
	s.cfg.Registry.Removed(evs)
	return nil
}

// GetAuthenticator returns one authenticator.
func (s *Service) GetAuthenticator(ctx context.Context, id string) (*store.Authenticator, error) {
	return s.cfg.Store.GetAuthenticator(ctx, id)
}

// ListAuthenticators returns a page of authenticators and their total.
func (s *Service) ListAuthenticators(ctx context.Context, p store.Page) ([]*store.Authenticator, int, error) {
	return s.cfg.Store.ListAuthenticators(ctx, p)
}

// SignerInput holds the fields of an external JWT signer create or update.
type SignerInput struct {
	Name           *string
	Issuer         *string
	Audience       *string
	JWKSEndpoint   *string
	CertPEM        *string
	ClaimsProperty *string
	UseExternalID  *bool
	Enabled        *bool
}

// CreateSigner stores an external JWT signer. It needs either a JWKS
// endpoint (an https URL) or a PEM certificate or public key whose key
// logins accept (see auth.CheckSignerKey); otherwise it returns a
// *FieldError.
func (s *Service) CreateSigner(ctx context.Context, actor string, in SignerInput) (*store.ExtJWTSigner, error) {
	now := s.now()
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	sg := &store.ExtJWTSigner{ID: id, ClaimsProperty: "sub", Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := applySigner(sg, in); err != nil {
		return nil, err
	}

	c := Change{Actor: actor, Action: "create", Kind: "externalJwtSigner", ID: id, After: *sg}
	if err := s.apply(ctx, c, func() error { return s.cfg.Store.CreateExtJWTSigner(ctx, sg) }); err != nil {
		return nil, err
	}
	return sg, nil
}

// UpdateSigner changes the given fields of a signer. A new certPem is
// checked as CreateSigner checks it.
func (s *Service) UpdateSigner(ctx context.Context, actor, id string, in SignerInput) error {
	sg, err := s.cfg.Store.GetExtJWTSigner(ctx, id)
	if err != nil {
		return err
	}
	before := *sg
	if err := applySigner(sg, in); err != nil {
		return err
	}
	sg.UpdatedAt = s.now()

	c := Change{Actor: actor, Action: "update", Kind: "externalJwtSigner", ID: id,
		Before: before, After: *sg}
	return s.apply(ctx, c, func() error { return s.cfg.Store.UpdateExtJWTSigner(ctx, sg) })
}

func applySigner(sg *store.ExtJWTSigner, in SignerInput) error {
	set := func(dst *string, src *string, field string) error {
		if src == nil {
			return nil
		}
		if strings.TrimSpace(*src) == "" {
			return &FieldError{Field: field, Reason: "must not be empty"}
		}
		*dst = strings.TrimSpace(*src)
		return nil
	}
	for _, f := range []struct {
		dst   *string
		src   *string
		field string
	}{
		{&sg.Name, in.Name, "name"},
		{&sg.Issuer, in.Issuer, "issuer"},
		{&sg.Audience, in.Audience, "audience"},
		{&sg.ClaimsProperty, in.ClaimsProperty, "claimsProperty"},
	} {
		if err := set(f.dst, f.src, f.field); err != nil {
			return err
		}
	}
	if in.JWKSEndpoint != nil {
		sg.JWKSEndpoint = strings.TrimSpace(*in.JWKSEndpoint)
	}
	if in.CertPEM != nil {
		sg.CertPEM = strings.TrimSpace(*in.CertPEM)
	}
	if in.UseExternalID != nil {
		sg.UseExternalID = *in.UseExternalID
	}
	if in.Enabled != nil {
		sg.Enabled = *in.Enabled
	}
	return checkSignerKeys(sg, in.CertPEM != nil)
}

// checkSignerKeys requires exactly one source of keys, and checks it. A
// PEM key that newKey says the request sets must also be one that logins
// can verify with; a key stored before that check existed is left alone,
// so that its signer can still be disabled or renamed.
func checkSignerKeys(sg *store.ExtJWTSigner, newKey bool) error {
	switch {
	case sg.JWKSEndpoint == "" && sg.CertPEM == "":
		return &FieldError{Field: "jwksEndpoint", Reason: "either jwksEndpoint or certPem is required"}
	case sg.JWKSEndpoint != "" && sg.CertPEM != "":
		return &FieldError{Field: "certPem", Reason: "give either jwksEndpoint or certPem, not both"}
	case sg.JWKSEndpoint != "":
		u, err := url.Parse(sg.JWKSEndpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return &FieldError{Field: "jwksEndpoint", Reason: "must be an https URL"}
		}
	default:
		pub, err := parsePublicKey(sg.CertPEM)
		if err != nil {
			return &FieldError{Field: "certPem", Reason: err.Error()}
		}
		if !newKey {
			return nil
		}
		if err := auth.CheckSignerKey(pub); err != nil {
			return &FieldError{Field: "certPem", Reason: "cannot verify tokens: " + err.Error()}
		}
	}
	return nil
}

// DeleteSigner removes a signer.
func (s *Service) DeleteSigner(ctx context.Context, actor, id string) error {
	sg, err := s.cfg.Store.GetExtJWTSigner(ctx, id)
	if err != nil {
		return err
	}

	c := Change{Actor: actor, Action: "delete", Kind: "externalJwtSigner", ID: id, Before: *sg}
	return s.apply(ctx, c, func() error { return s.cfg.Store.DeleteExtJWTSigner(ctx, id) })
}

// GetSigner returns one signer.
func (s *Service) GetSigner(ctx context.Context, id string) (*store.ExtJWTSigner, error) {
	return s.cfg.Store.GetExtJWTSigner(ctx, id)
}

// ListSigners returns a page of signers and their total.
func (s *Service) ListSigners(ctx context.Context, p store.Page) ([]*store.ExtJWTSigner, int, error) {
	return s.cfg.Store.ListExtJWTSigners(ctx, p)
}

// DeleteSession ends a session with all its certificates. ErrNotFound
// (store) when there is no such session.
func (s *Service) DeleteSession(ctx context.Context, actor, id string) error {
	// An unknown id records nothing, as for the other kinds.
	if _, err := s.cfg.Store.GetAPISession(ctx, id); err != nil {
		return err
	}

	c := Change{Actor: actor, Action: "delete", Kind: "apiSession", ID: id}
	return s.apply(ctx, c, func() error {
		_, err := s.cfg.Registry.Delete(ctx, id, store.CauseAdmin)
		return err
	})
}

func parseOneCertificate(s string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("must be one PEM CERTIFICATE block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("must hold exactly one certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, errors.New("is not a valid certificate")
	}
	return c, nil
}

func parsePublicKey(s string) (any, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("must be one PEM CERTIFICATE or PUBLIC KEY block")
	}
	switch block.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errors.New("is not a valid certificate")
		}
		return c.PublicKey, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("is not a valid public key")
		}
		return k, nil
	default:
		return nil, errors.New("must be one PEM CERTIFICATE or PUBLIC KEY block")
	}
}

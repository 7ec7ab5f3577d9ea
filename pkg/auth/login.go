package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// MethodPassword names the password login method.
const MethodPassword = "password"

// Result is who a successful login proved to be.
type Result struct {
	Identity      *store.Identity
	Authenticator *store.Authenticator
	Method        string // "password", "cert" or "ext-jwt"

	// Certificate is set by a cert login: the client certificate becomes
	// one of the new session's certificates.
	Certificate *store.Certificate
}

// PasswordConfig configures a Password authenticator.
type PasswordConfig struct {
	Store      store.Store
	Params     HashParams      // for the dummy hash; zero means DefaultHashParams
	BySource   *AttemptLimiter // nil disables the per-source limit
	ByUsername *AttemptLimiter // nil disables the per-username limit
	Now        func() time.Time
	Rand       io.Reader
}

// Password authenticates usernames and passwords against updb
// authenticators.
type Password struct {
	cfg       PasswordConfig
	dummyHash string
}

// NewPassword returns a password authenticator.
func NewPassword(cfg PasswordConfig) (*Password, error) {
	if cfg.Params == (HashParams{}) {
		cfg.Params = DefaultHashParams
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	// An unknown user is checked against this hash so that the reply takes
	// as long as for a known user with a wrong password.
	dummy, err := HashPassword("sessioncert-dummy", cfg.Params, cfg.Rand)
	if err != nil {
		return nil, err
	}
	return &Password{cfg: cfg, dummyHash: dummy}, nil
}

// Authenticate checks username and password. source is the client's address,
// used for rate limiting. It returns ErrRateLimited, a *LoginError (matching
// ErrInvalidAuth), or a store error when the store fails.
func (p *Password) Authenticate(ctx context.Context, username, password, source string) (*Result, error) {
	now := p.cfg.Now()
	if !p.cfg.BySource.Allowed(source, now) || !p.cfg.ByUsername.Allowed(username, now) {
		return nil, ErrRateLimited
	}

	res, err := p.check(ctx, username, password)
	if errors.Is(err, ErrInvalidAuth) {
		p.cfg.BySource.Fail(source, now)
		p.cfg.ByUsername.Fail(username, now)
	}
	return res, err
}

func (p *Password) check(ctx context.Context, username, password string) (*Result, error) {
	a, err := p.cfg.Store.FindAuthenticatorByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		_, _ = VerifyPassword(p.dummyHash, password)
		return nil, &LoginError{Reason: ReasonUnknownUser}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find authenticator: %w", err)
	}
	ok, err := VerifyPassword(a.PasswordHash, password)
	if err != nil {
		return nil, &LoginError{Reason: ReasonWrongPassword, Err: err}
	}
	if !ok {
		return nil, &LoginError{Reason: ReasonWrongPassword}
	}
	id, err := p.cfg.Store.GetIdentity(ctx, a.IdentityID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &LoginError{Reason: ReasonUnknownIdentity}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: get identity: %w", err)
	}
	return &Result{Identity: id, Authenticator: a, Method: MethodPassword}, nil
}

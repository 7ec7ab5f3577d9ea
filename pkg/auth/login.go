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

	// Confirm, when not nil, tells whether the credential still stands
	// once the new session is stored; see ConfirmAuthenticator.
	Confirm func(ctx context.Context) error
}

// ConfirmAuthenticator returns a check that the authenticator with id is
// still stored. Deleting an authenticator ends the sessions it logged in,
// but only those stored before the delete: a login that checked the
// credential just before an administrator deleted it would store its
// session just after, and keep it. Checked once the session is stored, a
// delete either came first and is seen here, or came later and ended the
// session itself. A deleted authenticator is a *LoginError of
// ReasonAuthenticatorGone.
func ConfirmAuthenticator(st store.Store, id string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := st.GetAuthenticator(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return &LoginError{Reason: ReasonAuthenticatorGone}
		}
		if err != nil {
			return fmt.Errorf("auth: confirm authenticator: %w", err)
		}
		return nil
	}
}

// PasswordConfig configures a Password authenticator.
type PasswordConfig struct {
	Store      store.Store
	Params     HashParams      // for the dummy hash; zero means DefaultHashParams
	BySource   *AttemptLimiter // failed logins per source address; nil means no limit
	ByUsername *AttemptLimiter // failed logins per username; nil means no limit
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

// Authenticate checks username and password. source is the client's
// address. The attempt takes its token from the per-source and the
// per-username limit before the password is checked, so that parallel
// attempts cannot outrun the limit, and gives both back unless the
// credential was wrong: successful logins, and those a failing store cut
// short, cost nothing.
//
// It returns a *RateLimitError (matching ErrRateLimited), a *LoginError
// (matching ErrInvalidAuth; an unknown username and a wrong password differ
// only in its Reason), or a store error when the store fails.
func (p *Password) Authenticate(ctx context.Context, username, password, source string) (*Result, error) {
	if err := takeAttempt(p.cfg.Now(),
		charge{p.cfg.BySource, source}, charge{p.cfg.ByUsername, username}); err != nil {
		return nil, err
	}

	res, err := p.check(ctx, username, password)
	if !errors.Is(err, ErrInvalidAuth) {
		p.cfg.BySource.GiveBack(source)
		p.cfg.ByUsername.GiveBack(username)
	}
	return res, err
}

// charge is a limit and the key an attempt is charged to under it.
type charge struct {
	limit *AttemptLimiter
	key   string
}

// takeAttempt takes one attempt at now from every charge in turn. When one
// refuses, the attempts the charges before it granted are given back, so
// that a refused attempt costs nothing, and a *RateLimitError is returned.
func takeAttempt(now time.Time, charges ...charge) error {
	for i, c := range charges {
		ok, first := c.limit.Take(c.key, now)
		if ok {
			continue
		}
		for _, granted := range charges[:i] {
			granted.limit.GiveBack(granted.key)
		}
		return &RateLimitError{First: first}
	}
	return nil
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
	return &Result{Identity: id, Authenticator: a, Method: MethodPassword,
		Confirm: ConfirmAuthenticator(p.cfg.Store, a.ID)}, nil
}

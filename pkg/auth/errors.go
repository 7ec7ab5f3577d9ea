package auth

import "errors"

// Errors returned by the authenticators.
var (
	// ErrInvalidAuth is matched by every failed login. The reply to the
	// client never says more than this; *LoginError carries the reason for
	// logs and the audit trail.
	ErrInvalidAuth = errors.New("auth: invalid credentials")

	// ErrRateLimited is matched by every login refused because too many
	// failed recently for the source address or the username; the error
	// itself is a *RateLimitError.
	ErrRateLimited = errors.New("auth: too many failed attempts")
)

// Reason says why a login failed. It is for operators, never for the client.
type Reason string

// Reasons of failed logins.
const (
	ReasonUnknownUser     Reason = "unknownUser"
	ReasonWrongPassword   Reason = "wrongPassword"
	ReasonNoCertificate   Reason = "noCertificate"
	ReasonUnknownCert     Reason = "unknownCertificate"
	ReasonCertNotValid    Reason = "certificateNotValid"
	ReasonNoToken         Reason = "noToken"
	ReasonTokenExpired    Reason = "tokenExpired"
	ReasonTokenInvalid    Reason = "tokenInvalid"
	ReasonUnknownIdentity Reason = "unknownIdentity"

	// ReasonAuthenticatorGone: the credential was good, but its
	// authenticator was deleted while the session was being created.
	ReasonAuthenticatorGone Reason = "authenticatorDeleted"
)

// LoginError is a failed login with its reason. errors.Is(err,
// ErrInvalidAuth) is true for every LoginError.
type LoginError struct {
	Reason Reason
	Err    error // the underlying cause, if any
}

func (e *LoginError) Error() string {
	if e.Err != nil {
		return "auth: login failed: " + string(e.Reason) + ": " + e.Err.Error()
	}
	return "auth: login failed: " + string(e.Reason)
}

// Is makes errors.Is(err, ErrInvalidAuth) true.
func (e *LoginError) Is(target error) bool { return target == ErrInvalidAuth }

// Unwrap returns the underlying cause.
func (e *LoginError) Unwrap() error { return e.Err }

// RateLimitError is a login refused by a limit of failed attempts, before
// its credential was looked at. errors.Is(err, ErrRateLimited) is true for
// every RateLimitError.
type RateLimitError struct {
	// First is set on the first refusal since the refusing bucket last
	// granted an attempt. The refusals after it, while the bucket stays
	// empty, cost the client nothing and need no record of their own.
	First bool
}

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

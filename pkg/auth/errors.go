package auth

import "errors"

// Errors returned by the authenticators.
var (
	// ErrInvalidAuth is matched by every failed login. The reply to the
	// client never says more than this; *LoginError carries the reason for
	// logs and the audit trail.
	ErrInvalidAuth = errors.New("auth: invalid credentials")

	// ErrRateLimited is returned when too many logins failed recently for
	// the source address or the username.
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

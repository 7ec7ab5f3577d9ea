package sdk

import (
	"errors"
	"fmt"

	"github.com/go-openapi/runtime"

	"github.com/sessioncert/sessioncert/models"
)

// Error codes of the controller that callers commonly act on. The full list
// is in the API contract.
const (
	// CodeUnauthorized: the session token is missing, unknown, ended or
	// expired, or the session may not call the operation. Log in again.
	CodeUnauthorized = "UNAUTHORIZED"

	// CodeInvalidAuth: a login failed. The reply never says which part of
	// the credential was wrong.
	CodeInvalidAuth = "INVALID_AUTH"

	// CodeNotFound: no such entity is visible to the session.
	CodeNotFound = "NOT_FOUND"
)

// ErrClosed is returned by every method of an SDK after Close.
var ErrClosed = errors.New("sdk: closed")

// APIError is an error reply of the controller. It wraps the generated
// client's typed error, so errors.As still finds that as well.
type APIError struct {
	// Op is the operation id, such as "createCurrentApiSessionCertificate".
	Op string

	// Status is the HTTP status code of the reply.
	Status int

	// Code is the contract's error code, such as CodeUnauthorized; empty
	// when the reply carried no error envelope.
	Code string

	// Message is the controller's explanation, safe to show to a user.
	Message string

	// RequestID names the request in the controller's log; may be empty.
	RequestID string

	// Cause is the field or nested error the controller named; may be nil.
	Cause *models.APIErrorCause

	// Err is the generated client's error.
	Err error
}

// Error returns "sdk: <op>: <code>: <message>", or the status when the reply
// had no error envelope.
func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("sdk: %s: unexpected reply with status %d", e.Op, e.Status)
	}
	return fmt.Sprintf("sdk: %s: %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the generated client's error.
func (e *APIError) Unwrap() error { return e.Err }

// errorReply is what every typed error reply of the generated client offers.
type errorReply interface {
	error
	Code() int
	GetPayload() *models.APIErrorEnvelope
}

// AsAPIError finds the controller's error reply in err's chain: an *APIError,
// a typed error reply of the generated client, or the generated client's
// *runtime.APIError for a status the contract does not declare. It returns
// false when err is not a reply of the controller, for example a network or
// TLS failure.
func AsAPIError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	var reply errorReply
	if errors.As(err, &reply) {
		ae = &APIError{Status: reply.Code(), Err: err}
		if p := reply.GetPayload(); p != nil && p.Error != nil {
			ae.Code = deref(p.Error.Code)
			ae.Message = deref(p.Error.Message)
			ae.RequestID = deref(p.Error.RequestID)
			ae.Cause = p.Error.Cause
		}
		return ae, true
	}
	var unexpected *runtime.APIError
	if errors.As(err, &unexpected) {
		return &APIError{Op: unexpected.OperationName, Status: unexpected.Code, Err: err}, true
	}
	return nil, false
}

// wrap names the operation in err: a controller reply becomes an *APIError
// with Op set, anything else is prefixed.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if ae, ok := AsAPIError(err); ok {
		c := *ae
		c.Op = op
		return &c
	}
	return fmt.Errorf("sdk: %s: %w", op, err)
}

// hasCode reports whether err is a controller reply with the error code.
func hasCode(err error, code string) bool {
	ae, ok := AsAPIError(err)
	return ok && ae.Code == code
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

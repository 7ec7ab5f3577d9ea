package gate

import "errors"

// Codes of refused admissions. The first four are the controller's answers
// to createAdmission; the last two are decided by the gate without asking.
const (
	CodeInvalidAPISession    = "INVALID_API_SESSION"
	CodeCertificateNotBound  = "CERTIFICATE_NOT_BOUND"
	CodeCertificateExpired   = "CERTIFICATE_EXPIRED"
	CodeCertificateUntrusted = "CERTIFICATE_UNTRUSTED"
	CodeMissingToken         = "MISSING_TOKEN"
	CodeMissingCertificate   = "MISSING_CERTIFICATE"
)

// Refusals, matched with errors.Is against the *RefusedError that Admit and
// Track return. ErrRefused matches every refusal, including codes this
// version does not know.
var (
	ErrRefused = errors.New("gate: admission refused")

	// ErrInvalidAPISession: the token names no live session, or the session
	// was removed while the decision was made.
	ErrInvalidAPISession = errors.New("gate: no live api session for the token")
	// ErrCertificateNotBound: the certificate is not a live certificate of
	// the token's session (another session's, or deleted).
	ErrCertificateNotBound = errors.New("gate: certificate is not bound to the session")
	// ErrCertificateExpired: the certificate is outside its validity.
	ErrCertificateExpired = errors.New("gate: certificate is expired or not yet valid")
	// ErrCertificateUntrusted: the chain does not verify against the
	// controller's CA.
	ErrCertificateUntrusted = errors.New("gate: certificate is not trusted")
	// ErrMissingToken: the request carried no session token.
	ErrMissingToken = errors.New("gate: no session token")
	// ErrMissingCertificate: the connection presented no client
	// certificate.
	ErrMissingCertificate = errors.New("gate: no client certificate")
)

var refusalsByCode = map[string]error{
	CodeInvalidAPISession:    ErrInvalidAPISession,
	CodeCertificateNotBound:  ErrCertificateNotBound,
	CodeCertificateExpired:   ErrCertificateExpired,
	CodeCertificateUntrusted: ErrCertificateUntrusted,
	CodeMissingToken:         ErrMissingToken,
	CodeMissingCertificate:   ErrMissingCertificate,
}

// RefusedError is a refused admission. Code is the controller's code, or
// one of the gate's own (CodeMissingToken, CodeMissingCertificate). It is
// safe to show Code to the client; it names no secret.
type RefusedError struct {
	Code string
}

// Error returns the refusal with its code, for logs.
func (e *RefusedError) Error() string { return "gate: admission refused: " + e.Code }

// Is reports whether target is ErrRefused or the sentinel of e's code.
func (e *RefusedError) Is(target error) bool {
	if target == ErrRefused {
		return true
	}
	sentinel, ok := refusalsByCode[e.Code]
	return ok && sentinel == target
}

// Errors that are not refusals: the gate could not reach a decision.
var (
	// ErrLoginRefused is returned by Admit and Run when the controller
	// refuses the configured credentials. Run stops on it: retrying with
	// the same password cannot help.
	ErrLoginRefused = errors.New("gate: the controller refused the router's credentials")

	// ErrNotRouter is returned by Admit and Run when the router API answers
	// 401 to a session the gate has just logged in: the identity exists but
	// is not of type Router. Run stops on it.
	ErrNotRouter = errors.New(
		"gate: the router api refused a fresh session: the identity is not of type Router")

	// ErrUnavailable wraps every failure to reach the controller or to read
	// its answer. Admit returns it for a miss while the controller is down.
	ErrUnavailable = errors.New("gate: controller unavailable")

	// ErrRunning is returned by Run when another Run of the same gate is
	// still following the stream.
	ErrRunning = errors.New("gate: already running")

	// ErrNotFollowing is returned by Track while Run does not follow the
	// event stream, or for an admission granted before Run took its current
	// cursor: removals of it could go unseen. It is transient.
	ErrNotFollowing = errors.New("gate: not following the event stream since the admission")

	// ErrUnsettled is returned by Admit when the gate reset its state or
	// took a new cursor during each of several controller calls in a row,
	// so that no answer could be trusted. It is transient.
	ErrUnsettled = errors.New("gate: removal state kept resetting during the decision")
)

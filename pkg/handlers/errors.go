package handlers

import (
	"context"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	oaerrors "github.com/go-openapi/errors"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/httpx"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// Error codes of the wire contract.
const (
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeInvalidAuth          = "INVALID_AUTH"
	CodeInvalidAuthMethod    = "INVALID_AUTH_METHOD"
	CodeCouldNotValidate     = "COULD_NOT_VALIDATE"
	CodeCouldNotParseBody    = "COULD_NOT_PARSE_BODY"
	CodeCouldNotProcessCSR   = "COULD_NOT_PROCESS_CSR"
	CodeInvalidPagination    = "INVALID_PAGINATION"
	CodeNotFound             = "NOT_FOUND"
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	CodeRequestEntityTooLarg = "REQUEST_ENTITY_TOO_LARGE"
	CodeRateLimited          = "RATE_LIMITED"
	CodeUnhandled            = "UNHANDLED"
	CodeUnavailable          = "SERVICE_UNAVAILABLE"
)

// WWW-Authenticate challenges of the zt-session scheme.
const (
	challengeMissing = `zt-session realm="zt-session" error="missing" ` +
		`error_description="no matching token was provided"`
	challengeInvalid = `zt-session realm="zt-session" error="invalid" ` +
		`error_description="token is invalid"`
)

// apiError is an error as the client sees it: a status, a code, a safe
// message and an optional cause. internal is what went wrong inside, for the
// log only.
type apiError struct {
	status    int
	code      string
	message   string
	cause     *models.APIErrorCause
	challenge string // WWW-Authenticate value, for 401s
	internal  error
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// Code makes apiError a go-openapi error, so that the runtime passes it
// through untouched from authenticators and authorizers to ServeError.
func (e *apiError) Code() int32 { return int32(e.status) } //nolint:gosec // statuses are small

func errValidation(field, reason string, value any) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		code:    CodeCouldNotValidate,
		message: "the request could not be validated",
		cause:   &models.APIErrorCause{Field: field, Reason: reason, Value: value},
	}
}

func errInvalidToken() *apiError {
	return &apiError{
		status: http.StatusUnauthorized, code: CodeUnauthorized,
		message: "the session token is invalid", challenge: challengeInvalid,
	}
}

func errMissingToken() *apiError {
	return &apiError{
		status: http.StatusUnauthorized, code: CodeUnauthorized,
		message: "no session token was provided", challenge: challengeMissing,
	}
}

func errNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "the entity was not found"}
}

func errTooLarge() *apiError {
	return &apiError{
		status: http.StatusRequestEntityTooLarge, code: CodeRequestEntityTooLarg,
		message: fmt.Sprintf("the request body is over %d bytes", httpx.MaxBodySize),
	}
}

// toAPIError maps a domain error to what the client sees. It is the one place
// where domain errors meet wire codes.
func toAPIError(err error) *apiError {
	var ae *apiError
	var csrErr *ca.CSRError
	var conflict *store.ConflictError
	var login *auth.LoginError
	var field *manage.FieldError
	switch {
	case stderrors.As(err, &field):
		return errValidation(field.Field, field.Reason, nil)
	case stderrors.As(err, &ae):
		return ae
	case stderrors.Is(err, session.ErrInvalidToken):
		return errInvalidToken()
	case stderrors.Is(err, session.ErrNotFound), stderrors.Is(err, store.ErrNotFound):
		return errNotFound()
	case stderrors.As(err, &csrErr):
		// Only the detail is the client's to read: the underlying parse
		// or signature error may quote the input, and goes to the log.
		return &apiError{
			status: http.StatusBadRequest, code: CodeCouldNotProcessCSR,
			message: "the CSR could not be processed",
			cause: &models.APIErrorCause{
				Code:    csrErr.Reason.String(),
				Message: csrErr.Detail,
			},
			internal: err,
		}
	case stderrors.As(err, &login):
		return &apiError{
			status: http.StatusUnauthorized, code: CodeInvalidAuth,
			message: "the authentication request failed", internal: err,
		}
	case stderrors.Is(err, auth.ErrRateLimited):
		return &apiError{
			status: http.StatusTooManyRequests, code: CodeRateLimited,
			message: "too many failed attempts, try again later",
		}
	case stderrors.Is(err, session.ErrIssueRateLimited):
		return &apiError{
			status: http.StatusTooManyRequests, code: CodeRateLimited,
			message: "certificates are requested too often, try again later",
		}
	case stderrors.Is(err, session.ErrCertificateLimit):
		return &apiError{
			status: http.StatusTooManyRequests, code: CodeRateLimited,
			message: "the session holds the maximum number of certificates",
		}
	case stderrors.As(err, &conflict):
		return errValidation(conflict.Field, "already exists", conflict.Value)
	case stderrors.Is(err, store.ErrUnavailable), stderrors.Is(err, store.ErrClosed):
		return &apiError{
			status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "the service is temporarily unavailable, try again", internal: err,
		}
	case ca.CannotSign(err):
		// Not a bug, and nothing the client can change: the CA needs its
		// operator (a new certificate, a reachable signer). The 5xx status
		// logs it at Error.
		return &apiError{
			status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message:  "the certificate authority cannot issue certificates now, try again later",
			internal: err,
		}
	default:
		return &apiError{
			status: http.StatusInternalServerError, code: CodeUnhandled,
			message: "an unexpected error occurred", internal: err,
		}
	}
}

// fail maps err for the client and logs it once, as attributes of the
// request's access-log line, with the internal cause that the client never
// sees.
func fail(ctx context.Context, err error) (*apiError, *models.APIErrorEnvelope) {
	ae := toAPIError(err)
	if ae.status == http.StatusInternalServerError && ctx.Err() != nil && stderrors.Is(err, context.Canceled) {
		// The client went away in the middle of a store call. That is no
		// bug; the reply is never read, but it must not count as one.
		ae = &apiError{
			status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "the request was cancelled", internal: err,
		}
	}
	attrs := []slog.Attr{slog.String("code", ae.code)}
	if ae.internal != nil {
		attrs = append(attrs, slog.String("error", ae.internal.Error()))
	} else if ae.status >= 500 {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	httpx.Annotate(ctx, attrs...)
	return ae, envelope(ctx, ae)
}

func envelope(ctx context.Context, ae *apiError) *models.APIErrorEnvelope {
	return &models.APIErrorEnvelope{
		Error: &models.APIError{
			Code:      &ae.code,
			Message:   &ae.message,
			Cause:     ae.cause,
			RequestID: ptr(httpx.RequestID(ctx)),
		},
		Meta: errorMeta(),
	}
}

func errorMeta() *models.Meta {
	return &models.Meta{APIEnrollmentVersion: "0.0.1", APIVersion: "0.0.1"}
}

// writeError writes an error reply outside the generated responders: for
// framework errors, panics and oversized bodies.
func writeError(w http.ResponseWriter, r *http.Request, ae *apiError) {
	_, env := fail(r.Context(), ae)
	if ae.challenge != "" {
		w.Header().Set("WWW-Authenticate", ae.challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	_ = json.NewEncoder(w).Encode(env)
}

// ServeError replaces go-openapi's error writer, so that routing, security,
// binding and validation failures use the contract's envelope and codes and
// never one of go-openapi's private 6xx or 422 statuses.
func ServeError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, fromFramework(err))
}

// Unhandled is the reply to a request whose handler panicked.
func Unhandled(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, &apiError{
		status: http.StatusInternalServerError, code: CodeUnhandled,
		message: "an unexpected error occurred",
	})
}

// TooLarge is the reply to a request whose body is over the cap.
func TooLarge(w http.ResponseWriter, r *http.Request) { writeError(w, r, errTooLarge()) }

// SingleToken refuses a request that carries more than one zt-session
// header: an ambiguous credential is invalid, whichever value is valid.
func SingleToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("zt-session")) > 1 {
			writeError(w, r, errInvalidToken())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// NotFoundHandler answers requests for paths outside the API.
func NotFoundHandler(w http.ResponseWriter, r *http.Request) { writeError(w, r, errNotFound()) }

func fromFramework(err error) *apiError {
	var ae *apiError
	if stderrors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if stderrors.As(err, &mbe) {
		return errTooLarge()
	}

	var composite *oaerrors.CompositeError
	if stderrors.As(err, &composite) && len(composite.Errors) > 0 {
		return fromFramework(composite.Errors[0])
	}

	var parseErr *oaerrors.ParseError
	if stderrors.As(err, &parseErr) {
		return fromParseError(parseErr)
	}

	var v *oaerrors.Validation
	if stderrors.As(err, &v) {
		if v.In == "query" && (v.Name == "limit" || v.Name == "offset") {
			return &apiError{
				status: http.StatusBadRequest, code: CodeInvalidPagination,
				message: "limit or offset is out of range",
				cause:   &models.APIErrorCause{Field: v.Name, Reason: v.Error(), Value: safeValue(v.Value)},
			}
		}
		if v.Code() == http.StatusUnsupportedMediaType {
			return errNotJSON()
		}
		return errValidation(fieldName(v.Name), v.Error(), safeValue(v.Value))
	}

	var oe oaerrors.Error
	if stderrors.As(err, &oe) {
		switch code := int(oe.Code()); {
		case code == http.StatusUnauthorized:
			return errMissingToken()
		case code == http.StatusNotFound:
			return errNotFound()
		case code == http.StatusMethodNotAllowed:
			return &apiError{
				status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
				message: "the method is not allowed on this path",
			}
		case code == http.StatusServiceUnavailable:
			return &apiError{status: code, code: CodeUnavailable, message: "the service is temporarily unavailable"}
		case code >= 500 && code < 600:
			return &apiError{
				status: http.StatusInternalServerError, code: CodeUnhandled,
				message: "an unexpected error occurred", internal: err,
			}
		default:
			// 422 and go-openapi's 6xx codes are validation failures.
			return errValidation("", oe.Error(), nil)
		}
	}
	return &apiError{
		status: http.StatusInternalServerError, code: CodeUnhandled,
		message: "an unexpected error occurred", internal: err,
	}
}

func fromParseError(pe *oaerrors.ParseError) *apiError {
	var mbe *http.MaxBytesError
	if stderrors.As(pe.Reason, &mbe) {
		return errTooLarge()
	}
	var typeErr *json.UnmarshalTypeError
	if stderrors.As(pe.Reason, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = pe.Name
		}
		return errValidation(field, "must be of type "+typeErr.Type.String()+", not "+typeErr.Value, nil)
	}
	if pe.In == "header" && strings.EqualFold(pe.Name, "Content-Type") {
		// ContentType refuses these first; should go-openapi's parser be
		// stricter than mime's, the reply is still that of a wrong type.
		return errNotJSON()
	}
	if pe.In == "body" {
		return &apiError{
			status: http.StatusBadRequest, code: CodeCouldNotParseBody,
			message: "the request body is not valid JSON",
		}
	}
	return errValidation(pe.Name, "could not be parsed", nil)
}

// fieldName turns go-openapi's "auth.username" (parameter name, then the
// path inside it) into the JSON field the client sent.
func fieldName(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// safeValue echoes short scalar values only: a huge or nested value, or a
// secret someone sent in the wrong field, should not be reflected back.
func safeValue(v any) any {
	switch x := v.(type) {
	case string:
		if len(x) > 64 {
			return nil
		}
		return x
	case int, int32, int64, float64, bool:
		return x
	default:
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

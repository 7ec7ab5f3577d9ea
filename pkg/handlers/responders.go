package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/httpx"
)

// errEnv is the error envelope every error response carries.
type errEnv = models.APIErrorEnvelope

// errorReplies maps each error status an operation declares to a prototype
// of the generated response of that status. R is the operation's strict
// responder interface, so a table can only hold responses the spec declares
// for that operation.
type errorReplies[R any] map[int]R

// payloadSetter is implemented by every generated error response.
type payloadSetter interface{ SetPayload(*errEnv) }

// challengeSetter is implemented by the generated 401 responses.
type challengeSetter interface{ SetWWWAuthenticate(string) }

// reply maps err with toAPIError, logs it once, and returns a new response
// of its status carrying the error envelope. A status the operation does
// not declare is a bug in the mapping: it is logged and answered as 500.
func (m errorReplies[R]) reply(ctx context.Context, err error) R {
	ae, env := fail(ctx, err)
	proto, ok := m[ae.status]
	if !ok {
		httpx.Annotate(ctx, slog.Int("undeclaredStatus", ae.status))
		ae = &apiError{status: http.StatusInternalServerError, code: CodeUnhandled,
			message: "an unexpected error occurred"}
		env = envelope(ctx, ae)
		proto = m[http.StatusInternalServerError]
	}
	r := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
	r.(payloadSetter).SetPayload(env)
	if c, ok := r.(challengeSetter); ok && ae.challenge != "" {
		c.SetWWWAuthenticate(ae.challenge)
	}
	return r.(R)
}

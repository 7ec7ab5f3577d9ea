package handlers

import (
	"net/http"
	"strings"

	"github.com/go-openapi/runtime/middleware"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// challengeScope is the WWW-Authenticate value for a live session of the
// wrong kind: an ordinary user on the management API, say.
const challengeScope = `zt-session realm="zt-session" error="insufficient_scope" ` +
	`error_description="the session may not use this operation"`

// authorize decides, after the token was resolved, whether the session may
// use the operation: the management API needs an admin, the router API a
// Router identity, the client API any live session. It looks at the path of
// the operation the router matched, never at the request's own path: the
// router cleans a path before matching it, so /edge//management/v1/... is
// a management operation although it does not start with /edge/management/.
func authorize(r *http.Request, principal any) error {
	p, ok := principal.(*auth.Principal)
	if !ok || p == nil {
		return errMissingToken()
	}
	route := middleware.MatchedRouteFrom(r)
	if route == nil {
		// Only matched operations are authorized; refuse rather than guess.
		return errWrongKind("the request names no operation")
	}
	path := route.PathPattern
	switch {
	case strings.HasPrefix(path, "/edge/management/") && !p.IsAdmin:
		return errWrongKind("the management API needs an admin session")
	case strings.HasPrefix(path, "/edge/router/") && p.IdentityType != store.IdentityTypeRouter:
		return errWrongKind("the router API needs the session of a Router identity")
	}
	return nil
}

func errWrongKind(msg string) *apiError {
	return &apiError{
		status: http.StatusUnauthorized, code: CodeUnauthorized, message: msg, challenge: challengeScope,
	}
}

package handlers

import (
	"mime"
	"net/http"
	"strings"

	"github.com/go-openapi/runtime/middleware"
)

// errNotJSON is the reply to a body that is not declared as JSON.
func errNotJSON() *apiError {
	return &apiError{
		status: http.StatusBadRequest, code: CodeCouldNotParseBody,
		message: "the request body must be application/json",
	}
}

// ContentType refuses, with 400 COULD_NOT_PARSE_BODY, a request with a body
// whose Content-Type is not exactly one media type the matched operation
// consumes: the header repeated, unparsable, a wildcard, or another type.
// It runs after routing. go-openapi takes the first of repeated headers,
// reads a malformed one as a validation failure of a "Content-Type" field,
// and answers a wildcard with a 500 when it finds no consumer for it; here
// every such request gets the reply a text/plain body gets.
func ContentType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := middleware.MatchedRouteFrom(r)
		if r.ContentLength == 0 || route == nil || len(route.Consumes) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if !consumed(r.Header.Values("Content-Type"), route.Consumes) {
			writeError(w, r, errNotJSON())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// consumed reports whether values is exactly one media type, without
// wildcards, that is one of consumes. Parameters such as charset are
// allowed and ignored, as go-openapi ignores them.
func consumed(values, consumes []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, _, err := mime.ParseMediaType(values[0])
	if err != nil || strings.Contains(mt, "*") {
		return false
	}
	for _, c := range consumes {
		if want, _, err := mime.ParseMediaType(c); err == nil && want == mt {
			return true
		}
	}
	return false
}

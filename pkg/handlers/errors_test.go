package handlers

import (
	"errors"
	"net/http"
	"testing"

	oaerrors "github.com/go-openapi/errors"
)

// TestFromFrameworkContentType maps go-openapi's refusals of a Content-Type
// to the one reply the contract gives a body not declared as JSON, however
// go-openapi words them.
func TestFromFrameworkContentType(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"unparsable", oaerrors.NewParseError("Content-Type", "header", "application/json;;", errors.New("bad"))},
		{"unparsable, in a composite", oaerrors.CompositeValidationError(
			oaerrors.NewParseError("Content-Type", "header", "a/", errors.New("bad")))},
		{"not consumed", oaerrors.InvalidContentType("text/plain", []string{"application/json"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae := fromFramework(tc.err)
			if ae.status != http.StatusBadRequest || ae.code != CodeCouldNotParseBody || ae.cause != nil {
				t.Errorf("%d %s %+v, want 400 %s without a cause", ae.status, ae.code, ae.cause, CodeCouldNotParseBody)
			}
		})
	}
}

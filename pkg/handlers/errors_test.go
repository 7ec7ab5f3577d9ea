package handlers

import (
	"context"
	"errors"
	"fmt"
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

// TestFailWhenTheClientWentAway maps a store call cut short because the
// client left to 503 rather than to the 500 of a bug, and leaves a
// cancellation the client did not cause, and other faults, as they are.
func TestFailWhenTheClientWentAway(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		status int
	}{
		{"client gone", gone, fmt.Errorf("store: put: %w", context.Canceled), http.StatusServiceUnavailable},
		{"client still there", context.Background(), context.Canceled, http.StatusInternalServerError},
		{"client gone, another fault", gone, errors.New("boom"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ae, _ := fail(tc.ctx, tc.err); ae.status != tc.status {
				t.Errorf("status %d (%s), want %d", ae.status, ae.code, tc.status)
			}
		})
	}
}

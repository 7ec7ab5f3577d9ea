package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-openapi/loads"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/restapi"
	"github.com/sessioncert/sessioncert/restapi/operations"
)

// TestAuthorizeByMatchedOperation shows that authorization follows the
// operation the API's router matched, which it finds after cleaning the
// path, and not the request's path as sent: a path that is not clean is
// refused before the API (see the server's dispatch), and would be refused
// here too.
func TestAuthorizeByMatchedOperation(t *testing.T) {
	spec, err := loads.Analyzed(restapi.SwaggerJSON, "")
	if err != nil {
		t.Fatal(err)
	}
	api := operations.NewSessioncertAPI(spec)
	New(Config{}).Register(api)
	_ = api.Serve(nil) // builds the router that RouteInfo consults

	user := &auth.Principal{IdentityType: store.IdentityTypeUser}
	admin := &auth.Principal{IdentityType: store.IdentityTypeUser, IsAdmin: true}
	router := &auth.Principal{IdentityType: store.IdentityTypeRouter}
	tests := []struct {
		name      string
		method    string
		path      string
		principal *auth.Principal
		allowed   bool
	}{
		{"user on the client API", "GET", "/edge/client/v1/current-api-session", user, true},
		{"user on management", "GET", "/edge/management/v1/identities", user, false},
		{"user on management, doubled slash", "GET", "/edge//management/v1/identities", user, false},
		{"user on management, dot dot", "POST", "/edge/client/../management/v1/identities", user, false},
		{"router on management, doubled slash", "GET", "/edge//management/v1/identities", router, false},
		{"admin on management, doubled slash", "GET", "/edge//management/v1/identities", admin, true},
		{"user on the router API, doubled slash", "GET", "/edge//router/v1/events", user, false},
		{"admin on the router API, doubled slash", "POST", "/edge/router//v1/heartbeats", admin, false},
		{"router on the router API", "GET", "/edge/router/v1/events", router, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, req, ok := api.Context().RouteInfo(httptest.NewRequest(tt.method, tt.path, nil))
			if !ok {
				t.Fatalf("no operation matches %s %s", tt.method, tt.path)
			}
			err := authorize(req, tt.principal)
			if allowed := err == nil; allowed != tt.allowed {
				t.Errorf("%s %s (operation %s): allowed %v (%v), want %v",
					tt.method, tt.path, route.Operation.ID, allowed, err, tt.allowed)
			}
		})
	}

	t.Run("no matched operation", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/edge/client/v1/current-api-session", nil)
		if err := authorize(req, admin); err == nil {
			t.Error("a request without a matched operation was authorized")
		}
	})
}

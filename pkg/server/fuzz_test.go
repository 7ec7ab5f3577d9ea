package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// FuzzAPI sends arbitrary requests through the whole handler chain (routing,
// security, binding, validation, handlers, error mapping) and checks that no
// input yields a 5xx, a panic or a reply outside the error envelope.
func FuzzAPI(f *testing.F) {
	paths := []string{
		"/edge/client/v1/authenticate",
		"/edge/client/v1/current-api-session",
		"/edge/client/v1/current-api-session/certificates",
		"/edge/client/v1/current-api-session/certificates/abc",
		"/edge/client/v1/version",
		"/edge/management/v1/identities",
		"/edge/management/v1/authenticators/x",
		"/edge/management/v1/external-jwt-signers",
		"/edge/management/v1/api-sessions",
		"/edge/router/v1/admissions",
		"/edge/router/v1/events",
		"/edge/router/v1/heartbeats",
		"/health-checks",
	}
	for i := range paths {
		f.Add(uint8(i), uint8(0), "method=password", `{"username":"admin","password":"x"}`, false)
		f.Add(uint8(i), uint8(1), "limit=5&offset=1", `{"csr":"-----BEGIN CERTIFICATE REQUEST-----"}`, true)
		f.Add(uint8(i), uint8(2), "after=12&wait=0", `{"name":"n","type":"User"}`, true)
	}
	f.Add(uint8(0), uint8(0), "method=password", `{"username":["a"],"password":null}`, false)
	f.Add(uint8(2), uint8(0), "limit=-1", `[1,2,3]`, true)

	e := servertest.Start(f, servertest.Options{})
	admin := login(f, e, "admin", servertest.AdminPassword)
	token := admin.ZtSession
	handler := e.Server.Handler()
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}

	f.Fuzz(func(t *testing.T, pathIndex, methodIndex uint8, query, body string, withToken bool) {
		path := paths[int(pathIndex)%len(paths)]
		method := methods[int(methodIndex)%len(methods)]
		req := httptest.NewRequest(method, "https://"+e.Host+path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/json")
		if withToken {
			req.Header.Set("zt-session", token)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s %q: status %d: %s", method, path, query, body, rec.Code, rec.Body)
		}
		var env struct {
			Error *struct {
				Code      string `json:"code"`
				RequestID string `json:"requestId"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: reply is not JSON: %v: %q", method, path, err, rec.Body)
		}
		if rec.Code >= 400 && (env.Error == nil || env.Error.Code == "" || env.Error.RequestID == "") {
			t.Fatalf("%s %s: status %d without the error envelope: %s", method, path, rec.Code, rec.Body)
		}
	})
}

package server_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/informational"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

func login(t testing.TB, e *servertest.Env, username, password string) *authentication.AuthenticateOK {
	t.Helper()
	ok, err := e.Client(nil).Authentication.Authenticate(&authentication.AuthenticateParams{
		Method: "password",
		Auth:   &models.Authenticate{Username: username, Password: strfmt.Password(password)},
	})
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return ok
}

// TestLoginCurrentSessionLogout walks the main path through the generated
// client over real TLS: login, current session, logout, and the token
// refused afterwards with the contract's challenge.
func TestLoginCurrentSessionLogout(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil)

	ok := login(t, e, "admin", servertest.AdminPassword)
	tok := ok.ZtSession
	if tok == "" || tok != *ok.Payload.Data.Token {
		t.Fatalf("zt-session header %q and body token %q must match and be set", tok, *ok.Payload.Data.Token)
	}
	d := ok.Payload.Data
	if *d.Identity.Name != "admin" || *d.IdentityID != *d.Identity.ID || *d.ExpirationSeconds != 1800 {
		t.Errorf("unexpected session detail: identity %s/%s expirationSeconds %d",
			*d.Identity.Name, *d.IdentityID, *d.ExpirationSeconds)
	}
	if got := time.Time(*d.ExpiresAt).Sub(time.Time(d.LastActivityAt)); got != 30*time.Minute {
		t.Errorf("expiresAt - lastActivityAt = %s, want 30m", got)
	}
	if *d.IPAddress != "127.0.0.1" {
		t.Errorf("ipAddress = %q", *d.IPAddress)
	}

	authn := httptransport.APIKeyAuth("zt-session", "header", tok)
	cur, err := c.CurrentAPISession.GetCurrentAPISession(
		&current_api_session.GetCurrentAPISessionParams{}, authn)
	if err != nil {
		t.Fatalf("current session: %v", err)
	}
	if *cur.Payload.Data.ID != *d.ID || *cur.Payload.Data.Token != tok {
		t.Errorf("current session %s is not the login's %s", *cur.Payload.Data.ID, *d.ID)
	}

	if _, err := c.CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, authn); err != nil {
		t.Fatalf("logout: %v", err)
	}

	_, err = c.CurrentAPISession.GetCurrentAPISession(
		&current_api_session.GetCurrentAPISessionParams{}, authn)
	var unauth *current_api_session.GetCurrentAPISessionUnauthorized
	if !errors.As(err, &unauth) {
		t.Fatalf("after logout: got %v, want 401", err)
	}
	if unauth.WWWAuthenticate != `zt-session realm="zt-session" error="invalid" error_description="token is invalid"` {
		t.Errorf("WWW-Authenticate = %q", unauth.WWWAuthenticate)
	}
	if *unauth.Payload.Error.Code != "UNAUTHORIZED" || *unauth.Payload.Error.RequestID == "" {
		t.Errorf("error = %+v", unauth.Payload.Error)
	}
}

func TestVersion(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	v, err := e.Client(nil).Informational.ListVersion(&informational.ListVersionParams{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Payload.Data.APIVersions["edge-client"]["v1"].Path == nil ||
		*v.Payload.Data.APIVersions["edge-client"]["v1"].Path != "/edge/client/v1" {
		t.Errorf("apiVersions = %+v", v.Payload.Data.APIVersions)
	}
}

// TestExpiry drives the clock past the idle timeout: the session is refused
// at once, activity slides the expiry, and the sweeper removes the session
// with an event.
func TestExpiry(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		c.SessionTimeout = 10 * time.Minute
	}})
	c := e.Client(nil)
	get := func(tok string) error {
		_, err := c.CurrentAPISession.GetCurrentAPISession(
			&current_api_session.GetCurrentAPISessionParams{},
			httptransport.APIKeyAuth("zt-session", "header", tok))
		return err
	}

	tok := login(t, e, "admin", servertest.AdminPassword).ZtSession
	idle := login(t, e, "admin", servertest.AdminPassword)

	// Activity 9 minutes in slides the first session's expiry to 19 min.
	clock.Advance(9 * time.Minute)
	if err := get(tok); err != nil {
		t.Fatalf("at 9m: %v", err)
	}
	clock.Advance(2 * time.Minute) // 11m: the idle one has expired
	if err := get(tok); err != nil {
		t.Fatalf("at 11m after activity at 9m: %v", err)
	}
	var unauth *current_api_session.GetCurrentAPISessionUnauthorized
	if err := get(idle.ZtSession); !errors.As(err, &unauth) {
		t.Fatalf("idle session at 11m: got %v, want 401", err)
	}

	// The sweeper removes the expired session and records its event; the
	// active one stays.
	ctx := context.Background()
	st := e.Server.Store()
	before, err := st.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Server.Registry().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetAPISession(ctx, *idle.Payload.Data.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session still stored: %v", err)
	}
	evs, err := st.Events(ctx, before, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].APISessionID != *idle.Payload.Data.ID || evs[0].Cause != store.CauseExpiry {
		t.Errorf("events after sweep = %+v, want one expiry of %s", evs, *idle.Payload.Data.ID)
	}
	if err := get(tok); err != nil {
		t.Errorf("active session after sweep: %v", err)
	}
}

// rawCall sends a request without the generated client, for malformed
// input.
func rawCall(t *testing.T, e *servertest.Env, method, path, contentType, body string, hdr map[string]string) (
	int, http.Header, models.APIErrorEnvelope,
) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var env models.APIErrorEnvelope
	if resp.StatusCode >= 400 {
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("%s %s: error body is not the envelope: %v", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header, env
}

// TestBadInput checks each malformed request gets its exact status and code
// and that nothing is written: no session, no event.
func TestBadInput(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	ended := login(t, e, "admin", servertest.AdminPassword)
	authn := httptransport.APIKeyAuth("zt-session", "header", ended.ZtSession)
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, authn); err != nil {
		t.Fatal(err)
	}

	const (
		missing = `zt-session realm="zt-session" error="missing" error_description="no matching token was provided"`
		invalid = `zt-session realm="zt-session" error="invalid" error_description="token is invalid"`
	)
	const authPath = "/edge/client/v1/authenticate"
	const curPath = "/edge/client/v1/current-api-session"
	const json = "application/json"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		headers     map[string]string
		status      int
		code        string
		field       string
		challenge   string
	}{
		{name: "body not json", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "admin", "password":`, status: 400, code: "COULD_NOT_PARSE_BODY"},
		{name: "body is text", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `hello`, status: 400, code: "COULD_NOT_PARSE_BODY"},
		{name: "username is a number", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": 5, "password": "x"}`, status: 400, code: "COULD_NOT_VALIDATE", field: "username"},
		{name: "password is an object", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "admin", "password": {}}`, status: 400, code: "COULD_NOT_VALIDATE",
			field: "password"},
		{name: "missing method", method: "POST", path: authPath, contentType: json,
			body: `{"username": "admin", "password": "x"}`, status: 400, code: "COULD_NOT_VALIDATE", field: "method"},
		{name: "unknown method", method: "POST", path: authPath + "?method=kerberos", contentType: json,
			body: `{}`, status: 400, code: "COULD_NOT_VALIDATE", field: "method"},
		{name: "empty username", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "", "password": "x"}`, status: 400, code: "COULD_NOT_VALIDATE", field: "username"},
		{name: "missing password", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "admin"}`, status: 400, code: "COULD_NOT_VALIDATE", field: "password"},
		{name: "wrong password", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "admin", "password": "nope"}`, status: 401, code: "INVALID_AUTH"},
		{name: "unknown user", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "nobody", "password": "nope"}`, status: 401, code: "INVALID_AUTH"},
		{name: "2 MiB body", method: "POST", path: authPath + "?method=password", contentType: json,
			body: `{"username": "` + strings.Repeat("a", 2<<20) + `"}`, status: 413, code: "REQUEST_ENTITY_TOO_LARGE"},
		{name: "wrong content type", method: "POST", path: authPath + "?method=password", contentType: "text/plain",
			body: `{"username": "admin", "password": "x"}`, status: 400, code: "COULD_NOT_PARSE_BODY"},
		{name: "no token", method: "GET", path: curPath, status: 401, code: "UNAUTHORIZED",
			challenge: missing},
		{name: "unknown token", method: "GET", path: curPath, headers: map[string]string{"zt-session": "abc"},
			status: 401, code: "UNAUTHORIZED",
			challenge: invalid},
		{name: "malformed token", method: "GET", path: curPath,
			headers: map[string]string{"zt-session": "ünïcode;, \"quoted\" " + strings.Repeat("z", 4000)},
			status:  401, code: "UNAUTHORIZED",
			challenge: invalid},
		{name: "token of ended session", method: "DELETE", path: curPath,
			headers: map[string]string{"zt-session": ended.ZtSession}, status: 401, code: "UNAUTHORIZED",
			challenge: invalid},
		{name: "unknown path", method: "GET", path: "/edge/client/v1/nothing-here", status: 404, code: "NOT_FOUND"},
	}

	ctx := context.Background()
	st := e.Server.Store()
	cursor, err := st.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, sessions, err := st.ListAPISessions(ctx, store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, env := rawCall(t, e, tt.method, tt.path, tt.contentType, tt.body, tt.headers)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%+v)", status, tt.status, env.Error)
			}
			if env.Error == nil || *env.Error.Code != tt.code {
				t.Fatalf("error = %+v, want code %s", env.Error, tt.code)
			}
			if *env.Error.RequestID == "" || hdr.Get("X-Request-Id") != *env.Error.RequestID {
				t.Errorf("requestId %q does not match header %q", *env.Error.RequestID, hdr.Get("X-Request-Id"))
			}
			if tt.field != "" && (env.Error.Cause == nil || env.Error.Cause.Field != tt.field) {
				t.Errorf("cause = %+v, want field %q", env.Error.Cause, tt.field)
			}
			if got := hdr.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
		})
	}

	if now, err := st.EventCursor(ctx); err != nil || now != cursor {
		t.Errorf("event cursor moved from %d to %d (%v): bad input wrote an event", cursor, now, err)
	}
	if _, n, err := st.ListAPISessions(ctx, store.Page{Limit: 1}); err != nil || n != sessions {
		t.Errorf("sessions went from %d to %d (%v): bad input created a session", sessions, n, err)
	}
}

// TestLoginRateLimit shows failed logins are limited, with the same reply
// for an unknown username as for a wrong password, and that a right
// password within the limit logs in and costs nothing.
func TestLoginRateLimit(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Logins.FailureBurst = 3
		c.Logins.FailureEvery = time.Hour
	}})
	wrongPassword, _ := tryLogin(e.HTTP, e, "admin", "wrong")
	unknownUser, _ := tryLogin(e.HTTP, e, "nobody", "wrong")
	if wrongPassword != unknownUser || wrongPassword.status != 401 ||
		wrongPassword.code != "INVALID_AUTH" {
		t.Fatalf("wrong password %+v, unknown username %+v; want the same 401 INVALID_AUTH",
			wrongPassword, unknownUser)
	}
	limited := loginReply{429, "RATE_LIMITED", "too many failed attempts, try again later"}
	for i, tc := range []struct {
		username, password string
		want               loginReply
	}{
		{"admin", servertest.AdminPassword, loginReply{status: 200}},
		{"admin", servertest.AdminPassword, loginReply{status: 200}},
		{"admin", "wrong", wrongPassword},
		{"admin", servertest.AdminPassword, limited},
		{"nobody", "wrong", limited},
	} {
		got, err := tryLogin(e.HTTP, e, tc.username, tc.password)
		if err != nil || got != tc.want {
			t.Fatalf("login %d after two failures: %+v (%v), want %+v", i+1, got, err, tc.want)
		}
	}
}

// rawGet returns the status and body of an authenticated GET.
func rawGet(t *testing.T, e *servertest.Env, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("zt-session", token)
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func strfmtPassword(s string) strfmt.Password { return strfmt.Password(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestChunkedBodies sends bodies without a Content-Length, over HTTP/1.1
// (chunked) and HTTP/2: every body over 1 MiB gets 413
// REQUEST_ENTITY_TOO_LARGE, a valid JSON value at its start included, and
// one within the cap is served as usual.
func TestChunkedBodies(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	h1 := e.NewHTTPClient(nil)
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	h1.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	const login = `{"username":"admin","password":"wrong"}`
	for _, proto := range []struct {
		name  string
		hc    *http.Client
		major int
	}{
		{"HTTP/1.1", h1, 1},
		{"HTTP/2", e.HTTP, 2},
	} {
		for _, tc := range []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"json, then spaces past 1 MiB", login + strings.Repeat(" ", 1<<20), 413, "REQUEST_ENTITY_TOO_LARGE"},
			{"json, then garbage past 1 MiB", login + strings.Repeat("x", 1<<20), 413, "REQUEST_ENTITY_TOO_LARGE"},
			{"2 MiB of garbage", strings.Repeat("x", 2<<20), 413, "REQUEST_ENTITY_TOO_LARGE"},
			{"json within the cap", login, 401, "INVALID_AUTH"},
		} {
			t.Run(proto.name+"/"+tc.name, func(t *testing.T) {
				// A reader of unknown length: the client sends no
				// Content-Length.
				body := io.MultiReader(strings.NewReader(tc.body))
				req, err := http.NewRequest("POST", e.URL+"/edge/client/v1/authenticate?method=password", body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := proto.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = resp.Body.Close() }()
				var env models.APIErrorEnvelope
				if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
					t.Fatalf("reply is not the envelope: %v", err)
				}
				if resp.ProtoMajor != proto.major || resp.StatusCode != tc.status || *env.Error.Code != tc.code {
					t.Errorf("%s %d %s, want HTTP/%d %d %s", resp.Proto, resp.StatusCode, *env.Error.Code,
						proto.major, tc.status, tc.code)
				}
			})
		}
	}
}

package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/api_sessions"
	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// TestAdminLifecycleOfAUser: the admin creates a user with a password, the
// user logs in and gets a certificate but cannot use the management API,
// and when the admin deletes the user, the user's session and certificates
// are gone at once.
func TestAdminLifecycleOfAUser(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil)
	admin := e.Admin(t)

	aliceID := e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	alice := e.Login(t, "alice", "alice-password")
	if alice.IdentityID != aliceID {
		t.Fatalf("alice logged in as %s, want %s", alice.IdentityID, aliceID)
	}
	cert := e.IssueCertificate(t, alice)

	_, err := c.Identities.ListIdentities(&identities.ListIdentitiesParams{}, alice.Auth)
	var unauth *identities.ListIdentitiesUnauthorized
	if !errors.As(err, &unauth) || *unauth.Payload.Error.Code != "UNAUTHORIZED" {
		t.Fatalf("alice listing identities: %v, want 401 UNAUTHORIZED", err)
	}
	if !strings.Contains(unauth.WWWAuthenticate, "insufficient_scope") {
		t.Errorf("WWW-Authenticate = %q", unauth.WWWAuthenticate)
	}

	sessions, err := c.APISessions.ListAPISessions(&api_sessions.ListAPISessionsParams{}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	if n := *sessions.Payload.Meta.Pagination.TotalCount; n != 2 {
		t.Errorf("admin sees %d sessions, want 2", n)
	}

	ctx := context.Background()
	cursor, err := e.Server.Store().EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identities.DeleteIdentity(&identities.DeleteIdentityParams{ID: aliceID}, admin.Auth); err != nil {
		t.Fatal(err)
	}
	_, err = c.CurrentAPISession.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{}, alice.Auth)
	var gone *current_api_session.GetCurrentAPISessionUnauthorized
	if !errors.As(err, &gone) {
		t.Fatalf("alice's session after her identity was deleted: %v, want 401", err)
	}
	if _, err := e.Server.Store().GetCertificate(ctx, alice.ID, cert.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's certificate survived: %v", err)
	}
	evs, err := e.Server.Store().Events(ctx, cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].APISessionID != alice.ID || len(evs[0].Fingerprints) != 1 {
		t.Errorf("events = %+v, want alice's session removed with one fingerprint", evs)
	}
}

// TestAdminDeletesSession ends another identity's session and its
// certificates.
func TestAdminDeletesSession(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil)
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "bob", "User", "bob-password")
	bob := e.Login(t, "bob", "bob-password")
	cert := e.IssueCertificate(t, bob)

	if _, err := c.APISessions.DeleteAPISession(&api_sessions.DeleteAPISessionParams{ID: bob.ID},
		admin.Auth); err != nil {
		t.Fatal(err)
	}
	_, err := c.CurrentAPISession.ListCurrentAPISessionCertificates(
		&current_api_session.ListCurrentAPISessionCertificatesParams{}, bob.Auth)
	var unauth *current_api_session.ListCurrentAPISessionCertificatesUnauthorized
	if !errors.As(err, &unauth) {
		t.Fatalf("bob after his session was deleted: %v, want 401", err)
	}
	if _, err := e.Server.Store().GetCertificate(context.Background(), bob.ID, cert.ID); !errors.Is(
		err, store.ErrNotFound) {
		t.Errorf("bob's certificate survived: %v", err)
	}
	_, err = c.APISessions.DetailAPISession(&api_sessions.DetailAPISessionParams{ID: bob.ID}, admin.Auth)
	var nf *api_sessions.DetailAPISessionNotFound
	if !errors.As(err, &nf) {
		t.Errorf("detail of the deleted session: %v, want 404", err)
	}
}

// TestPasswordChange: after the admin changes a password, the old one no
// longer works and the new one does; a session that logged in with the old
// one lives on.
func TestPasswordChange(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil)
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "carol", "User", "first-password")
	before := e.Login(t, "carol", "first-password")
	list, err := c.Authenticators.ListAuthenticators(&authenticators.ListAuthenticatorsParams{}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, a := range list.Payload.Data {
		if a.Username == "carol" {
			id = *a.ID
		}
	}
	newPassword := "second-password"
	pw := strfmtPassword(newPassword)
	if _, err := c.Authenticators.PatchAuthenticator(&authenticators.PatchAuthenticatorParams{
		ID: id, Body: &models.AuthenticatorPatch{Password: &pw},
	}, admin.Auth); err != nil {
		t.Fatal(err)
	}
	status, _, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
		`{"username":"carol","password":"first-password"}`, nil)
	if status != 401 || *env.Error.Code != "INVALID_AUTH" {
		t.Errorf("old password: %d %+v", status, env.Error)
	}
	e.Login(t, "carol", newPassword)
	if _, err := c.CurrentAPISession.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{},
		before.Auth); err != nil {
		t.Errorf("the session from before the password change: %v, want it alive", err)
	}
}

// TestManagementBadInput checks each malformed management request gets its
// status, code and field, and that secrets never come back.
func TestManagementBadInput(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	aliceID := e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	alice := e.Login(t, "alice", "alice-password")
	hdr := map[string]string{"zt-session": admin.Token}
	const ids = "/edge/management/v1/identities"
	const auths = "/edge/management/v1/authenticators"
	const signers = "/edge/management/v1/external-jwt-signers"
	tests := []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		code, field              string
	}{
		{"identity without name", "POST", ids, `{"type":"User"}`, hdr, 400, "COULD_NOT_VALIDATE", "name"},
		{"identity without type", "POST", ids, `{"name":"x"}`, hdr, 400, "COULD_NOT_VALIDATE", "type"},
		{"identity of unknown type", "POST", ids, `{"name":"x","type":"Robot"}`, hdr, 400, "COULD_NOT_VALIDATE",
			"type"},
		{"identity name is a number", "POST", ids, `{"name":5,"type":"User"}`, hdr, 400, "COULD_NOT_VALIDATE",
			"name"},
		{"duplicate identity name", "POST", ids, `{"name":"alice","type":"User"}`, hdr, 400, "COULD_NOT_VALIDATE",
			"name"},
		{"empty identity name", "POST", ids, `{"name":"","type":"User"}`, hdr, 400, "COULD_NOT_VALIDATE", "name"},
		{"isAdmin is a string", "PATCH", ids + "/" + aliceID, `{"isAdmin":"yes"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "isAdmin"},
		{"unknown identity", "GET", ids + "/nope", "", hdr, 404, "NOT_FOUND", ""},
		{"patch unknown identity", "PATCH", ids + "/nope", `{"name":"y"}`, hdr, 404, "NOT_FOUND", ""},
		{"delete unknown identity", "DELETE", ids + "/nope", "", hdr, 404, "NOT_FOUND", ""},
		{"authenticator without method", "POST", auths, `{"identityId":"` + aliceID + `"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "method"},
		{"authenticator without identity", "POST", auths, `{"method":"updb"}`, hdr, 400, "COULD_NOT_VALIDATE",
			"identityId"},
		{"authenticator of unknown identity", "POST", auths,
			`{"method":"updb","identityId":"nope","username":"z","password":"long enough"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "identityId"},
		{"updb without password", "POST", auths, `{"method":"updb","identityId":"` + aliceID + `","username":"z"}`,
			hdr, 400, "COULD_NOT_VALIDATE", "password"},
		{"short password", "POST", auths,
			`{"method":"updb","identityId":"` + aliceID + `","username":"z","password":"short"}`,
			hdr, 400, "COULD_NOT_VALIDATE", "password"},
		{"duplicate username", "POST", auths,
			`{"method":"updb","identityId":"` + aliceID + `","username":"alice","password":"long enough"}`,
			hdr, 400, "COULD_NOT_VALIDATE", "username"},
		{"cert without pem", "POST", auths, `{"method":"cert","identityId":"` + aliceID + `"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "certPem"},
		{"cert with garbage pem", "POST", auths,
			`{"method":"cert","identityId":"` + aliceID + `","certPem":"garbage"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "certPem"},
		{"unknown authenticator", "GET", auths + "/nope", "", hdr, 404, "NOT_FOUND", ""},
		{"signer without keys", "POST", signers, `{"name":"s","issuer":"i","audience":"a"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "jwksEndpoint"},
		{"signer with http jwks", "POST", signers,
			`{"name":"s","issuer":"i","audience":"a","jwksEndpoint":"http://127.0.0.1/jwks"}`, hdr, 400,
			"COULD_NOT_VALIDATE", "jwksEndpoint"},
		{"signer without issuer", "POST", signers, `{"name":"s","audience":"a"}`, hdr, 400, "COULD_NOT_VALIDATE",
			"issuer"},
		{"unknown signer", "DELETE", signers + "/nope", "", hdr, 404, "NOT_FOUND", ""},
		{"unknown api session", "GET", "/edge/management/v1/api-sessions/nope", "", hdr, 404, "NOT_FOUND", ""},
		{"limit too large", "GET", ids + "?limit=501", "", hdr, 400, "INVALID_PAGINATION", "limit"},
		{"negative offset", "GET", ids + "?offset=-1", "", hdr, 400, "INVALID_PAGINATION", "offset"},
		{"user creates identity", "POST", ids, `{"name":"mallory","type":"User","isAdmin":true}`,
			map[string]string{"zt-session": alice.Token}, 401, "UNAUTHORIZED", ""},
		{"user deletes admin's session", "DELETE", "/edge/management/v1/api-sessions/" + admin.ID, "",
			map[string]string{"zt-session": alice.Token}, 401, "UNAUTHORIZED", ""},
		{"no token", "GET", ids, "", nil, 401, "UNAUTHORIZED", ""},
	}
	ctx := context.Background()
	_, before, err := e.Server.Store().ListIdentities(ctx, store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := rawCall(t, e, tt.method, tt.path, "application/json", tt.body, tt.headers)
			if status != tt.status || env.Error == nil || *env.Error.Code != tt.code {
				t.Fatalf("got %d %+v, want %d %s", status, env.Error, tt.status, tt.code)
			}
			if tt.field != "" && (env.Error.Cause == nil || env.Error.Cause.Field != tt.field) {
				t.Errorf("cause = %+v, want field %q", env.Error.Cause, tt.field)
			}
		})
	}
	if _, after, err := e.Server.Store().ListIdentities(ctx, store.Page{Limit: 1}); err != nil || after != before {
		t.Errorf("identities went from %d to %d (%v)", before, after, err)
	}
	if _, err := e.Server.Store().GetAPISession(ctx, admin.ID); err != nil {
		t.Errorf("the admin's session was deleted by a user: %v", err)
	}

	// No reply carries a password hash.
	status, body := rawGet(t, e, auths, admin.Token)
	if status != 200 || strings.Contains(body, "argon2") || strings.Contains(body, "password") {
		t.Errorf("authenticator list leaks a secret: %d %s", status, body)
	}
}

// TestDeleteCertAuthenticatorEndsItsSessions: a device logs in with its
// client certificate; when the admin deletes that certificate's
// authenticator, the device's session ends at once with its certificates,
// so routers refuse the certificate, while a password session of the same
// identity lives on.
func TestDeleteCertAuthenticatorEndsItsSessions(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil)
	admin := e.Admin(t)
	ctx := context.Background()
	now := time.Now()
	device := clientCert(t, "device-1", now.Add(-time.Hour), now.Add(time.Hour))

	id := e.CreateIdentity(t, admin, "device-1", "User", "device-password")
	method := "cert"
	created, err := c.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
		Body: &models.AuthenticatorCreate{Method: &method, IdentityID: &id, CertPem: certPEM(device)},
	}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := e.Client(e.NewHTTPClient(&device)).Authentication.Authenticate(
		&authentication.AuthenticateParams{Method: "cert", Auth: &models.Authenticate{}})
	if err != nil {
		t.Fatalf("cert login: %v", err)
	}
	byCert := &servertest.Session{Token: ok.ZtSession, ID: *ok.Payload.Data.ID, Auth: authFor(ok.ZtSession)}
	issued := e.IssueCertificate(t, byCert)
	byPassword := e.Login(t, "device-1", "device-password")
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	if _, code := admit(t, e, r, byCert.Token, certPEM(device)); code != "" {
		t.Fatalf("admission of the login certificate before the delete: %s", code)
	}
	cursor, err := e.Server.Store().EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := c.Authenticators.DeleteAuthenticator(
		&authenticators.DeleteAuthenticatorParams{ID: *created.Payload.Data.ID}, admin.Auth); err != nil {
		t.Fatal(err)
	}

	_, err = c.CurrentAPISession.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{}, byCert.Auth)
	var gone *current_api_session.GetCurrentAPISessionUnauthorized
	if !errors.As(err, &gone) {
		t.Errorf("the cert session after its authenticator was deleted: %v, want 401", err)
	}
	for name, chain := range map[string]string{"login": certPEM(device), "issued": issued.Chain} {
		if _, code := admit(t, e, r, byCert.Token, chain); code != "INVALID_API_SESSION" {
			t.Errorf("admission of the %s certificate after the delete: %q, want INVALID_API_SESSION", name, code)
		}
	}
	evs, err := e.Server.Store().Events(ctx, cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].APISessionID != byCert.ID || evs[0].Cause != store.CauseAdmin ||
		len(evs[0].Fingerprints) != 2 {
		t.Errorf("events = %+v, want the cert session removed by the admin with both its certificates", evs)
	}

	if _, err := c.CurrentAPISession.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{},
		byPassword.Auth); err != nil {
		t.Errorf("the password session of the same identity: %v, want it alive", err)
	}
}

// revokeDuringLogin is a store under which an administrator's delete of an
// authenticator commits after a login checked that authenticator's
// credential and before the login stores its session: the one order in
// which the delete cannot find the session to end it.
type revokeDuringLogin struct {
	store.Store
	authenticatorID atomic.Pointer[string]
}

func (s *revokeDuringLogin) CreateAPISession(
	ctx context.Context,
	sess *store.APISession,
	certs []*store.Certificate,
) error {
	if id := s.authenticatorID.Swap(nil); id != nil {
		if _, err := s.DeleteAuthenticator(ctx, *id, time.Now()); err != nil {
			return err
		}
	}
	return s.Store.CreateAPISession(ctx, sess, certs)
}

// TestLoginRacingAuthenticatorDelete deletes the authenticator of a login
// between its credential check and its session's creation: the login is
// refused as a failed one, and no session of it is left behind.
func TestLoginRacingAuthenticatorDelete(t *testing.T) {
	now := time.Now()
	device := clientCert(t, "device-2", now.Add(-time.Hour), now.Add(time.Hour))
	for _, tc := range []struct {
		name   string
		create func(e *servertest.Env, admin *servertest.Session, identityID string) string
		login  func(e *servertest.Env) (loginReply, error)
	}{
		{"password", func(e *servertest.Env, _ *servertest.Session, _ string) string {
			a, err := e.Server.Store().FindAuthenticatorByUsername(context.Background(), "device-2")
			if err != nil {
				t.Fatal(err)
			}
			return a.ID
		}, func(e *servertest.Env) (loginReply, error) {
			return tryLogin(e.HTTP, e, "device-2", "device-password")
		}},
		{"cert", func(e *servertest.Env, admin *servertest.Session, identityID string) string {
			method := "cert"
			created, err := e.Client(nil).Authenticators.CreateAuthenticator(
				&authenticators.CreateAuthenticatorParams{Body: &models.AuthenticatorCreate{
					Method: &method, IdentityID: &identityID, CertPem: certPEM(device)}}, admin.Auth)
			if err != nil {
				t.Fatal(err)
			}
			return *created.Payload.Data.ID
		}, func(e *servertest.Env) (loginReply, error) {
			return tryAuthenticate(e.NewHTTPClient(&device), e, "cert", `{}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			racing := &revokeDuringLogin{}
			e := servertest.Start(t, servertest.Options{WrapStore: func(s store.Store) store.Store {
				racing.Store = s
				return racing
			}})
			admin := e.Admin(t)
			identityID := e.CreateIdentity(t, admin, "device-2", "User", "device-password")
			authenticatorID := tc.create(e, admin, identityID)

			racing.authenticatorID.Store(&authenticatorID)
			res, err := tc.login(e)
			if err != nil || res.status != 401 || res.code != "INVALID_AUTH" {
				t.Fatalf("login whose authenticator was deleted meanwhile: %+v (%v), want 401 INVALID_AUTH", res, err)
			}
			sessions, _, err := e.Server.Store().ListAPISessions(context.Background(), store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sessions {
				if s.IdentityID == identityID {
					t.Errorf("session %s of the refused login is stored", s.ID)
				}
			}
			reasons := map[string]int{}
			for _, ev := range auditEvents(t, e) {
				if ev.Type == audit.TypeLoginFailed {
					reasons[ev.Reason]++
				}
			}
			if reasons["authenticatorDeleted"] != 1 {
				t.Errorf("login failures in the audit trail: %v, want one authenticatorDeleted", reasons)
			}
		})
	}
}

package server_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// auditEvents stops the server and returns the lines of its audit file.
func auditEvents(t *testing.T, e *servertest.Env) []audit.Event {
	t.Helper()
	e.Stop()
	f, err := os.Open(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []audit.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev audit.Event
		if err := jsonUnmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAuditFailureChangesNothing writes the audit trail to /dev/full: every
// management change then fails with 500 UNHANDLED and changes nothing,
// since its line is written before the change is made. Bob, his
// authenticator and a signer are put into the store directly, as no change
// can be made through the API.
func TestAuditFailureChangesNothing(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Ops.AuditLog = "/dev/full" }})
	ctx := context.Background()
	st := e.Server.Store()
	now := time.Now().UTC()
	bob := &store.Identity{ID: "bob-id", Name: "bob", Type: store.IdentityTypeUser, CreatedAt: now, UpdatedAt: now}
	hash, err := auth.HashPassword("bob-password", auth.HashParams{Time: 1, Memory: 64, Threads: 1}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bobAuth := &store.Authenticator{ID: "bob-auth", IdentityID: bob.ID, Method: store.AuthMethodPassword,
		Username: "bob", PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	signer := &store.ExtJWTSigner{ID: "idp-id", Name: "idp", Issuer: "https://idp.example", Audience: "sc",
		JWKSEndpoint: "https://idp.example/jwks", ClaimsProperty: "sub", Enabled: true,
		CreatedAt: now, UpdatedAt: now}
	if err := errors.Join(st.CreateIdentity(ctx, bob), st.CreateAuthenticator(ctx, bobAuth),
		st.CreateExtJWTSigner(ctx, signer)); err != nil {
		t.Fatal(err)
	}
	admin := e.Admin(t)
	bobSession := e.Login(t, "bob", "bob-password")
	hdr := map[string]string{"zt-session": admin.Token}

	bobLives := func(t *testing.T) {
		t.Helper()
		if _, err := st.GetIdentity(ctx, bob.ID); err != nil {
			t.Errorf("bob is gone: %v", err)
		}
		if status, body := rawGet(t, e, "/edge/client/v1/current-api-session", bobSession.Token); status != 200 {
			t.Errorf("bob's session after the refused change: %d %s", status, body)
		}
	}
	tests := []struct {
		name, method, path, body string
		unchanged                func(t *testing.T)
	}{
		{"create identity", "POST", "/edge/management/v1/identities", `{"name":"carol","type":"User"}`,
			func(t *testing.T) {
				if _, err := st.FindIdentityByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("carol was created: %v", err)
				}
			}},
		{"update identity", "PATCH", "/edge/management/v1/identities/" + bob.ID, `{"name":"robert"}`,
			func(t *testing.T) {
				if got, err := st.GetIdentity(ctx, bob.ID); err != nil || got.Name != "bob" {
					t.Errorf("bob after the refused rename: %+v, %v", got, err)
				}
			}},
		{"delete identity", "DELETE", "/edge/management/v1/identities/" + bob.ID, "", bobLives},
		{"create authenticator", "POST", "/edge/management/v1/authenticators",
			`{"method":"updb","identityId":"` + bob.ID + `","username":"bob2","password":"long enough"}`,
			func(t *testing.T) {
				if _, err := st.FindAuthenticatorByUsername(ctx, "bob2"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("the authenticator was created: %v", err)
				}
			}},
		{"set password", "PATCH", "/edge/management/v1/authenticators/" + bobAuth.ID, `{"password":"new password"}`,
			func(t *testing.T) {
				if got, err := st.GetAuthenticator(ctx, bobAuth.ID); err != nil || got.PasswordHash != hash {
					t.Errorf("bob's password changed (%v)", err)
				}
			}},
		{"delete authenticator", "DELETE", "/edge/management/v1/authenticators/" + bobAuth.ID, "",
			func(t *testing.T) {
				if _, err := st.GetAuthenticator(ctx, bobAuth.ID); err != nil {
					t.Errorf("bob's authenticator is gone: %v", err)
				}
				bobLives(t)
			}},
		{"create signer", "POST", "/edge/management/v1/external-jwt-signers",
			`{"name":"other","issuer":"https://other.example","audience":"sc",` +
				`"jwksEndpoint":"https://other.example/jwks"}`,
			func(t *testing.T) {
				if _, n, err := st.ListExtJWTSigners(ctx, store.Page{Limit: 1}); err != nil || n != 1 {
					t.Errorf("%d signers (%v), want 1", n, err)
				}
			}},
		{"update signer", "PATCH", "/edge/management/v1/external-jwt-signers/" + signer.ID, `{"enabled":false}`,
			func(t *testing.T) {
				if got, err := st.GetExtJWTSigner(ctx, signer.ID); err != nil || !got.Enabled {
					t.Errorf("the signer after the refused update: %+v, %v", got, err)
				}
			}},
		{"delete signer", "DELETE", "/edge/management/v1/external-jwt-signers/" + signer.ID, "",
			func(t *testing.T) {
				if _, err := st.GetExtJWTSigner(ctx, signer.ID); err != nil {
					t.Errorf("the signer is gone: %v", err)
				}
			}},
		{"delete session", "DELETE", "/edge/management/v1/api-sessions/" + bobSession.ID, "", bobLives},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := rawCall(t, e, tt.method, tt.path, "application/json", tt.body, hdr)
			if status != 500 || *env.Error.Code != "UNHANDLED" {
				t.Fatalf("got %d %+v, want 500 UNHANDLED", status, env.Error)
			}
			if strings.Contains(*env.Error.Message, "audit") {
				t.Errorf("the reply tells what failed inside: %q", *env.Error.Message)
			}
			tt.unchanged(t)
		})
	}
}

// TestAuditRecordsRefusedChange: a change the store refuses (a taken name)
// is recorded, then recorded as failed with the reason, under the same
// kind, id and action; a change refused by validation records nothing.
func TestAuditRecordsRefusedChange(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	hdr := map[string]string{"zt-session": admin.Token}
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	for _, body := range []string{`{"name":"alice","type":"User"}`, `{"name":"","type":"User"}`} {
		if status, _, env := rawCall(t, e, "POST", "/edge/management/v1/identities", "application/json",
			body, hdr); status != 400 {
			t.Fatalf("create %s: %d %+v, want 400", body, status, env.Error)
		}
	}

	var got []string
	var ids []string
	for _, ev := range auditEvents(t, e) {
		if ev.Change == nil {
			continue
		}
		got = append(got, strings.TrimSpace(ev.Type+" "+ev.Change.Action+" "+ev.Change.Kind+" "+ev.Reason))
		ids = append(ids, ev.Change.ID)
	}
	want := []string{
		"management.change create identity",
		"management.change create authenticator",
		"management.change create identity",
		"management.change.failed create identity conflict",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes in the audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ids[2] == "" || ids[2] != ids[3] || ids[2] == ids[0] {
		t.Errorf("ids %v: the failure must name the refused change, not alice", ids)
	}
}

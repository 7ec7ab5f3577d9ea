package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

func admit(t *testing.T, e *servertest.Env, r *servertest.Session, token, chain string) (*models.Admission, string) {
	t.Helper()
	ok, err := e.Client(nil).Router.CreateAdmission(&router.CreateAdmissionParams{
		Body: &models.AdmissionRequest{Token: &token, Certificate: &chain},
	}, r.Auth)
	var refused *router.CreateAdmissionForbidden
	switch {
	case err == nil:
		return ok.Payload.Data, ""
	case errors.As(err, &refused):
		return nil, *refused.Payload.Error.Code
	default:
		t.Fatalf("admission: %v", err)
		return nil, ""
	}
}

// selfSigned returns a client certificate from a CA the controller does not
// know, with the same names as a real one.
func selfSigned(t *testing.T, like *x509.Certificate) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: like.Subject.CommonName},
		URIs: like.URIs, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestAdmissionRules checks the controller's admission decisions: only the
// certificate of the very session named by the token is admitted, and a
// deleted certificate or an ended session is refused at once.
func TestAdmissionRules(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	e.CreateIdentity(t, admin, "bob", "User", "bob-password")
	r := e.Login(t, "edge1", "router-password")
	a := e.Admin(t)
	a2 := e.Admin(t) // same identity, another session
	b := e.Login(t, "bob", "bob-password")
	certA := e.IssueCertificate(t, a)

	adm, code := admit(t, e, r, a.Token, certA.Chain)
	if code != "" || *adm.APISessionID != a.ID || *adm.CertificateID != certA.ID || *adm.IdentityName != "admin" {
		t.Fatalf("A's certificate with A's token: %+v %s, want admitted", adm, code)
	}
	for _, tc := range []struct {
		name, token, chain, code string
	}{
		{"A's certificate with the token of A's identity's other session", a2.Token, certA.Chain,
			"CERTIFICATE_NOT_BOUND"},
		{"A's certificate with B's token", b.Token, certA.Chain, "CERTIFICATE_NOT_BOUND"},
		{"unknown token", "no-such-token", certA.Chain, "INVALID_API_SESSION"},
		{"certificate of another CA", a.Token, selfSigned(t, certA.Leaf), "CERTIFICATE_UNTRUSTED"},
	} {
		if _, code := admit(t, e, r, tc.token, tc.chain); code != tc.code {
			t.Errorf("%s: %q, want %s", tc.name, code, tc.code)
		}
	}

	// A deletes the certificate: refused at once, though A lives on.
	c := e.Client(nil)
	if _, err := c.CurrentAPISession.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: certA.ID}, a.Auth); err != nil {
		t.Fatal(err)
	}
	if _, code := admit(t, e, r, a.Token, certA.Chain); code != "CERTIFICATE_NOT_BOUND" {
		t.Errorf("deleted certificate: %q, want CERTIFICATE_NOT_BOUND", code)
	}

	// A logs out: its other certificate is refused at once.
	another := e.IssueCertificate(t, a)
	if _, code := admit(t, e, r, a.Token, another.Chain); code != "" {
		t.Fatalf("second certificate before logout: %s", code)
	}
	if _, err := c.CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, a.Auth); err != nil {
		t.Fatal(err)
	}
	if _, code := admit(t, e, r, a.Token, another.Chain); code != "INVALID_API_SESSION" {
		t.Errorf("after logout: %q, want INVALID_API_SESSION", code)
	}

	// The router API needs a Router identity.
	chain := another.Chain
	_, err := c.Router.CreateAdmission(&router.CreateAdmissionParams{
		Body: &models.AdmissionRequest{Token: &b.Token, Certificate: &chain},
	}, b.Auth)
	var unauth *router.CreateAdmissionUnauthorized
	if !errors.As(err, &unauth) {
		t.Errorf("router API with a User session: %v, want 401", err)
	}
}

// TestEventsLongPoll follows the event stream: a long poll returns as soon
// as a removal happens, events carry fingerprints, and a cursor older than
// the history gives 410 CURSOR_EXPIRED.
func TestEventsLongPoll(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Store.EventHistory = 3 }})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	c := e.Client(nil)

	start, err := c.Router.ListEvents(&router.ListEventsParams{}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}
	cursor := *start.Payload.Meta.Cursor

	a := e.Admin(t)
	cert := e.IssueCertificate(t, a)
	done := make(chan *router.ListEventsOK, 1)
	go func() {
		wait := int64(30)
		ok, err := c.Router.ListEvents(&router.ListEventsParams{After: &cursor, Wait: &wait}, r.Auth)
		if err != nil {
			t.Error(err)
		}
		done <- ok
	}()
	time.Sleep(100 * time.Millisecond)
	began := time.Now()
	if _, err := c.CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, a.Auth); err != nil {
		t.Fatal(err)
	}
	ok := <-done
	if time.Since(began) > 10*time.Second {
		t.Errorf("long poll returned %s after the removal", time.Since(began))
	}
	if ok == nil || len(ok.Payload.Data) != 1 {
		t.Fatalf("events = %+v, want one", ok)
	}
	ev := ok.Payload.Data[0]
	if *ev.Type != "apiSessionRemoved" || *ev.APISessionID != a.ID || len(ev.Fingerprints) != 1 ||
		ev.Fingerprints[0] != fingerprintOf(cert.Leaf) {
		t.Errorf("event = %+v", ev)
	}

	// Push the first cursor out of a history of 3 events.
	for range 5 {
		s := e.Admin(t)
		if _, err := c.CurrentAPISession.DeleteCurrentAPISession(
			&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Router.ListEvents(&router.ListEventsParams{After: &cursor}, r.Auth)
	var gone *router.ListEventsGone
	if !errors.As(err, &gone) || *gone.Payload.Error.Code != "CURSOR_EXPIRED" {
		t.Errorf("expired cursor: %v, want 410 CURSOR_EXPIRED", err)
	}
}

// TestAdmissionRefusesTextBesideCertificates sends an issued chain with
// text added around or between its PEM blocks: createAdmission answers 400,
// as for any chain it cannot read, instead of skipping the text.
func TestAdmissionRefusesTextBesideCertificates(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	a := e.Admin(t)
	cert := e.IssueCertificate(t, a)
	const endLine = "-----END CERTIFICATE-----\n"
	if strings.Count(cert.Chain, endLine) < 2 {
		t.Fatalf("issued chain has fewer than two blocks:\n%s", cert.Chain)
	}

	for _, tc := range []struct {
		name, chain string
	}{
		{"text before the leaf", "leaf follows\n" + cert.Chain},
		{"text between the blocks", strings.Replace(cert.Chain, endLine, endLine+"issuer:\n", 1)},
		{"text after the last block", cert.Chain + "end\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Client(nil).Router.CreateAdmission(&router.CreateAdmissionParams{
				Body: &models.AdmissionRequest{Token: &a.Token, Certificate: &tc.chain},
			}, r.Auth)
			var bad *router.CreateAdmissionBadRequest
			if !errors.As(err, &bad) {
				t.Errorf("createAdmission: %v, want 400", err)
			}
		})
	}
	if adm, code := admit(t, e, r, a.Token, cert.Chain); code != "" || *adm.APISessionID != a.ID {
		t.Errorf("the chain as issued: %+v %s, want admitted", adm, code)
	}
}

// TestHeartbeat reports which sessions ended and slides the live ones: a
// session a heartbeat names expires a full timeout after the heartbeat,
// while one it does not name keeps its expiry.
func TestHeartbeat(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	e := servertest.Start(t, servertest.Options{Clock: clock})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	named, unnamed, ended := e.Admin(t), e.Admin(t), e.Admin(t)
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, ended.Auth); err != nil {
		t.Fatal(err)
	}
	// Read without counting activity, which would slide the expiry itself.
	reg := e.Server.Registry()
	expiresAt := func(s *servertest.Session) time.Time {
		t.Helper()
		got, err := reg.Get(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.ExpiresAt
	}
	unnamedBefore := expiresAt(unnamed)

	clock.Advance(10 * time.Minute)
	ok, err := e.Client(nil).Router.CreateHeartbeat(&router.CreateHeartbeatParams{
		Body: &models.Heartbeat{APISessionIds: []string{named.ID, ended.ID, "unknown"}},
	}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}
	got := ok.Payload.Data.EndedAPISessionIds
	if len(got) != 2 || got[0] != ended.ID || got[1] != "unknown" {
		t.Errorf("ended = %v, want [%s unknown]", got, ended.ID)
	}
	if got, want := expiresAt(named), clock.Now().Add(reg.Timeout()); !got.Equal(want) {
		t.Errorf("named session expires at %s, want %s: the heartbeat did not slide it",
			got, want)
	}
	if got := expiresAt(unnamed); !got.Equal(unnamedBefore) {
		t.Errorf("session the heartbeat did not name expires at %s, want %s unchanged",
			got, unnamedBefore)
	}
}

// TestAdmissionOfAnExpiredCertificate presents a certificate past its
// NotAfter with the token of its session, which lives on: 403
// CERTIFICATE_EXPIRED, before the sweeper removed the record and after.
func TestAdmissionOfAnExpiredCertificate(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		c.SessionTimeout = 30 * time.Minute
		c.Certs.Lifetime = 10 * time.Minute
	}})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	a := e.Admin(t)
	cert := e.IssueCertificate(t, a)
	if _, code := admit(t, e, r, a.Token, cert.Chain); code != "" {
		t.Fatalf("fresh certificate: %s, want admitted", code)
	}

	clock.Advance(11 * time.Minute) // past NotAfter, within both sessions' timeout
	for _, step := range []struct {
		name  string
		sweep bool
	}{
		{"not swept yet", false},
		{"swept", true},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.sweep {
				if _, err := e.Server.Registry().Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if _, code := admit(t, e, r, a.Token, cert.Chain); code != "CERTIFICATE_EXPIRED" {
				t.Errorf("expired certificate with its session's token: %q, want CERTIFICATE_EXPIRED", code)
			}
		})
	}
}

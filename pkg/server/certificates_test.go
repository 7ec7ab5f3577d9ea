package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

func newCSR(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

type session struct {
	token string
	id    string
	auth  runtime.ClientAuthInfoWriter
}

func newSession(t *testing.T, e *servertest.Env) session {
	t.Helper()
	ok := login(t, e, "admin", servertest.AdminPassword)
	return session{token: ok.ZtSession, id: *ok.Payload.Data.ID,
		auth: httptransport.APIKeyAuth("zt-session", "header", ok.ZtSession)}
}

func createCert(t *testing.T, e *servertest.Env, s session, csr string) *models.CurrentAPISessionCertificateCreated {
	t.Helper()
	res, err := e.Client(nil).CurrentAPISession.CreateCurrentAPISessionCertificate(
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, s.auth)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return res.Payload.Data
}

func listCerts(t *testing.T, e *servertest.Env, s session) []*models.CurrentAPISessionCertificateDetail {
	t.Helper()
	res, err := e.Client(nil).CurrentAPISession.ListCurrentAPISessionCertificates(
		&current_api_session.ListCurrentAPISessionCertificatesParams{}, s.auth)
	if err != nil {
		t.Fatalf("list certificates: %v", err)
	}
	return res.Payload.Data
}

// TestCertificateLifecycle issues, lists, shows and deletes a certificate,
// and checks what a client sees at each step.
func TestCertificateLifecycle(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	s := newSession(t, e)
	c := e.Client(nil).CurrentAPISession

	created := createCert(t, e, s, newCSR(t))
	if *created.Links["self"].Href != "./current-api-session/certificates/"+*created.ID {
		t.Errorf("self link = %s", *created.Links["self"].Href)
	}
	block, rest := pem.Decode([]byte(*created.Certificate))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.TrimSpace(string(rest))) == 0 {
		t.Error("certificate holds only the leaf; want leaf followed by the intermediate")
	}
	if !strings.Contains(*created.Cas, "BEGIN CERTIFICATE") {
		t.Error("cas is empty")
	}

	list := listCerts(t, e, s)
	if len(list) != 1 || *list[0].ID != *created.ID {
		t.Fatalf("list = %d items, want the one created", len(list))
	}
	d := list[0]
	if *d.Subject != "CN="+leaf.Subject.CommonName || *d.Certificate != *created.Certificate {
		t.Errorf("detail subject %q / chain differ from the issued certificate", *d.Subject)
	}
	if !time.Time(*d.ValidTo).Equal(leaf.NotAfter) || !time.Time(*d.ValidFrom).Equal(leaf.NotBefore) {
		t.Errorf("validity %v..%v, leaf %v..%v", *d.ValidFrom, *d.ValidTo, leaf.NotBefore, leaf.NotAfter)
	}

	got, err := c.DetailCurrentAPISessionCertificate(
		&current_api_session.DetailCurrentAPISessionCertificateParams{ID: *created.ID}, s.auth)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Payload.Data.Fingerprint != *d.Fingerprint || len(*d.Fingerprint) != 40 {
		t.Errorf("fingerprint %q", *got.Payload.Data.Fingerprint)
	}

	if _, err := c.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: *created.ID}, s.auth); err != nil {
		t.Fatal(err)
	}
	if list := listCerts(t, e, s); len(list) != 0 {
		t.Errorf("after delete the list holds %d", len(list))
	}
	_, err = c.DetailCurrentAPISessionCertificate(
		&current_api_session.DetailCurrentAPISessionCertificateParams{ID: *created.ID}, s.auth)
	var nf *current_api_session.DetailCurrentAPISessionCertificateNotFound
	if !errors.As(err, &nf) {
		t.Errorf("detail after delete: %v, want 404", err)
	}
	if _, err := e.Server.Store().FindCertificateByFingerprint(context.Background(), s.id, *d.Fingerprint); !errors.Is(
		err, store.ErrNotFound) {
		t.Errorf("deleted certificate still stored: %v", err)
	}
}

// TestCrossSession shows B can neither see, fetch nor delete A's
// certificates, and that A's certificates leave the store when A logs out.
func TestCrossSession(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	a, b := newSession(t, e), newSession(t, e)
	c := e.Client(nil).CurrentAPISession
	certA := createCert(t, e, a, newCSR(t))
	createCert(t, e, b, newCSR(t))

	if list := listCerts(t, e, b); len(list) != 1 || *list[0].ID == *certA.ID {
		t.Fatalf("B lists %d certificates including A's", len(list))
	}
	_, err := c.DetailCurrentAPISessionCertificate(
		&current_api_session.DetailCurrentAPISessionCertificateParams{ID: *certA.ID}, b.auth)
	var nf *current_api_session.DetailCurrentAPISessionCertificateNotFound
	if !errors.As(err, &nf) || *nf.Payload.Error.Code != "NOT_FOUND" {
		t.Errorf("B fetching A's certificate: %v, want 404 NOT_FOUND", err)
	}
	_, err = c.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: *certA.ID}, b.auth)
	var dnf *current_api_session.DeleteCurrentAPISessionCertificateNotFound
	if !errors.As(err, &dnf) {
		t.Errorf("B deleting A's certificate: %v, want 404", err)
	}
	if list := listCerts(t, e, a); len(list) != 1 {
		t.Fatalf("A's certificate is gone after B's failed delete")
	}

	if _, err := c.DeleteCurrentAPISession(&current_api_session.DeleteCurrentAPISessionParams{}, a.auth); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Server.Store().GetCertificate(ctx, a.id, *certA.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("A's certificate survives A's logout: %v", err)
	}
	if list := listCerts(t, e, b); len(list) != 1 {
		t.Errorf("B lost its certificate when A logged out")
	}
}

// TestCertificatesExpire uses the clock: an expired session's certificates
// are gone from list and store, and a certificate past NotAfter is not
// listed, shown or deleted (404, no removal event) even while its session
// lives.
func TestCertificatesExpire(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		c.SessionTimeout = 30 * time.Minute
		c.Certs.Lifetime = 10 * time.Minute
	}})
	ctx := context.Background()
	s := newSession(t, e)
	old := createCert(t, e, s, newCSR(t))

	clock.Advance(11 * time.Minute) // past the first certificate's NotAfter
	fresh := createCert(t, e, s, newCSR(t))
	list := listCerts(t, e, s)
	if len(list) != 1 || *list[0].ID != *fresh.ID {
		t.Fatalf("list after NotAfter of the first: %d items, want only the fresh one", len(list))
	}
	_, err := e.Client(nil).CurrentAPISession.DetailCurrentAPISessionCertificate(
		&current_api_session.DetailCurrentAPISessionCertificateParams{ID: *old.ID}, s.auth)
	var nf *current_api_session.DetailCurrentAPISessionCertificateNotFound
	if !errors.As(err, &nf) {
		t.Errorf("expired certificate detail: %v, want 404", err)
	}
	cursor, err := e.Server.Store().EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Client(nil).CurrentAPISession.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: *old.ID}, s.auth)
	var dnf *current_api_session.DeleteCurrentAPISessionCertificateNotFound
	if !errors.As(err, &dnf) || *dnf.Payload.Error.Code != "NOT_FOUND" {
		t.Errorf("expired certificate delete: %v, want 404 NOT_FOUND", err)
	}
	if now, err := e.Server.Store().EventCursor(ctx); err != nil || now != cursor {
		t.Errorf("event cursor moved from %d to %d (%v): the delete recorded a removal", cursor, now, err)
	}

	// The session idles past its timeout: refused, and the sweeper removes
	// it with its certificates.
	clock.Advance(31 * time.Minute)
	_, err = e.Client(nil).CurrentAPISession.ListCurrentAPISessionCertificates(
		&current_api_session.ListCurrentAPISessionCertificatesParams{}, s.auth)
	var unauth *current_api_session.ListCurrentAPISessionCertificatesUnauthorized
	if !errors.As(err, &unauth) {
		t.Fatalf("list with an expired session: %v, want 401", err)
	}
	if _, err := e.Server.Registry().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{*old.ID, *fresh.ID} {
		if _, err := e.Server.Store().GetCertificate(ctx, s.id, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("certificate %s of an expired session still stored: %v", id, err)
		}
	}
}

// TestCertBackdate issues a certificate under the default --cert-backdate
// and under an explicit 0: the default backdates NotBefore by ca's default
// minute, and 0 does not backdate at all.
func TestCertBackdate(t *testing.T) {
	def, err := server.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	if def.Certs.Backdate != ca.DefaultBackdate {
		t.Errorf("--cert-backdate defaults to %s, want ca.DefaultBackdate (%s)", def.Certs.Backdate,
			ca.DefaultBackdate)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		config        func(*server.Config)
		wantNotBefore time.Time
	}{
		{"default", nil, now.Add(-time.Minute)},
		{"zero", func(c *server.Config) { c.Certs.Backdate = 0 }, now},
		{"five minutes", func(c *server.Config) { c.Certs.Backdate = 5 * time.Minute }, now.Add(-5 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			clock.Set(now)
			e := servertest.Start(t, servertest.Options{Clock: clock, Config: tc.config})
			leaf := e.IssueCertificate(t, e.Admin(t)).Leaf
			if !leaf.NotBefore.Equal(tc.wantNotBefore) || !leaf.NotAfter.Equal(now.Add(12*time.Hour)) {
				t.Errorf("valid %s to %s, want %s to %s", leaf.NotBefore, leaf.NotAfter, tc.wantNotBefore,
					now.Add(12*time.Hour))
			}
		})
	}
}

// TestCertificateCap shows the per-session cap answers 429 and stores
// nothing more.
func TestCertificateCap(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Certs.MaxCertsPerSession = 2
	}})
	s := newSession(t, e)
	createCert(t, e, s, newCSR(t))
	createCert(t, e, s, newCSR(t))
	csr := newCSR(t)
	_, err := e.Client(nil).CurrentAPISession.CreateCurrentAPISessionCertificate(
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, s.auth)
	var limited *current_api_session.CreateCurrentAPISessionCertificateTooManyRequests
	if !errors.As(err, &limited) || *limited.Payload.Error.Code != "RATE_LIMITED" {
		t.Fatalf("third certificate: %v, want 429 RATE_LIMITED", err)
	}
	if n := len(listCerts(t, e, s)); n != 2 {
		t.Errorf("%d certificates stored, want 2", n)
	}
}

// TestOpenSSLCSRs sends CSRs made by the openssl command line through the
// API and has openssl verify each issued leaf with the returned chain and
// cas.
func TestOpenSSLCSRs(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed; .ci/run installs it")
	}
	e := servertest.Start(t, servertest.Options{})
	s := newSession(t, e)
	dir := t.TempDir()
	keys := map[string][]string{
		"P-256":    {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"P-384":    {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"},
		"RSA-2048": {"-newkey", "rsa:2048"},
		"Ed25519":  {"-newkey", "ed25519"},
	}
	for name, args := range keys {
		t.Run(name, func(t *testing.T) {
			csrPath := filepath.Join(dir, name+".csr")
			cmd := exec.Command("openssl", append(append([]string{"req", "-new", "-nodes"}, args...),
				"-keyout", filepath.Join(dir, name+".key"), "-subj", "/CN=someone/O=asks for more",
				"-out", csrPath)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl req: %v\n%s", err, out)
			}
			csr, err := os.ReadFile(csrPath)
			if err != nil {
				t.Fatal(err)
			}
			created := createCert(t, e, s, string(csr))
			chain, cas := filepath.Join(dir, name+".chain"), filepath.Join(dir, name+".cas")
			if err := os.WriteFile(chain, []byte(*created.Certificate), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cas, []byte(*created.Cas), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "verify", "-purpose", "sslclient",
				"-CAfile", cas, "-untrusted", chain, chain).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl verify: %v\n%s", err, out)
			}
		})
	}
}

// TestBadCSRs sends malformed CSRs through the API: each is 400 with its
// code, and nothing is stored.
func TestBadCSRs(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	s := newSession(t, e)
	good := newCSR(t)
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff
	certPEM, err := os.ReadFile(filepath.Join(e.DataDir, "pki", "ca-bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(csr string) string {
		b, _ := json.Marshal(map[string]string{"csr": csr})
		return string(b)
	}
	tests := []struct {
		name  string
		body  string
		code  string
		field string
	}{
		{"empty", body(""), "COULD_NOT_PROCESS_CSR", ""},
		{"not pem", body("hello"), "COULD_NOT_PROCESS_CSR", ""},
		{"a certificate", body(string(certPEM)), "COULD_NOT_PROCESS_CSR", ""},
		{"two blocks", body(good + good), "COULD_NOT_PROCESS_CSR", ""},
		{"trailing bytes", body(good + "garbage"), "COULD_NOT_PROCESS_CSR", ""},
		{"garbage der", body(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST",
			Bytes: []byte("not der at all")}))), "COULD_NOT_PROCESS_CSR", ""},
		{"bad signature", body(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST",
			Bytes: tampered}))), "COULD_NOT_PROCESS_CSR", ""},
		{"100 KiB of pem noise", body("-----BEGIN CERTIFICATE REQUEST-----\n" +
			strings.Repeat("QUJD", 25600) + "\n-----END CERTIFICATE REQUEST-----\n"), "COULD_NOT_PROCESS_CSR", ""},
		{"missing csr", `{}`, "COULD_NOT_VALIDATE", "csr"},
		{"csr is a number", `{"csr": 5}`, "COULD_NOT_VALIDATE", "csr"},
		{"csr is null", `{"csr": null}`, "COULD_NOT_VALIDATE", "csr"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, env := rawCall(t, e, "POST", "/edge/client/v1/current-api-session/certificates",
				"application/json", tt.body, map[string]string{"zt-session": s.token})
			if status != 400 || *env.Error.Code != tt.code {
				t.Fatalf("got %d %+v, want 400 %s", status, env.Error, tt.code)
			}
			if tt.field != "" && (env.Error.Cause == nil || env.Error.Cause.Field != tt.field) {
				t.Errorf("cause = %+v, want field %s", env.Error.Cause, tt.field)
			}
			if _, n, err := e.Server.Store().ListCertificates(ctx, s.id, time.Now(),
				store.Page{Limit: 1}); err != nil || n != 0 {
				t.Errorf("%d certificates stored after a bad CSR (%v)", n, err)
			}
		})
	}
}

func fingerprintOf(c *x509.Certificate) string { return ca.Fingerprint(c.Raw) }

func authFor(token string) runtime.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", token)
}

package servertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
)

// Session is a logged-in API session as a test sees it.
type Session struct {
	Token      string
	ID         string
	IdentityID string
	Auth       runtime.ClientAuthInfoWriter
}

// Login logs in with a password and fails the test if it cannot.
func (e *Env) Login(t testing.TB, username, password string) *Session {
	t.Helper()
	ok, err := e.Client(nil).Authentication.Authenticate(&authentication.AuthenticateParams{
		Method: "password",
		Auth:   &models.Authenticate{Username: username, Password: strfmt.Password(password)},
	})
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return &Session{
		Token:      ok.ZtSession,
		ID:         *ok.Payload.Data.ID,
		IdentityID: *ok.Payload.Data.IdentityID,
		Auth:       httptransport.APIKeyAuth("zt-session", "header", ok.ZtSession),
	}
}

// Admin logs in as the admin identity.
func (e *Env) Admin(t testing.TB) *Session {
	t.Helper()
	return e.Login(t, "admin", AdminPassword)
}

// CreateIdentity creates an identity of the given type ("User" or
// "Router") with a password authenticator whose username is its name, and
// returns the identity's id.
func (e *Env) CreateIdentity(t testing.TB, admin *Session, name, typ, password string) string {
	t.Helper()
	c := e.Client(nil)
	it := models.IdentityType(typ)
	created, err := c.Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &it},
	}, admin.Auth)
	if err != nil {
		t.Fatalf("create identity %s: %v", name, err)
	}
	id := *created.Payload.Data.ID
	method := "updb"
	if _, err := c.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
		Body: &models.AuthenticatorCreate{
			Method: &method, IdentityID: &id, Username: name, Password: strfmt.Password(password),
		},
	}, admin.Auth); err != nil {
		t.Fatalf("create authenticator of %s: %v", name, err)
	}
	return id
}

// NewCSR returns a P-256 key and the PEM of a CSR for it.
func NewCSR(t testing.TB) (crypto.Signer, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "test"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// Issued is a certificate issued to a test session.
type Issued struct {
	ID      string
	Chain   string // leaf and intermediates, PEM
	CAs     string // the cas bundle
	Leaf    *x509.Certificate
	TLSCert tls.Certificate // key and chain, ready for a TLS client
}

// IssueCertificate makes a key and a CSR and has the session issue a
// certificate for it.
func (e *Env) IssueCertificate(t testing.TB, s *Session) *Issued {
	t.Helper()
	key, csr := NewCSR(t)
	res, err := e.Client(nil).CurrentAPISession.CreateCurrentAPISessionCertificate(
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, s.Auth)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	d := res.Payload.Data
	out := &Issued{ID: *d.ID, Chain: *d.Certificate, CAs: *d.Cas}
	rest := []byte(out.Chain)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		out.TLSCert.Certificate = append(out.TLSCert.Certificate, block.Bytes)
	}
	out.TLSCert.PrivateKey = key
	if out.Leaf, err = x509.ParseCertificate(out.TLSCert.Certificate[0]); err != nil {
		t.Fatal(err)
	}
	out.TLSCert.Leaf = out.Leaf
	return out
}

package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// clientCert makes a self-signed client certificate valid from notBefore to
// notAfter: the kind a device brings from its own PKI.
func clientCert(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func certPEM(c tls.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
}

// TestCertLogin logs in with a registered client certificate over a real
// mTLS handshake; the session lists that certificate as its own and an edge
// router admits it with the session's token. Unregistered, expired and
// absent certificates are refused.
func TestCertLogin(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	c := e.Client(nil)
	now := time.Now()
	registered := clientCert(t, "device-1", now.Add(-time.Hour), now.Add(time.Hour))
	expired := clientCert(t, "device-2", now.Add(-2*time.Hour), now.Add(-time.Hour))

	name := "device-1"
	it := models.IdentityType("User")
	created, err := c.Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &it},
	}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	id := *created.Payload.Data.ID
	method := "cert"
	for _, cert := range []tls.Certificate{registered, expired} {
		if _, err := c.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
			Body: &models.AuthenticatorCreate{Method: &method, IdentityID: &id, CertPem: certPEM(cert)},
		}, admin.Auth); err != nil {
			t.Fatal(err)
		}
	}

	certLogin := func(cert *tls.Certificate) (*authentication.AuthenticateOK, error) {
		return e.Client(e.NewHTTPClient(cert)).Authentication.Authenticate(
			&authentication.AuthenticateParams{Method: "cert", Auth: &models.Authenticate{}})
	}
	ok, err := certLogin(&registered)
	if err != nil {
		t.Fatalf("login with a registered certificate: %v", err)
	}
	s := &servertest.Session{Token: ok.ZtSession, ID: *ok.Payload.Data.ID, IdentityID: *ok.Payload.Data.IdentityID}
	if s.IdentityID != id {
		t.Errorf("logged in as %s, want %s", s.IdentityID, id)
	}
	list := listCerts(t, e, session{token: s.Token, id: s.ID, auth: authFor(s.Token)})
	if len(list) != 1 || *list[0].Fingerprint != fingerprintOf(registered.Leaf) ||
		*list[0].Subject != "CN=device-1" {
		t.Fatalf("session certificates = %+v, want the login certificate", list)
	}

	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	if _, code := admit(t, e, r, s.Token, certPEM(registered)); code != "" {
		t.Errorf("router admission of the login certificate: %s", code)
	}

	stranger := clientCert(t, "stranger", now.Add(-time.Hour), now.Add(time.Hour))
	for name, cert := range map[string]*tls.Certificate{
		"unregistered": &stranger, "expired": &expired, "none": nil,
	} {
		_, err := certLogin(cert)
		var unauth *authentication.AuthenticateUnauthorized
		if !errors.As(err, &unauth) || *unauth.Payload.Error.Code != "INVALID_AUTH" {
			t.Errorf("%s certificate: %v, want 401 INVALID_AUTH", name, err)
		}
	}
}

// TestExtJWTLogin logs in with a JWT from an external issuer whose keys a
// JWKS endpoint (TLS, started here) serves.
func TestExtJWTLogin(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		enc := base64.RawURLEncoding
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
			"x": enc.EncodeToString(key.X.FillBytes(make([]byte, 32))),
			"y": enc.EncodeToString(key.Y.FillBytes(make([]byte, 32))),
		}}})
	}))
	t.Cleanup(jwks.Close)
	e := servertest.Start(t, servertest.Options{JWKSClient: jwks.Client()})
	admin := e.Admin(t)
	c := e.Client(nil)
	aliceID := e.CreateIdentity(t, admin, "alice", "User", "alice-password")

	name, issuer, audience, endpoint := "idp", "https://idp.example", "sessioncert", jwks.URL+"/jwks"
	if _, err := c.ExternalJwtSigners.CreateExternalJWTSigner(&external_jwt_signers.CreateExternalJWTSignerParams{
		Body: &models.ExternalJwtSignerCreate{Name: &name, Issuer: &issuer, Audience: &audience,
			JwksEndpoint: endpoint},
	}, admin.Auth); err != nil {
		t.Fatal(err)
	}
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := sign(jwt.MapClaims{"iss": issuer, "aud": audience, "sub": aliceID,
		"exp": time.Now().Add(time.Minute).Unix()})
	expired := sign(jwt.MapClaims{"iss": issuer, "aud": audience, "sub": aliceID,
		"exp": time.Now().Add(-time.Hour).Unix()})

	for _, tc := range []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"valid", "Bearer " + valid, 200, ""},
		{"expired", "Bearer " + expired, 401, `error="expired"`},
		{"missing", "", 401, `error="missing"`},
		{"garbage", "Bearer not.a.jwt", 401, `error="invalid"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Authorization"] = tc.header
			}
			status, h, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=ext-jwt",
				"application/json", `{}`, hdr)
			if status != tc.status {
				t.Fatalf("status %d %+v, want %d", status, env.Error, tc.status)
			}
			if tc.status == 200 {
				if h.Get("zt-session") == "" {
					t.Error("no zt-session header")
				}
				return
			}
			ch := h.Get("WWW-Authenticate")
			if *env.Error.Code != "INVALID_AUTH" || !strings.HasPrefix(ch, `Bearer realm="openziti-primary-ext-jwt"`) ||
				!strings.Contains(ch, tc.challenge) {
				t.Errorf("code %s, WWW-Authenticate %q, want INVALID_AUTH with %s", *env.Error.Code, ch, tc.challenge)
			}
		})
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// TestCLICertAndJWTLogins logs in with a registered client certificate and
// with an external JWT, both set up through the CLI's admin commands.
func TestCLICertAndJWTLogins(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := newCLI(t, e)
	admin.ok("login", "-u", "admin", "--password-file", passwordFile(t, servertest.AdminPassword))
	var dave struct{ ID string }
	admin.okJSON(&dave, "identity", "create", "dave")

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "dave.pem"), filepath.Join(dir, "dave-key.pem")
	writeClientCert(t, "dave", certFile, keyFile)
	admin.ok("authenticator", "create", "--identity", dave.ID, "--method", "cert",
		"--cert-file", certFile)

	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "idp.pem")
	pubDER, err := x509.MarshalPKIXPublicKey(jwtKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, pubFile, "PUBLIC KEY", pubDER, 0o644)
	admin.ok("signer", "create", "idp", "--issuer", "https://idp.example",
		"--audience", "sessioncert", "--cert-file", pubFile)
	jwtFile := filepath.Join(dir, "dave.jwt")
	claims := jwt.MapClaims{"iss": "https://idp.example", "aud": "sessioncert", "sub": dave.ID,
		"exp": time.Now().Add(time.Hour).Unix()}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(jwtKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwtFile, []byte(signed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		cli       *cli
		args      []string
		wantCerts int // certificates the new session holds
	}{
		// The contract lists the login certificate among the session's own.
		{"cert", newCLI(t, e),
			[]string{"login", "--method", "cert", "--cert", certFile, "--key", keyFile}, 1},
		{"ext-jwt from a file", newCLI(t, e),
			[]string{"login", "--method", "ext-jwt", "--jwt-file", jwtFile}, 0},
		{"ext-jwt from the environment", newCLI(t, e).with("SESSIONCERT_JWT=" + signed),
			[]string{"login", "--method", "ext-jwt"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cli.ok(tt.args...)
			var who struct{ IdentityID string }
			tt.cli.okJSON(&who, "whoami")
			if who.IdentityID != dave.ID {
				t.Errorf("logged in as %q, want dave %s", who.IdentityID, dave.ID)
			}
			var certs []map[string]any
			tt.cli.okJSON(&certs, "cert", "list")
			if len(certs) != tt.wantCerts {
				t.Errorf("the session holds %d certificates, want %d", len(certs), tt.wantCerts)
			}
			tt.cli.ok("cert", "create", "--out-dir", t.TempDir())
			tt.cli.ok("logout")
		})
	}

	res := newCLI(t, e).run("login", "--method", "ext-jwt", "--jwt", "not.a.jwt")
	if res.code != exitRefused || !strings.HasPrefix(res.stderr, "error: INVALID_AUTH: ") {
		t.Errorf("login with a bad JWT: %s", res)
	}
}

// writeClientCert writes a self-signed client certificate and its key, the
// kind a device brings from a PKI of its own.
func writeClientCert(t *testing.T, cn, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER, 0o600)
}

func writePEM(t *testing.T, path, typ string, der []byte, perm os.FileMode) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
}

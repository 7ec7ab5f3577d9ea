package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// publicKeyPEM returns key's public half as a PEM PUBLIC KEY block.
func publicKeyPEM(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// selfSignedPEM returns a self-signed certificate of key as PEM, the way an
// identity provider publishes its signing key.
func selfSignedPEM(t *testing.T, key crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestSignerKeyRefused: a signer key that no login could verify with (a
// P-521 certificate, an RSA key of 1024 bits, a DSA key made by openssl) is
// refused with 400 COULD_NOT_VALIDATE on certPem, at create and at update,
// and changes nothing; the keys logins accept are accepted.
func TestSignerKeyRefused(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	hdr := map[string]string{"zt-session": admin.Token}
	const signers = "/edge/management/v1/external-jwt-signers"

	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // the weak key under test
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dsa, err := os.ReadFile(filepath.Join("testdata", "signer-dsa2048.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}

	body := func(name, pem string) string {
		b, err := json.Marshal(map[string]string{"name": name, "issuer": "https://" + name + ".example",
			"audience": "sessioncert", "certPem": pem})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	certPem := func(pem string) string {
		b, err := json.Marshal(map[string]string{"certPem": pem})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// The signer whose key the updates try to replace.
	if status, _, env := rawCall(t, e, "POST", signers, "application/json", body("good", publicKeyPEM(t, p256)),
		hdr); status != 201 {
		t.Fatalf("create a signer with a P-256 key: %d %+v", status, env.Error)
	}
	ctx := context.Background()
	st := e.Server.Store()
	list, _, err := st.ListExtJWTSigners(ctx, store.Page{Limit: 1})
	if err != nil || len(list) != 1 {
		t.Fatalf("signers %v (%v), want the one just created", list, err)
	}
	good := list[0].ID

	for _, tt := range []struct {
		name, pem string
		accepted  bool
	}{
		{"P-256 public key", publicKeyPEM(t, p256), true},
		{"P-384 certificate", selfSignedPEM(t, p384), true},
		{"Ed25519 public key", publicKeyPEM(t, ed), true},
		{"P-521 certificate", selfSignedPEM(t, p521), false},
		{"P-521 public key", publicKeyPEM(t, p521), false},
		{"RSA 1024 public key", publicKeyPEM(t, rsa1024), false},
		{"DSA 2048 public key made by openssl", string(dsa), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, before, err := st.ListExtJWTSigners(ctx, store.Page{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			stored, err := st.GetExtJWTSigner(ctx, good)
			if err != nil {
				t.Fatal(err)
			}

			name := fmt.Sprintf("idp-%d", before)
			create, _, createEnv := rawCall(t, e, "POST", signers, "application/json", body(name, tt.pem), hdr)
			update, _, updateEnv := rawCall(t, e, "PATCH", signers+"/"+good, "application/json",
				certPem(tt.pem), hdr)
			if tt.accepted {
				if create != 201 || update != 200 {
					t.Errorf("create %d %+v, update %d %+v; want 201 and 200", create, createEnv.Error,
						update, updateEnv.Error)
				}
				return
			}
			for op, r := range map[string]struct {
				status int
				env    models.APIErrorEnvelope
			}{"create": {create, createEnv}, "update": {update, updateEnv}} {
				if r.status != 400 || *r.env.Error.Code != "COULD_NOT_VALIDATE" || r.env.Error.Cause == nil ||
					r.env.Error.Cause.Field != "certPem" {
					t.Errorf("%s: %d %+v, want 400 COULD_NOT_VALIDATE on certPem", op, r.status, r.env.Error)
				}
			}
			if _, after, err := st.ListExtJWTSigners(ctx, store.Page{Limit: 1}); err != nil || after != before {
				t.Errorf("signers went from %d to %d (%v)", before, after, err)
			}
			if now, err := st.GetExtJWTSigner(ctx, good); err != nil || now.CertPEM != stored.CertPEM {
				t.Errorf("the refused update changed the signer's key (%v)", err)
			}
		})
	}

	// A signer stored with such a key before the check existed can still be
	// switched off without replacing its key.
	legacy := &store.ExtJWTSigner{ID: "legacy-id", Name: "legacy", Issuer: "https://legacy.example",
		Audience: "sessioncert", CertPEM: publicKeyPEM(t, p521), ClaimsProperty: "sub", Enabled: true}
	if err := st.CreateExtJWTSigner(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if status, _, env := rawCall(t, e, "PATCH", signers+"/"+legacy.ID, "application/json", `{"enabled":false}`,
		hdr); status != 200 {
		t.Errorf("disable a signer stored with a P-521 key: %d %+v, want 200", status, env.Error)
	}
}

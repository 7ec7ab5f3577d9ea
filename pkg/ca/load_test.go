package ca

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// keyBlock encodes key as a PEM block in the named encoding.
func keyBlock(t *testing.T, key crypto.Signer, encoding string) []byte {
	t.Helper()
	var (
		der []byte
		typ string
		err error
	)
	switch encoding {
	case "PKCS8":
		typ = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "SEC1":
		typ = "EC PRIVATE KEY"
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "PKCS1":
		typ = "RSA PRIVATE KEY"
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadPEMKeyEncodings(t *testing.T) {
	tests := []struct {
		kind, encoding string
		wantSigAlg     x509.SignatureAlgorithm
	}{
		{"P-256", "PKCS8", x509.ECDSAWithSHA256},
		{"P-256", "SEC1", x509.ECDSAWithSHA256},
		{"P-384", "SEC1", x509.ECDSAWithSHA384},
		{"RSA-2048", "PKCS8", x509.SHA256WithRSA},
		{"RSA-2048", "PKCS1", x509.SHA256WithRSA},
		{"Ed25519", "PKCS8", x509.PureEd25519},
	}
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.encoding, func(t *testing.T) {
			pki := newTestPKI(t, testNow, tt.kind)
			certPEM := []byte(pemOf(pki.inter, pki.root))
			keyPEM := keyBlock(t, pki.interKey, tt.encoding)

			chain, key, err := LoadPEM(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("LoadPEM: %v", err)
			}
			if len(chain) != 2 || !chain[0].Equal(pki.inter) || !chain[1].Equal(pki.root) {
				t.Fatalf("LoadPEM chain has %d certificates, not the intermediate and root",
					len(chain))
			}
			ca, err := New(Config{Chain: chain, Signer: key, TrustDomain: testTD,
				Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatalf("New: %v", err)
			}

			got, err := ca.Sign(testRequest(csr))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got.Leaf.SignatureAlgorithm != tt.wantSigAlg {
				t.Errorf("signature algorithm = %v, want %v", got.Leaf.SignatureAlgorithm,
					tt.wantSigAlg)
			}
			if _, err := ca.VerifyClient([]*x509.Certificate{got.Leaf}); err != nil {
				t.Errorf("VerifyClient: %v", err)
			}
		})
	}
}

func TestLoadPEMErrors(t *testing.T) {
	pki := newTestPKI(t, testNow, "P-256")
	certPEM := []byte(pemOf(pki.inter, pki.root))
	keyPEM := keyBlock(t, pki.interKey, "PKCS8")

	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte, headers map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der, Headers: headers})
	}
	join := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	tests := []struct {
		name string
		cert []byte
		key  []byte
		want error // nil: any error
	}{
		{name: "no certificate", cert: keyPEM, key: keyPEM, want: ErrNoCertificate},
		{name: "empty certificate", cert: nil, key: keyPEM, want: ErrNoCertificate},
		{name: "broken certificate", cert: block("CERTIFICATE", []byte("junk"), nil), key: keyPEM},
		{name: "no key", cert: certPEM, key: certPEM, want: ErrNoKey},
		{name: "two keys", cert: certPEM, key: join(keyPEM, keyPEM), want: ErrMultipleKeys},
		{name: "pkcs8 encrypted", cert: certPEM,
			key: block("ENCRYPTED PRIVATE KEY", []byte{1}, nil), want: ErrEncryptedKey},
		{name: "legacy encrypted", cert: certPEM, key: block("EC PRIVATE KEY", []byte{1},
			map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}),
			want: ErrEncryptedKey},
		{name: "broken key", cert: certPEM, key: block("EC PRIVATE KEY", []byte("junk"), nil)},
		{name: "x25519 key", cert: certPEM, key: block("PRIVATE KEY", x25519DER, nil),
			want: ErrUnsupportedKey},
		{name: "rsa-1024 key", cert: certPEM,
			key: keyBlock(t, testKey(t, "RSA-1024", "ca"), "PKCS1"), want: ErrUnsupportedKey},
		{name: "p-224 key", cert: certPEM, key: keyBlock(t, testKey(t, "P-224", "ca"), "SEC1"),
			want: ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, key, err := LoadPEM(tt.cert, tt.key)
			if err == nil || chain != nil || key != nil {
				t.Fatalf("LoadPEM = %d certificates, key %v, error %v; want only an error",
					len(chain), key != nil, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("LoadPEM error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLoadPEMSkipsOtherBlocks(t *testing.T) {
	pki := newTestPKI(t, testNow, "P-256")
	// What openssl ecparam -genkey writes, and a bundle with text around it.
	keyPEM := append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"+
		"-----END EC PARAMETERS-----\n"), keyBlock(t, pki.interKey, "SEC1")...)
	certPEM := []byte("subject=CN=test intermediate\n" + pemOf(pki.inter) +
		"issuer=CN=test root\n" + pemOf(pki.root))

	chain, key, err := LoadPEM(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadPEM: %v", err)
	}
	if len(chain) != 2 || !publicKeysEqual(key.Public(), pki.inter.PublicKey) {
		t.Errorf("LoadPEM = %d certificates and a key that matches: %v", len(chain),
			publicKeysEqual(key.Public(), pki.inter.PublicKey))
	}
}

func TestLoadFiles(t *testing.T) {
	pki := newTestPKI(t, testNow, "P-256")
	dir := t.TempDir()
	certPath := filepath.Join(dir, "ca.pem")
	keyPath := filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certPath, []byte(pemOf(pki.inter, pki.root)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyBlock(t, pki.interKey, "PKCS8"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		cert, key  string
		wantExists bool
	}{
		{"both present", certPath, keyPath, true},
		{"no certificate file", filepath.Join(dir, "missing.pem"), keyPath, false},
		{"no key file", certPath, filepath.Join(dir, "missing.key"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, key, err := LoadFiles(tt.cert, tt.key)
			if tt.wantExists {
				if err != nil || len(chain) != 2 || key == nil {
					t.Fatalf("LoadFiles = %d certificates, %v", len(chain), err)
				}
				return
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("LoadFiles error = %v, want fs.ErrNotExist", err)
			}
		})
	}
}

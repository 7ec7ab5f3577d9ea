package sdk_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/sdk"
)

// TestNewCSR checks that every key type yields a CSR that parses, verifies
// and carries the key.
func TestNewCSR(t *testing.T) {
	for _, kt := range append([]sdk.KeyType{""}, sdk.KeyTypes()...) {
		t.Run(string(kt), func(t *testing.T) {
			key, err := sdk.GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			csrPEM, err := sdk.NewCSR(key)
			if err != nil {
				t.Fatal(err)
			}
			block, rest := pem.Decode([]byte(csrPEM))
			if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
				t.Fatalf("not one CERTIFICATE REQUEST block: %q", csrPEM)
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("signature: %v", err)
			}
			pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !pub.Equal(csr.PublicKey) {
				t.Error("the csr does not carry the key")
			}
		})
	}
	if _, err := sdk.GenerateKey("p224"); !errors.Is(err, sdk.ErrUnknownKeyType) {
		t.Errorf("p224: %v, want ErrUnknownKeyType", err)
	}
}

// TestParseChain checks what ParseChain accepts and refuses.
func TestParseChain(t *testing.T) {
	key, err := sdk.GenerateKey(sdk.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "leaf"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	otherPEM, err := sdk.MarshalKeyPEM(other)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		chain   string
		key     crypto.Signer
		wantErr bool
	}{
		{"leaf", leaf, key, false},
		{"leaf and intermediate", leaf + leaf, key, false},
		{"empty", "", key, true},
		{"not pem", "certificate", key, true},
		{"private key block", string(otherPEM), key, true},
		{"trailing bytes", leaf + "junk", key, true},
		{"another key", leaf, other, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := sdk.ParseChain(tt.chain, tt.key)
			if tt.wantErr {
				if !errors.Is(err, sdk.ErrBadChain) {
					t.Errorf("got %v, want ErrBadChain", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cert.Leaf == nil || cert.Leaf.Subject.CommonName != "leaf" ||
				cert.PrivateKey == nil {
				t.Errorf("incomplete certificate: %+v", cert)
			}
		})
	}
}

package ca

import (
	"crypto"
	"errors"
	"io"
	"testing"
)

// failingSigner stands for a KMS that holds the right public key but
// cannot sign: unreachable, or its key disabled.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("kms unreachable")
}

func TestCheckKey(t *testing.T) {
	for _, kind := range []string{"P-256", "RSA-2048", "Ed25519"} {
		t.Run(kind, func(t *testing.T) {
			pki := newTestPKI(t, testNow, kind)
			ca, err := New(Config{Chain: pki.chain(), Signer: pki.interKey, TrustDomain: testTD,
				Now: newFakeClock(testNow).Now})
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.CheckKey(); err != nil {
				t.Errorf("CheckKey with a working key: %v", err)
			}
		})
	}

	pki := newTestPKI(t, testNow, "P-256")
	ca, err := New(Config{Chain: pki.chain(), Signer: failingSigner{pki.interKey}, TrustDomain: testTD,
		Now: newFakeClock(testNow).Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.CheckKey(); !errors.Is(err, ErrKeyUnusable) {
		t.Errorf("CheckKey with a failing signer = %v, want ErrKeyUnusable", err)
	}
}

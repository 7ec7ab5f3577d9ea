package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrKeyUnusable is returned by CheckKey when the signer cannot produce a
// signature that the signing certificate's public key verifies.
var ErrKeyUnusable = errors.New("ca: signing key is unusable")

// CheckKey signs a probe with the CA's signer and verifies the signature with
// the signing certificate's public key. It is the health check of a key that
// may live in a KMS or HSM: it fails when the signer is unreachable or holds
// another key. It returns ErrKeyUnusable, wrapping the signer's error if any.
func (c *CA) CheckKey() error {
	digest := sha256.Sum256([]byte("sessioncert ca health probe"))
	pub := c.cert.PublicKey
	var (
		sig []byte
		err error
	)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		msg := digest[:]
		if sig, err = c.signer.Sign(c.rand, msg, crypto.Hash(0)); err == nil && !ed25519.Verify(k, msg, sig) {
			err = errors.New("signature does not verify")
		}
	case *ecdsa.PublicKey:
		if sig, err = c.signer.Sign(c.rand, digest[:], crypto.SHA256); err == nil &&
			!ecdsa.VerifyASN1(k, digest[:], sig) {
			err = errors.New("signature does not verify")
		}
	case *rsa.PublicKey:
		if sig, err = c.signer.Sign(c.rand, digest[:], crypto.SHA256); err == nil {
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig)
		}
	default:
		err = fmt.Errorf("unsupported key %T", pub)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeyUnusable, err)
	}
	return nil
}

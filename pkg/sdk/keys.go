package sdk

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// KeyType names the kind of private key generated for a certificate
// request. The zero value means KeyP256.
type KeyType string

// The key types the controller accepts. RSA keys below 2048 bits and other
// curves are refused by the controller, so they are not offered.
const (
	KeyP256    KeyType = "p256"    // ECDSA on NIST P-256, the default
	KeyP384    KeyType = "p384"    // ECDSA on NIST P-384
	KeyEd25519 KeyType = "ed25519" // Ed25519
	KeyRSA2048 KeyType = "rsa2048" // RSA, 2048-bit modulus
	KeyRSA4096 KeyType = "rsa4096" // RSA, 4096-bit modulus
)

// KeyTypes returns every KeyType, the default first.
func KeyTypes() []KeyType {
	return []KeyType{KeyP256, KeyP384, KeyEd25519, KeyRSA2048, KeyRSA4096}
}

// Errors returned by the key and certificate helpers.
var (
	// ErrUnknownKeyType is returned by GenerateKey and New for a KeyType
	// that is not one of KeyTypes.
	ErrUnknownKeyType = errors.New("sdk: unknown key type")

	// ErrBadChain is returned by ParseChain when the PEM holds no
	// certificate, holds something else, or its leaf is not for the key.
	ErrBadChain = errors.New("sdk: bad certificate chain")
)

// GenerateKey returns a new private key of type t from crypto/rand; an empty
// t means KeyP256. It returns ErrUnknownKeyType for any other value.
//
// There is no randomness parameter: since Go 1.26 the standard key
// generators ignore the one they are given.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyEd25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKeyType, string(t))
}

// NewCSR returns one PEM "CERTIFICATE REQUEST" block signed by key. The
// request carries no subject or extensions: the controller takes only the
// public key from it and decides everything else itself.
func NewCSR(key crypto.Signer) (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return "", fmt.Errorf("sdk: create csr: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// MarshalKeyPEM returns key as one PKCS #8 "PRIVATE KEY" PEM block, the form
// that OpenSSL and tls.X509KeyPair read for every key type.
func MarshalKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sdk: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseChain assembles a tls.Certificate from chainPEM, the leaf followed by
// its intermediates as the controller returns them, and the private key of
// the leaf. Leaf is set. It returns an error matching ErrBadChain when the
// PEM holds no certificate, a block of another type or trailing bytes, or
// when the leaf's public key is not key's.
func ParseChain(chainPEM string, key crypto.Signer) (*tls.Certificate, error) {
	out := &tls.Certificate{PrivateKey: key}
	rest := []byte(chainPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected pem block %q", ErrBadChain, block.Type)
		}
		out.Certificate = append(out.Certificate, block.Bytes)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes after the last certificate", ErrBadChain)
	}
	if len(out.Certificate) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrBadChain)
	}
	leaf, err := x509.ParseCertificate(out.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChain, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: the leaf is not for this key", ErrBadChain)
	}
	out.Leaf = leaf
	return out, nil
}

// ParseCAs returns a pool of the certificates in casPEM, the "cas" bundle a
// create reply carries. It returns an error matching ErrBadChain when the
// bundle holds no certificate.
func ParseCAs(casPEM string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(casPEM)) {
		return nil, fmt.Errorf("%w: the ca bundle holds no certificate", ErrBadChain)
	}
	return pool, nil
}

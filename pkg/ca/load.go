package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Errors returned by LoadPEM and LoadFiles, besides ErrNoCertificate and
// ErrUnsupportedKey.
var (
	// ErrNoKey is returned when the key PEM holds no private key block.
	ErrNoKey = errors.New("ca: no private key")

	// ErrMultipleKeys is returned when the key PEM holds more than one
	// private key block, since which one signs would be a guess.
	ErrMultipleKeys = errors.New("ca: more than one private key")

	// ErrEncryptedKey is returned for a password-protected key, which this
	// package does not decrypt.
	ErrEncryptedKey = errors.New("ca: encrypted private keys are not supported")
)

// LoadFiles reads the files at certPath and keyPath and parses them as
// LoadPEM does. Read errors are returned as from os.ReadFile and name the
// file; the others are those of LoadPEM.
func LoadFiles(certPath, keyPath string) ([]*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath) //nolint:gosec // G304: operator-chosen path
	if err != nil {
		return nil, nil, fmt.Errorf("ca: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath) //nolint:gosec // G304: operator-chosen path
	if err != nil {
		return nil, nil, fmt.Errorf("ca: read key: %w", err)
	}
	return LoadPEM(certPEM, keyPEM)
}

// LoadPEM parses a CA's certificates and private key, ready for Config.Chain
// and Config.Signer. certPEM holds the signing certificate first, then
// optionally the certificates above it; blocks of other types and text
// between blocks are skipped. keyPEM holds one private key, as PKCS #8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY"),
// of type ECDSA, RSA or Ed25519; other blocks, such as "EC PARAMETERS", are
// skipped. It does not check that the key matches the certificate: New does.
//
// It returns ErrNoCertificate, ErrNoKey, ErrMultipleKeys, ErrEncryptedKey,
// ErrUnsupportedKey, or a parse error naming the block.
func LoadPEM(certPEM, keyPEM []byte) ([]*x509.Certificate, crypto.Signer, error) {
	chain, err := parseCertificates(certPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return chain, key, nil
}

// parseCertificates returns every CERTIFICATE block of data, in order.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca: parse certificate %d: %w", len(chain), err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	return chain, nil
}

// parsePrivateKey returns the only private key of data.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest

		var (
			parsed any
			err    error
		)
		switch block.Type {
		case "PRIVATE KEY":
			parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			parsed, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, ErrEncryptedKey
		default:
			continue
		}
		// Legacy OpenSSL encryption keeps the usual type and marks the block
		// with headers; its bytes would only fail to parse.
		if _, ok := block.Headers["DEK-Info"]; ok {
			return nil, ErrEncryptedKey
		}
		if err != nil {
			return nil, fmt.Errorf("ca: parse %s: %w", block.Type, err)
		}
		if key != nil {
			return nil, ErrMultipleKeys
		}
		if key, err = signerOf(parsed); err != nil {
			return nil, err
		}
	}
	if key == nil {
		return nil, ErrNoKey
	}
	return key, nil
}

// signerOf narrows a parsed private key to the types the CA signs with.
func signerOf(parsed any) (crypto.Signer, error) {
	var key crypto.Signer
	switch k := parsed.(type) {
	case *ecdsa.PrivateKey:
		key = k
	case *rsa.PrivateKey:
		key = k
	case ed25519.PrivateKey:
		key = k
	default:
		return nil, fmt.Errorf("%w: private key of type %T", ErrUnsupportedKey, parsed)
	}
	if kerr := checkPublicKey(key.Public()); kerr != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedKey, kerr.Detail)
	}
	return key, nil
}

package ca

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // G505: the wire contract names certificates by SHA-1
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"
)

// serialBytes is the size of a serial number's random part: 128 bits is
// twice the 64 bits the CA/Browser Forum asks for and still encodes within
// the 20 octets RFC 5280 allows.
const serialBytes = 16

// Errors returned by Sign, besides ErrInvalidID, ErrCAExpired,
// ErrCANotYetValid and *CSRError.
var (
	// ErrNoCSR is returned by Sign when SignRequest.CSR is nil.
	ErrNoCSR = errors.New("ca: no csr")

	// ErrSelfCheck is returned by Sign when the certificate it just signed
	// does not parse back, or its signature does not verify under the
	// signing certificate's key, or it does not verify against the CA's
	// chain. It points at a faulty signer or chain, not at the request.
	ErrSelfCheck = errors.New("ca: issued certificate failed its self-check")

	// ErrSignerFailed is returned by Sign, wrapping the signer's error, when
	// Config.Signer cannot sign: a KMS or HSM that cannot be reached, or
	// whose key is disabled.
	ErrSignerFailed = errors.New("ca: signer failed")
)

// CannotSign reports whether err, returned by Sign, means that the CA cannot
// issue any certificate now, whatever the request: its chain is outside its
// validity (ErrCAExpired, ErrCANotYetValid), its signer fails
// (ErrSignerFailed), or what it signs does not verify (ErrSelfCheck). Such a
// CA needs its operator, not a different request.
func CannotSign(err error) bool {
	return errors.Is(err, ErrCAExpired) || errors.Is(err, ErrCANotYetValid) ||
		errors.Is(err, ErrSignerFailed) || errors.Is(err, ErrSelfCheck)
}

// SignRequest is what Sign needs to issue one API Session Certificate.
type SignRequest struct {
	// CSR is a request returned by ParseCSR. Only its public key is used;
	// its signature is not checked again.
	CSR *x509.CertificateRequest

	// IdentityID becomes the subject's common name and, with the two ids
	// below, the SPIFFE id; see SessionCertID for what each may hold.
	IdentityID string
	// APISessionID is the id of the API session the certificate belongs to.
	APISessionID string
	// CertificateID is the id under which the certificate is recorded.
	CertificateID string
}

// Issued is a certificate issued by Sign.
type Issued struct {
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
	// DER is the certificate's DER encoding.
	DER []byte
	// ChainPEM is the leaf followed by the CA's ChainPEM: what a client
	// presents, without a self-signed root.
	ChainPEM string
	// Fingerprint is Fingerprint(DER).
	Fingerprint string
	// Serial is the serial number in lower-case hexadecimal without leading
	// zeros.
	Serial string
	// KeyType is KeyType of the certificate's public key.
	KeyType string
	// SPIFFEID is the certificate's only URI SAN.
	SPIFFEID string
	// NotBefore and NotAfter are the validity bounds as encoded in the
	// certificate, in UTC and whole seconds.
	NotBefore time.Time
	NotAfter  time.Time
}

// Sign issues an API Session Certificate for the public key of req.CSR. The
// CSR's subject, SANs, extensions and key usages are ignored. The leaf has
// the common name req.IdentityID and nothing else in its subject; exactly one
// URI SAN, SessionCertID of the three ids; key usage digital signature (and
// key encipherment for RSA keys); extended key usage client authentication
// only; no CA flag; a random 128-bit serial; and a validity from Now minus
// Backdate to Now plus Lifetime, kept inside the validity of every
// certificate of the chain. The leaf is verified against the chain before it
// is returned.
//
// Sign returns ErrNoCSR; a *CSRError when the key is refused; ErrInvalidID
// for an id that cannot be used; ErrCAExpired or ErrCANotYetValid when the
// chain is not valid now; ErrSignerFailed when the signer returns an error;
// and ErrSelfCheck when the issued certificate does not verify. CannotSign
// tells the errors that no request can avoid.
func (c *CA) Sign(req SignRequest) (*Issued, error) {
	if req.CSR == nil {
		return nil, ErrNoCSR
	}
	// A CSR can reach Sign without ParseCSR; the key check costs nothing
	// next to signing.
	if kerr := checkPublicKey(req.CSR.PublicKey); kerr != nil {
		return nil, kerr
	}
	id, err := SessionCertID(c.td, req.IdentityID, req.APISessionID, req.CertificateID)
	if err != nil {
		return nil, err
	}
	now := c.now()
	if err := checkWindow(c.notBefore, c.notAfter, now); err != nil {
		return nil, fmt.Errorf("%w: the chain is valid from %s to %s", err,
			c.notBefore.UTC().Format(time.RFC3339), c.notAfter.UTC().Format(time.RFC3339))
	}

	// Validity: backdated for skew, never outside the chain.
	notBefore := now.Add(-c.backdate)
	if notBefore.Before(c.notBefore) {
		notBefore = c.notBefore
	}
	notAfter := now.Add(c.lifetime)
	if notAfter.After(c.notAfter) {
		notAfter = c.notAfter
	}

	serial, err := randomSerial(c.rand)
	if err != nil {
		return nil, err
	}

	// The template is built from nothing but our own values, so no field of
	// the CSR can leak into the certificate.
	usage := x509.KeyUsageDigitalSignature
	if _, ok := req.CSR.PublicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.IdentityID},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{id.URL()},
	}

	// Sign. x509 also checks the signature under the CA's public key, which
	// catches a signer that returns garbage or signs with another key. The
	// signer is watched so that its faults are told apart from a template
	// x509 refuses, which would be a bug here.
	signer := &watchedSigner{Signer: c.signer}
	der, err := x509.CreateCertificate(c.rand, tmpl, c.cert, req.CSR.PublicKey, signer)
	switch {
	case err == nil:
	case signer.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrSignerFailed, signer.err)
	case signer.signed:
		// Signing is the last step x509 can fail after; what fails once the
		// signer has answered is the check of its signature.
		return nil, fmt.Errorf("%w: %w", ErrSelfCheck, err)
	default:
		return nil, fmt.Errorf("ca: sign certificate: %w", err)
	}

	// Self-check: what goes out must parse, carry the id we meant, and
	// verify under the signing certificate for client authentication, now.
	// The chain above the signing certificate was verified for client
	// authentication by New and is immutable, and checkWindow above keeps
	// all of it in its validity, so verifying that link again here would
	// spend a signature check per certificate to learn nothing.
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSelfCheck, err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		return nil, fmt.Errorf("%w: uri san does not round-trip", ErrSelfCheck)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:       c.issuer,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSelfCheck, err)
	}

	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &Issued{
		Leaf:        leaf,
		DER:         der,
		ChainPEM:    string(leafPEM) + c.chainPEM,
		Fingerprint: Fingerprint(der),
		Serial:      leaf.SerialNumber.Text(16),
		KeyType:     KeyType(leaf.PublicKey),
		SPIFFEID:    id.String(),
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
	}, nil
}

// watchedSigner remembers whether its signer was asked to sign and what it
// answered. It serves one call of Sign, so it needs no lock.
type watchedSigner struct {
	crypto.Signer
	signed bool  // the signer returned a signature
	err    error // the signer's error
}

// Sign signs through the wrapped signer and records the outcome.
func (w *watchedSigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := w.Signer.Sign(rnd, digest, opts)
	w.record(err)
	return sig, err
}

// SignMessage keeps a signer that signs whole messages (a crypto.MessageSigner)
// signing them, as it would unwatched, and records the outcome.
func (w *watchedSigner) SignMessage(rnd io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := crypto.SignMessage(w.Signer, rnd, msg, opts)
	w.record(err)
	return sig, err
}

func (w *watchedSigner) record(err error) {
	if err != nil {
		w.err = err
		return
	}
	w.signed = true
}

// randomSerial returns a positive serial number of serialBytes random bytes.
// It fails rather than retry when the source returns all zeros, which only a
// broken source does.
func randomSerial(rnd io.Reader) (*big.Int, error) {
	var b [serialBytes]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("ca: read serial number: %w", err)
	}
	serial := new(big.Int).SetBytes(b[:])
	if serial.Sign() == 0 {
		return nil, errors.New("ca: random source returned a zero serial number")
	}
	return serial, nil
}

// Fingerprint returns the lower-case hexadecimal SHA-1 of a certificate's
// DER encoding, without separators: the form the wire contract uses to name
// a certificate. Trust never rests on it alone: a certificate is looked up by
// fingerprint only after its chain has verified.
func Fingerprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // G401: a name, not a signature; see above
	return hex.EncodeToString(sum[:])
}

package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxCSRSize is the largest PEM input, in bytes, that ParseCSR looks at. A
// CSR with an RSA-8192 key and a generous subject is under 4 KiB, so this
// leaves room for odd encoders while bounding the work an attacker can cause.
const MaxCSRSize = 64 << 10

// Bounds on RSA keys, in bits, for CSRs and CA keys alike.
const (
	minRSABits = 2048
	// maxRSABits bounds the work of verifying a signature under a key the
	// client chose, and the size of what is stored per certificate.
	maxRSABits = 8192
)

// ErrInvalidCSR matches, through errors.Is, every *CSRError.
var ErrInvalidCSR = errors.New("ca: invalid csr")

// CSRReason says why ParseCSR refused a CSR. The zero value is not a reason
// ParseCSR returns.
type CSRReason int

// The reasons a CSR is refused, in the order ParseCSR checks them.
const (
	// CSRTooLarge means the input is over MaxCSRSize bytes.
	CSRTooLarge CSRReason = iota + 1
	// CSREmpty means the input is empty or only whitespace.
	CSREmpty
	// CSRNotPEM means there is no PEM block, or its armor is broken or
	// carries headers.
	CSRNotPEM
	// CSRMultipleBlocks means there is more than one PEM block.
	CSRMultipleBlocks
	// CSRLeadingData means something other than whitespace precedes the block.
	CSRLeadingData
	// CSRTrailingData means something other than whitespace follows the block.
	CSRTrailingData
	// CSRNotCSR means the block is not of type CERTIFICATE REQUEST.
	CSRNotCSR
	// CSRMalformed means the DER inside the block is not a valid CSR.
	CSRMalformed
	// CSRWeakKey means the key is of an allowed family but too weak: RSA under
	// 2048 bits or with a bad exponent, or ECDSA on P-224.
	CSRWeakKey
	// CSRUnsupportedKey means the key is of no allowed family, is on another
	// curve, or is RSA over 8192 bits.
	CSRUnsupportedKey
	// CSRBadSignature means the CSR's signature does not verify under its key.
	CSRBadSignature
)

// csrReasonNames are the stable names of the reasons, for logs and metrics.
var csrReasonNames = [...]string{
	CSRTooLarge:       "tooLarge",
	CSREmpty:          "empty",
	CSRNotPEM:         "notPEM",
	CSRMultipleBlocks: "multipleBlocks",
	CSRLeadingData:    "leadingData",
	CSRTrailingData:   "trailingData",
	CSRNotCSR:         "notCSR",
	CSRMalformed:      "malformed",
	CSRWeakKey:        "weakKey",
	CSRUnsupportedKey: "unsupportedKey",
	CSRBadSignature:   "badSignature",
}

// String returns the reason's stable camel-case name, such as "weakKey", or
// "unknown" for a value that is not a reason.
func (r CSRReason) String() string {
	if r <= 0 || int(r) >= len(csrReasonNames) {
		return "unknown"
	}
	return csrReasonNames[r]
}

// CSRError is the error ParseCSR returns, and Sign for a refused key.
// errors.Is(err, ErrInvalidCSR) is true for every CSRError.
type CSRError struct {
	// Reason is why the CSR was refused.
	Reason CSRReason
	// Detail describes the refusal in a few words. It holds nothing from the
	// input but sizes and algorithm names, so it is safe to show a client.
	Detail string
	// Err is the underlying parse or signature error, or nil. Its text may
	// quote the input.
	Err error
}

// Error returns "ca: invalid csr: " followed by the detail and, if any, the
// underlying error.
func (e *CSRError) Error() string {
	msg := "ca: invalid csr: " + e.Detail
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error, which may be nil.
func (e *CSRError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidCSR.
func (e *CSRError) Is(target error) bool { return target == ErrInvalidCSR }

func csrError(r CSRReason, detail string, err error) *CSRError {
	return &CSRError{Reason: r, Detail: detail, Err: err}
}

// pemWhitespace is what may surround the PEM block: what editors, shells and
// JSON encoders put around text, and nothing else.
const pemWhitespace = " \t\r\n"

var pemBegin = []byte("-----BEGIN")

// ParseCSR parses untrusted input that must be exactly one PEM block of type
// CERTIFICATE REQUEST (or NEW CERTIFICATE REQUEST), optionally surrounded by
// whitespace, holding a CSR whose key is allowed and whose signature verifies
// under that key. Allowed keys are ECDSA on P-256, P-384 or P-521, RSA of
// 2048 to 8192 bits, and Ed25519. On failure it returns a *CSRError; the size
// is checked before anything else is done with the input.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > MaxCSRSize {
		return nil, csrError(CSRTooLarge, fmt.Sprintf("larger than %d bytes", MaxCSRSize), nil)
	}
	body := bytes.Trim(pemBytes, pemWhitespace)
	if len(body) == 0 {
		return nil, csrError(CSREmpty, "empty", nil)
	}

	// Framing. pem.Decode silently skips text before a block and even a
	// block with broken armor, so it is only trusted once there is exactly
	// one BEGIN line and it opens the input.
	switch n := bytes.Count(body, pemBegin); {
	case n == 0:
		return nil, csrError(CSRNotPEM, "not pem", nil)
	case n > 1:
		return nil, csrError(CSRMultipleBlocks, "more than one pem block", nil)
	}
	if !bytes.HasPrefix(body, pemBegin) {
		return nil, csrError(CSRLeadingData, "data before the pem block", nil)
	}
	block, rest := pem.Decode(body)
	if block == nil {
		return nil, csrError(CSRNotPEM, "broken pem armor", nil)
	}
	if len(rest) != 0 {
		return nil, csrError(CSRTrailingData, "data after the pem block", nil)
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, csrError(CSRNotCSR, "pem block is not a certificate request", nil)
	}
	if len(block.Headers) != 0 {
		return nil, csrError(CSRNotPEM, "pem headers are not allowed", nil)
	}

	// Structure. The x509 parser refuses curves it does not know outright,
	// so such a refusal is told apart from broken DER here.
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		if hasUnsupportedCurve(block.Bytes) {
			return nil, csrError(CSRUnsupportedKey, "unsupported elliptic curve", nil)
		}
		return nil, csrError(CSRMalformed, "malformed certificate request", err)
	}

	// Key before signature: refusing a key is cheap, verifying under an
	// oversized one is not.
	if kerr := checkPublicKey(csr.PublicKey); kerr != nil {
		return nil, kerr
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, csrError(CSRBadSignature, "signature does not verify", err)
	}
	return csr, nil
}

// checkPublicKey applies the key policy shared by CSRs and CA keys.
func checkPublicKey(pub crypto.PublicKey) *CSRError {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil {
			break
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		case elliptic.P224():
			return csrError(CSRWeakKey, "ecdsa key on P-224", nil)
		}
		return csrError(CSRUnsupportedKey, "unsupported elliptic curve", nil)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			break
		}
		bits := k.N.BitLen()
		switch {
		case bits < minRSABits:
			return csrError(CSRWeakKey, fmt.Sprintf("rsa key of %d bits, at least %d required",
				bits, minRSABits), nil)
		case bits > maxRSABits:
			return csrError(CSRUnsupportedKey, fmt.Sprintf("rsa key of %d bits, at most %d allowed",
				bits, maxRSABits), nil)
		case k.E < 3 || k.E%2 == 0:
			return csrError(CSRWeakKey, "rsa key with an invalid public exponent", nil)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return csrError(CSRMalformed, "ed25519 key of the wrong size", nil)
		}
		return nil
	}
	return csrError(CSRUnsupportedKey, "unsupported key algorithm", nil)
}

// Object identifiers read by hasUnsupportedCurve.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidCurves      = []asn1.ObjectIdentifier{
		{1, 3, 132, 0, 33},          // P-224
		{1, 2, 840, 10045, 3, 1, 7}, // P-256
		{1, 3, 132, 0, 34},          // P-384
		{1, 3, 132, 0, 35},          // P-521
	}
)

// hasUnsupportedCurve reports whether der is a CSR whose key is an elliptic
// curve key on a curve other than the NIST curves x509 knows, including one
// given by explicit parameters. It reads only as far as the key's algorithm.
func hasUnsupportedCurve(der []byte) bool {
	var (
		in                      = cryptobyte.String(der)
		csr, info, spki, algSeq cryptobyte.String
		alg                     asn1.ObjectIdentifier
	)
	if !in.ReadASN1(&csr, cbasn1.SEQUENCE) ||
		!csr.ReadASN1(&info, cbasn1.SEQUENCE) ||
		!info.SkipASN1(cbasn1.INTEGER) || // version
		!info.SkipASN1(cbasn1.SEQUENCE) || // subject
		!info.ReadASN1(&spki, cbasn1.SEQUENCE) ||
		!spki.ReadASN1(&algSeq, cbasn1.SEQUENCE) ||
		!algSeq.ReadASN1ObjectIdentifier(&alg) {
		return false
	}
	if !alg.Equal(oidECPublicKey) {
		return false
	}
	if !algSeq.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		// Explicit or inherited curve parameters.
		return true
	}
	var curve asn1.ObjectIdentifier
	if !algSeq.ReadASN1ObjectIdentifier(&curve) {
		return false
	}
	for _, known := range oidCurves {
		if curve.Equal(known) {
			return false
		}
	}
	return true
}

// KeyType returns a short name for a public key, for metrics and logs:
// "P-256", "P-384", "P-521" (or another curve's name) for ECDSA, "RSA-<bits>"
// for RSA, "Ed25519", and "unknown" for anything else, nil included.
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil {
			return k.Curve.Params().Name
		}
	case *rsa.PublicKey:
		if k != nil && k.N != nil {
			return fmt.Sprintf("RSA-%d", k.N.BitLen())
		}
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unknown"
}

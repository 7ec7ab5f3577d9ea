package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DefaultLifetime is the validity of an issued certificate when
// Config.Lifetime is zero.
const DefaultLifetime = 12 * time.Hour

// DefaultBackdate is the backdate a server should pass in Config.Backdate
// unless its operator chose another (sessioncert-server's --cert-backdate
// defaults to it): how far before the moment of signing an issued
// certificate becomes valid, to absorb clock skew between this server and
// the peers that check the certificate.
const DefaultBackdate = time.Minute

// maxClientChain bounds the certificates VerifyClient looks at, so a peer
// cannot make chain building expensive by sending a long list.
const maxClientChain = 8

// Errors returned by New, LoadPEM, LoadFiles, Sign and VerifyClient. Each
// names the calls that return it; all are wrapped with %w and some carry
// detail after a colon, so match them with errors.Is.
var (
	// ErrNoCertificate is returned by New when Config.Chain is empty and by
	// LoadPEM and LoadFiles when the certificate PEM holds no certificate.
	ErrNoCertificate = errors.New("ca: no certificate")

	// ErrNoSigner is returned by New when Config.Signer is nil.
	ErrNoSigner = errors.New("ca: no signer")

	// ErrNoTrustDomain is returned by New when Config.TrustDomain is zero.
	ErrNoTrustDomain = errors.New("ca: no trust domain")

	// ErrInvalidConfig is returned by New for a negative duration or a nil
	// certificate in the chain.
	ErrInvalidConfig = errors.New("ca: invalid config")

	// ErrKeyMismatch is returned by New when the signer's public key is not
	// the public key of the signing certificate.
	ErrKeyMismatch = errors.New("ca: key does not match the certificate")

	// ErrNotCA is returned by New when the signing certificate lacks the CA
	// basic constraint or the certificate-signing key usage.
	ErrNotCA = errors.New("ca: certificate is not a certificate authority")

	// ErrCAExpired is returned by New when a certificate of the chain has
	// expired, and by Sign once the chain has expired since New.
	ErrCAExpired = errors.New("ca: certificate has expired")

	// ErrCANotYetValid is returned by New, and by Sign, when a certificate of
	// the chain is not valid yet.
	ErrCANotYetValid = errors.New("ca: certificate is not valid yet")

	// ErrBadChain is returned by New when a certificate of the chain is not
	// signed by the next one, or when the chain does not allow issuing
	// client-authentication certificates.
	ErrBadChain = errors.New("ca: certificate chain does not verify")

	// ErrUnsupportedKey is returned by LoadPEM, LoadFiles and New for a CA key
	// of a type or size this package does not sign with.
	ErrUnsupportedKey = errors.New("ca: unsupported ca key")

	// ErrUntrustedClient is returned by VerifyClient when the presented chain
	// does not lead to this CA or does not allow client authentication.
	ErrUntrustedClient = errors.New("ca: client certificate is not trusted")

	// ErrClientCertExpired is returned by VerifyClient when the presented
	// chain would verify but the leaf is outside its validity window.
	ErrClientCertExpired = errors.New("ca: client certificate has expired or is not valid yet")
)

// Config is everything New needs. Chain and Signer are required; the other
// fields have defaults.
type Config struct {
	// Chain is the signing certificate first, then the certificates above it
	// in order, each signed by the next; the root may be included. The last
	// certificate is the trust anchor whether it is self-signed or not.
	Chain []*x509.Certificate

	// Signer holds the private key of Chain[0]. It may be backed by a KMS or
	// an HSM, and must be safe for concurrent use.
	Signer crypto.Signer

	// TrustDomain is the SPIFFE trust domain of the issued URI SANs.
	TrustDomain spiffeid.TrustDomain

	// Lifetime is how long an issued certificate is valid after signing.
	// Zero means DefaultLifetime; it is shortened so that no certificate
	// outlives the chain.
	Lifetime time.Duration

	// Backdate is subtracted from the signing time to get NotBefore. Zero
	// means no backdating: NotBefore is the signing time. It is not
	// defaulted, so that an operator's explicit zero holds; pass
	// DefaultBackdate for the usual allowance for clock skew.
	Backdate time.Duration

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Rand is the source of serial numbers and of signing randomness. Nil
	// means crypto/rand.Reader. It must be safe for concurrent use.
	Rand io.Reader
}

// CA signs API Session Certificates. Its methods are safe for concurrent use.
type CA struct {
	cert     *x509.Certificate // signs, Chain[0]
	chain    []*x509.Certificate
	signer   crypto.Signer
	td       spiffeid.TrustDomain
	lifetime time.Duration
	backdate time.Duration
	now      func() time.Time
	rand     io.Reader

	// notBefore and notAfter are the window in which every certificate of the
	// chain is valid; issued certificates are kept inside it.
	notBefore time.Time
	notAfter  time.Time

	roots         *x509.CertPool
	intermediates *x509.CertPool
	// issuer holds only the signing certificate: the anchor of the
	// self-check of every issued leaf. The chain above it was verified by
	// New and cannot change.
	issuer    *x509.CertPool
	chainPEM  string
	bundlePEM string
}

// New checks cfg and returns a CA. It returns ErrNoCertificate, ErrNoSigner,
// ErrNoTrustDomain or ErrInvalidConfig for missing or invalid fields;
// ErrKeyMismatch when the signer does not hold the signing certificate's
// key; ErrUnsupportedKey for a weak or unknown CA key; ErrNotCA when the
// signing certificate may not sign certificates; ErrCAExpired or
// ErrCANotYetValid when a certificate of the chain is not valid at
// cfg.Now(); and ErrBadChain when the chain is out of order or does not
// allow client authentication.
func New(cfg Config) (*CA, error) {
	if len(cfg.Chain) == 0 {
		return nil, ErrNoCertificate
	}
	for i, c := range cfg.Chain {
		if c == nil {
			return nil, fmt.Errorf("%w: chain certificate %d is nil", ErrInvalidConfig, i)
		}
	}
	if cfg.Signer == nil {
		return nil, ErrNoSigner
	}
	if cfg.TrustDomain.IsZero() {
		return nil, ErrNoTrustDomain
	}
	if cfg.Lifetime < 0 || cfg.Backdate < 0 {
		return nil, fmt.Errorf("%w: negative lifetime or backdate", ErrInvalidConfig)
	}

	ca := &CA{
		cert:     cfg.Chain[0],
		chain:    append([]*x509.Certificate(nil), cfg.Chain...),
		signer:   cfg.Signer,
		td:       cfg.TrustDomain,
		lifetime: cfg.Lifetime,
		backdate: cfg.Backdate,
		now:      cfg.Now,
		rand:     cfg.Rand,
	}
	if ca.lifetime == 0 {
		ca.lifetime = DefaultLifetime
	}
	if ca.now == nil {
		ca.now = time.Now
	}
	if ca.rand == nil {
		ca.rand = rand.Reader
	}

	if err := checkSigner(ca.cert, ca.signer); err != nil {
		return nil, err
	}
	if err := checkChain(ca.chain, ca.now()); err != nil {
		return nil, err
	}
	ca.index()
	return ca, nil
}

// checkSigner refuses a signer that cannot sign for cert, so that a wrong key
// shows at start-up rather than at the first request.
func checkSigner(cert *x509.Certificate, signer crypto.Signer) error {
	pub := signer.Public()
	if !publicKeysEqual(pub, cert.PublicKey) {
		return ErrKeyMismatch
	}
	if err := checkPublicKey(pub); err != nil {
		return fmt.Errorf("%w: %s", ErrUnsupportedKey, err.Detail)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return ErrNotCA
	}
	return nil
}

// checkChain checks that every certificate is valid at now, that each is
// signed by the next, and that the signing certificate verifies up to the
// last one for client authentication, which also rejects a chain whose
// extended key usages would forbid our leaves.
func checkChain(chain []*x509.Certificate, now time.Time) error {
	for i, c := range chain {
		if err := checkWindow(c.NotBefore, c.NotAfter, now); err != nil {
			return fmt.Errorf("%w: chain certificate %d (%s) is valid from %s to %s",
				err, i, c.Subject, c.NotBefore.UTC().Format(time.RFC3339),
				c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("%w: chain certificate %d is not signed by certificate %d: %w",
				ErrBadChain, i, i+1, err)
		}
	}

	roots, intermediates := pools(chain)
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadChain, err)
	}
	return nil
}

// checkWindow returns ErrCANotYetValid or ErrCAExpired when now is outside
// [notBefore, notAfter].
func checkWindow(notBefore, notAfter, now time.Time) error {
	if now.Before(notBefore) {
		return ErrCANotYetValid
	}
	if now.After(notAfter) {
		return ErrCAExpired
	}
	return nil
}

// pools splits a checked chain into its anchor, the last certificate, and
// everything below it.
func pools(chain []*x509.Certificate) (roots, intermediates *x509.CertPool) {
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	last := len(chain) - 1
	roots.AddCert(chain[last])
	for _, c := range chain[:last] {
		intermediates.AddCert(c)
	}
	return roots, intermediates
}

// index precomputes what every request reads, so that requests share it
// without locks.
func (c *CA) index() {
	c.roots, c.intermediates = pools(c.chain)
	c.issuer = x509.NewCertPool()
	c.issuer.AddCert(c.cert)

	c.notBefore, c.notAfter = c.cert.NotBefore, c.cert.NotAfter
	for _, x := range c.chain[1:] {
		if x.NotBefore.After(c.notBefore) {
			c.notBefore = x.NotBefore
		}
		if x.NotAfter.Before(c.notAfter) {
			c.notAfter = x.NotAfter
		}
	}

	var chainPEM, bundlePEM bytes.Buffer
	for _, x := range c.chain {
		block := &pem.Block{Type: "CERTIFICATE", Bytes: x.Raw}
		// A self-signed root sent in a TLS chain is ignored by peers and only
		// costs bytes, so the chain stops below it; the bundle keeps it.
		if !isSelfSigned(x) {
			_ = pem.Encode(&chainPEM, block)
		}
		_ = pem.Encode(&bundlePEM, block)
	}
	c.chainPEM, c.bundlePEM = chainPEM.String(), bundlePEM.String()
}

// isSelfSigned reports whether c names itself as issuer and its signature
// verifies under its own key.
func isSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// publicKeysEqual compares two public keys of any supported type.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && eq.Equal(b)
}

// Certificate returns the signing certificate, Config.Chain[0]. The caller
// must not modify it.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// NotAfter returns the end of the chain's validity: the earliest NotAfter of
// its certificates, usually the signing certificate's. Sign fails after it,
// and no issued certificate outlives it.
func (c *CA) NotAfter() time.Time { return c.notAfter }

// TrustDomain returns the SPIFFE trust domain of the issued certificates.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// ChainPEM returns the PEM certificates to send after an issued leaf: the
// signing certificate and the rest of the chain in order, without a
// self-signed root. It is empty when the signing certificate is itself a
// self-signed root.
func (c *CA) ChainPEM() string { return c.chainPEM }

// BundlePEM returns the PEM bundle of every CA certificate a client should
// trust: the signing certificate, then the rest of the chain as configured,
// root included. The order depends only on the configured chain, so it is
// the same across restarts.
func (c *CA) BundlePEM() string { return c.bundlePEM }

// Roots returns a new pool holding the trust anchor, the last certificate of
// the chain. The caller may modify it.
func (c *CA) Roots() *x509.CertPool { return c.roots.Clone() }

// Intermediates returns a new pool holding the certificates of the chain
// below the anchor: the signing certificate and any between it and the
// anchor. It is empty when the chain is a single certificate. The caller may
// modify it.
func (c *CA) Intermediates() *x509.CertPool { return c.intermediates.Clone() }

// VerifyClient verifies a chain presented by a client, leaf first, against
// this CA at the CA's current time and for client authentication.
// Certificates after the leaf are used as intermediates, in addition to the
// CA's own. It returns the leaf; ErrClientCertExpired when the chain would be
// trusted but the leaf is outside its validity window; otherwise
// ErrUntrustedClient, wrapping the x509 error when there is one. It does not
// look at the leaf's names: see ParseSessionCertID for that.
func (c *CA) VerifyClient(chain []*x509.Certificate) (*x509.Certificate, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrUntrustedClient)
	}
	if len(chain) > maxClientChain {
		return nil, fmt.Errorf("%w: chain of %d certificates, at most %d", ErrUntrustedClient,
			len(chain), maxClientChain)
	}

	leaf := chain[0]
	// A CA certificate is never a session's client certificate, even where
	// its extended key usages would pass.
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: leaf is a ca certificate", ErrUntrustedClient)
	}
	opts := x509.VerifyOptions{
		Roots:         c.roots,
		Intermediates: c.intermediates,
		CurrentTime:   c.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(chain) > 1 {
		opts.Intermediates = c.intermediates.Clone()
		for _, x := range chain[1:] {
			if x != nil {
				opts.Intermediates.AddCert(x)
			}
		}
	}

	_, err := leaf.Verify(opts)
	if err == nil {
		return leaf, nil
	}

	// An expired leaf fails before its chain is looked at. Verifying again at
	// a moment inside the leaf's window tells a stale certificate of ours,
	// which a router reports differently, from a foreign one.
	now := opts.CurrentTime
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		opts.CurrentTime = leaf.NotAfter
		if now.Before(leaf.NotBefore) {
			opts.CurrentTime = leaf.NotBefore
		}
		if _, err2 := leaf.Verify(opts); err2 == nil {
			return nil, ErrClientCertExpired
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrUntrustedClient, err)
}

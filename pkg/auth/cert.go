package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// MethodCert is the Result.Method of a client certificate login.
const MethodCert = "cert"

// ErrCertMismatch is carried in LoginError.Err (reason ReasonUnknownCert)
// when a presented certificate has the fingerprint of a registered one but
// different bytes, or the registered PEM cannot be read.
var ErrCertMismatch = errors.New("auth: certificate differs from the registered one")

// CertConfig configures a Cert authenticator.
type CertConfig struct {
	// Store holds the cert authenticators and identities.
	Store store.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of certificate record ids; nil means crypto/rand.
	Rand io.Reader
}

// Cert authenticates the TLS client certificate of a connection against cert
// authenticators. Trust is by the exact certificate registered to an
// identity, not by a chain: the certificate may come from any PKI, and the
// TLS handshake has already proved that the client holds its private key.
// Safe for concurrent use.
type Cert struct {
	cfg CertConfig
}

// NewCert returns a client certificate authenticator.
func NewCert(cfg CertConfig) *Cert {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Cert{cfg: cfg}
}

// Authenticate logs in with peer, the connection's
// tls.ConnectionState.PeerCertificates (leaf first). Only the leaf counts;
// any intermediates the client sent are ignored.
//
// On success the Result carries the identity, its cert authenticator,
// Method MethodCert and a Certificate record of the leaf (ID, Fingerprint,
// Subject, Serial, ChainPEM of the leaf alone, validity, CreatedAt) for the
// new session to own; the caller fills in APISessionID and IdentityID.
//
// A failed login returns a *LoginError (matching ErrInvalidAuth) with reason
// ReasonNoCertificate, ReasonCertNotValid (outside NotBefore <= now <
// NotAfter), ReasonUnknownCert or ReasonUnknownIdentity. A failing store or
// random source gives a wrapped error instead.
func (c *Cert) Authenticate(ctx context.Context, peer []*x509.Certificate) (*Result, error) {
	if len(peer) == 0 || peer[0] == nil {
		return nil, &LoginError{Reason: ReasonNoCertificate}
	}
	leaf := peer[0]
	now := c.cfg.Now()

	// Validity first: an expired registered certificate must not log in,
	// and checking it costs no store read.
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return nil, &LoginError{Reason: ReasonCertNotValid}
	}

	// The fingerprint finds the authenticator; the full DER comparison
	// after it keeps a SHA-1 collision from standing in for the
	// registered certificate.
	fp := ca.Fingerprint(leaf.Raw)
	a, err := c.cfg.Store.FindAuthenticatorByFingerprint(ctx, fp)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &LoginError{Reason: ReasonUnknownCert}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: find authenticator: %w", err)
	}
	if a.Method != store.AuthMethodCert {
		return nil, &LoginError{Reason: ReasonUnknownCert}
	}
	if err := sameCertificate(a.CertPEM, leaf.Raw); err != nil {
		return nil, &LoginError{Reason: ReasonUnknownCert, Err: err}
	}

	id, err := c.cfg.Store.GetIdentity(ctx, a.IdentityID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &LoginError{Reason: ReasonUnknownIdentity}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: get identity: %w", err)
	}

	certID, err := store.NewID(c.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("auth: certificate id: %w", err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	return &Result{
		Identity:      id,
		Authenticator: a,
		Method:        MethodCert,
		Confirm:       ConfirmAuthenticator(c.cfg.Store, a.ID),
		Certificate: &store.Certificate{
			ID:          certID,
			IdentityID:  id.ID,
			Fingerprint: fp,
			Subject:     leaf.Subject.String(),
			Serial:      leaf.SerialNumber.Text(16),
			ChainPEM:    string(leafPEM),
			ValidFrom:   leaf.NotBefore,
			ValidTo:     leaf.NotAfter,
			CreatedAt:   now,
		},
	}, nil
}

// sameCertificate checks der against the first certificate in registered. An
// authenticator stored without its PEM is trusted by fingerprint alone.
func sameCertificate(registered string, der []byte) error {
	if registered == "" {
		return nil
	}
	rest := []byte(registered)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return fmt.Errorf("%w: no certificate in the registered pem", ErrCertMismatch)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if !bytes.Equal(b.Bytes, der) {
			return ErrCertMismatch
		}
		return nil
	}
}

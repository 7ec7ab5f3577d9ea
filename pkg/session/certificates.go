package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// Errors of Issue besides CSR and store errors.
var (
	// ErrCertificateLimit is returned when the session already holds the
	// maximum number of live certificates.
	ErrCertificateLimit = errors.New("session: certificate limit reached")

	// ErrIssueRateLimited is returned when the session asks for
	// certificates faster than its issuance rate allows.
	ErrIssueRateLimited = errors.New("session: certificate requests too frequent")
)

// Signer turns a parsed CSR into a certificate. *ca.CA implements it.
type Signer interface {
	Sign(req ca.SignRequest) (*ca.Issued, error)
	BundlePEM() string
}

// Issuer issues and manages the certificates of sessions, and decides
// admissions of clients presenting them.
type Issuer struct {
	reg      *Registry
	signer   Signer
	verifier Verifier
	maxLive  int
	rate     *auth.AttemptLimiter
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	Registry *Registry
	Signer   Signer

	// Verifier checks client chains for admissions; *ca.CA implements both
	// Signer and Verifier.
	Verifier Verifier

	// MaxLive caps the live certificates one session may hold; zero or less
	// means no cap.
	MaxLive int

	// RateBurst and RateEvery limit how fast one session may ask for
	// certificates: RateBurst at once, then one more every RateEvery, so
	// that a stolen token cannot spend the CA's CPU. A RateBurst of zero
	// disables the limit.
	RateBurst int
	RateEvery time.Duration
}

// NewIssuer returns an Issuer.
func NewIssuer(cfg IssuerConfig) *Issuer {
	return &Issuer{
		reg: cfg.Registry, signer: cfg.Signer, verifier: cfg.Verifier, maxLive: cfg.MaxLive,
		rate: auth.NewAttemptLimiter(cfg.RateBurst, cfg.RateEvery),
	}
}

// BundlePEM returns the CA certificates clients should trust.
func (i *Issuer) BundlePEM() string { return i.signer.BundlePEM() }

// Issued is a certificate just issued, with the key type for metrics and the
// audit trail.
type Issued struct {
	Certificate *store.Certificate
	KeyType     string
}

// Issue parses csrPEM, signs a certificate for the session and records it
// under the session, durably, before returning. It returns a *ca.CSRError for
// a refused CSR, ErrInvalidToken when the session is no longer live,
// ErrIssueRateLimited or ErrCertificateLimit, or a store error.
func (i *Issuer) Issue(ctx context.Context, apiSessionID string, csrPEM []byte) (*Issued, error) {
	if ok, _ := i.rate.Take(apiSessionID, i.reg.cfg.Now()); !ok {
		return nil, ErrIssueRateLimited
	}

	// Parse and check the request before spending a signature on it.
	csr, err := ca.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	s, err := i.reg.Get(ctx, apiSessionID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	certID, err := store.NewID(i.reg.cfg.Rand)
	if err != nil {
		return nil, err
	}

	// Sign; the CA verifies what it issued before returning it.
	issued, err := i.signer.Sign(ca.SignRequest{
		CSR:           csr,
		IdentityID:    s.IdentityID,
		APISessionID:  s.ID,
		CertificateID: certID,
	})
	if err != nil {
		return nil, fmt.Errorf("session: sign: %w", err)
	}

	// Record it under the session; the cap is checked in the same
	// transaction, so concurrent requests cannot overshoot it.
	now := i.reg.cfg.Now().UTC()
	rec := &store.Certificate{
		ID:           certID,
		APISessionID: s.ID,
		IdentityID:   s.IdentityID,
		Fingerprint:  issued.Fingerprint,
		Subject:      "CN=" + s.IdentityID,
		Serial:       issued.Serial,
		ChainPEM:     issued.ChainPEM,
		ValidFrom:    issued.NotBefore,
		ValidTo:      issued.NotAfter,
		CreatedAt:    now,
	}
	err = i.reg.cfg.Store.CreateCertificate(ctx, rec, i.maxLive, now)
	switch {
	case errors.Is(err, store.ErrLimitReached):
		return nil, ErrCertificateLimit
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidToken
	case err != nil:
		return nil, fmt.Errorf("session: record certificate: %w", err)
	}
	return &Issued{Certificate: rec, KeyType: issued.KeyType}, nil
}

// List returns a page of the session's live certificates and their total.
//
// The store refuses a session whose stored ExpiresAt has passed. Activity
// this registry has not written yet may have moved it on; when the registry
// holds the session live, that activity is written and the store asked
// once more, so that a session used again just before its expiry lists its
// certificates just after it too.
func (i *Issuer) List(ctx context.Context, apiSessionID string, p store.Page) ([]*store.Certificate, int, error) {
	certs, total, err := i.list(ctx, apiSessionID, p)
	if errors.Is(err, store.ErrNotFound) {
		if _, gerr := i.reg.Get(ctx, apiSessionID); gerr == nil && i.reg.Flush(ctx) == nil {
			certs, total, err = i.list(ctx, apiSessionID, p)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("session: list certificates: %w", err)
	}
	return certs, total, nil
}

// list asks the store for a page of the session's live certificates.
func (i *Issuer) list(
	ctx context.Context,
	apiSessionID string,
	p store.Page,
) ([]*store.Certificate, int, error) {
	return i.reg.cfg.Store.ListCertificates(ctx, apiSessionID, i.reg.cfg.Now().UTC(), p)
}

// Get returns one certificate of the session. A certificate of another
// session, or one past its validity, is ErrNotFound, like an unknown id.
func (i *Issuer) Get(ctx context.Context, apiSessionID, id string) (*store.Certificate, error) {
	c, err := i.reg.cfg.Store.GetCertificate(ctx, apiSessionID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: get certificate: %w", err)
	}
	if !i.reg.cfg.Now().Before(c.ValidTo) {
		return nil, ErrNotFound
	}
	return c, nil
}

// Delete removes one certificate of the session and returns the removal
// event. It returns ErrNotFound, and removes nothing, when the certificate
// is not one of the session's or is past its validity: what Get and List
// do not show cannot be deleted either, and a certificate refused by its
// own validity needs no event; the sweeper removes it.
func (i *Issuer) Delete(ctx context.Context, apiSessionID, id string) (*store.Event, error) {
	if _, err := i.Get(ctx, apiSessionID, id); err != nil {
		return nil, err
	}
	ev, err := i.reg.cfg.Store.DeleteCertificate(ctx, apiSessionID, id, i.reg.cfg.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: delete certificate: %w", err)
	}
	return ev, nil
}

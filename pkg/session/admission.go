package session

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// Reasons an admission is refused. Each is returned wrapped in an
// *AdmissionError.
var (
	// ErrAdmissionSession: the token names no live session.
	ErrAdmissionSession = errors.New("session: admission: no live session for the token")
	// ErrCertificateNotBound: the certificate is trusted but is not a live
	// certificate of that session (deleted, or another session's).
	ErrCertificateNotBound = errors.New("session: admission: certificate is not bound to the session")
	// ErrCertificateExpired: the certificate is outside its validity.
	ErrCertificateExpired = errors.New("session: admission: certificate is expired or not yet valid")
	// ErrCertificateUntrusted: the chain does not verify against the CA and
	// is not a certificate the session logged in with.
	ErrCertificateUntrusted = errors.New("session: admission: certificate is not trusted")
)

// AdmissionError is a refused admission; Reason is one of the Err*
// sentinels above, and errors.Is matches it.
type AdmissionError struct {
	Reason error
}

// Error returns the reason's message; it names no secret and no
// certificate.
func (e *AdmissionError) Error() string { return e.Reason.Error() }

// Unwrap returns the reason.
func (e *AdmissionError) Unwrap() error { return e.Reason }

// Verifier checks a client chain against the CA. *ca.CA implements it.
type Verifier interface {
	VerifyClient(chain []*x509.Certificate) (*x509.Certificate, error)
}

// Admission is a granted admission: who the client is and how long the
// decision may be remembered.
type Admission struct {
	Session     *Session
	Certificate *store.Certificate
}

// MaxChainPEM bounds the chain an edge router may pass on, in bytes.
const MaxChainPEM = 64 << 10

// PEM armour of a certificate block, as ParseChain requires it.
var (
	pemBegin = []byte("-----BEGIN CERTIFICATE-----")
	pemEnd   = []byte("-----END CERTIFICATE-----")
)

// pemSpace is the whitespace ParseChain allows around and between blocks.
const pemSpace = " \t\r\n"

// ParseChain reads a PEM chain, leaf first, as an edge router received it.
// The input must be CERTIFICATE blocks without headers, separated by
// whitespace and nothing else: encoding/pem alone skips any text before a
// block, which would let junk through. It returns an error when the input
// holds no certificate, anything else, or more than 8 certificates.
func ParseChain(chainPEM []byte) ([]*x509.Certificate, error) {
	if len(chainPEM) > MaxChainPEM {
		return nil, fmt.Errorf("session: chain over %d bytes", MaxChainPEM)
	}
	var chain []*x509.Certificate
	rest := bytes.TrimLeft(chainPEM, pemSpace)
	for len(rest) > 0 {
		der, tail, err := nextCertificateBlock(rest)
		if err != nil {
			return nil, err
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("session: chain: %w", err)
		}
		chain = append(chain, c)
		if len(chain) > 8 {
			return nil, errors.New("session: chain holds more than 8 certificates")
		}
		rest = bytes.TrimLeft(tail, pemSpace)
	}
	if len(chain) == 0 {
		return nil, errors.New("session: chain holds no certificate")
	}
	return chain, nil
}

// errNotCertificateBlocks is ParseChain's error for anything in the input
// that is not a plain CERTIFICATE block or whitespace.
var errNotCertificateBlocks = errors.New("session: chain must be PEM CERTIFICATE blocks only")

// nextCertificateBlock decodes the CERTIFICATE block that data starts with
// and returns its DER and what follows it. The block is cut out at its
// first END line before decoding, so that pem.Decode cannot skip to a
// later block, and what follows must start with whitespace.
func nextCertificateBlock(data []byte) (der, rest []byte, err error) {
	if !bytes.HasPrefix(data, pemBegin) {
		return nil, nil, errNotCertificateBlocks
	}
	end := bytes.Index(data, pemEnd)
	if end < 0 {
		return nil, nil, errNotCertificateBlocks
	}
	block, rest := data[:end+len(pemEnd)], data[end+len(pemEnd):]
	if bytes.Count(block, []byte("-----BEGIN")) != 1 ||
		(len(rest) > 0 && !bytes.ContainsRune([]byte(pemSpace), rune(rest[0]))) {
		return nil, nil, errNotCertificateBlocks
	}
	b, tail := pem.Decode(block)
	if b == nil || b.Type != "CERTIFICATE" || len(b.Headers) > 0 || len(tail) > 0 {
		return nil, nil, errNotCertificateBlocks
	}
	return b.Bytes, rest, nil
}

// Admit decides whether a client presenting chain with token may pass an
// edge router. It is granted only when the token names a live session and
// the leaf is, byte for byte, a live certificate of that very session: a
// certificate issued to it (which also chains to the CA) or the one it
// logged in with. There is no looser match, by SPIFFE id or identity, so a
// deleted certificate is refused at once. The request counts as activity of
// the session. Refusals are *AdmissionError.
func (i *Issuer) Admit(
	ctx context.Context,
	token string,
	chain []*x509.Certificate,
) (*Admission, error) {
	if len(chain) == 0 {
		return nil, &AdmissionError{Reason: ErrCertificateUntrusted}
	}
	leaf := chain[0]

	// The session first: a refusal must not say whether the certificate
	// exists when the token is wrong.
	s, err := i.reg.Resolve(ctx, token)
	if errors.Is(err, ErrInvalidToken) {
		return nil, &AdmissionError{Reason: ErrAdmissionSession}
	}
	if err != nil {
		return nil, err
	}

	// The certificate must be one of the session's, compared by its whole
	// DER, not only its SHA-1 fingerprint.
	fp := ca.Fingerprint(leaf.Raw)
	rec, err := i.reg.cfg.Store.FindCertificateByFingerprint(ctx, s.ID, fp)
	if errors.Is(err, store.ErrNotFound) {
		_, verr := i.verifier.VerifyClient(chain)
		switch {
		case verr == nil:
			return nil, &AdmissionError{Reason: ErrCertificateNotBound}
		case errors.Is(verr, ca.ErrClientCertExpired):
			// One of our certificates past its validity, whose record the
			// sweeper may already have removed: the same answer as before
			// the sweep.
			return nil, &AdmissionError{Reason: ErrCertificateExpired}
		default:
			return nil, &AdmissionError{Reason: ErrCertificateUntrusted}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("session: admission: %w", err)
	}
	if !sameLeaf(rec.ChainPEM, leaf.Raw) {
		return nil, &AdmissionError{Reason: ErrCertificateUntrusted}
	}

	now := i.reg.cfg.Now()
	if now.Before(rec.ValidFrom) || !now.Before(rec.ValidTo) {
		return nil, &AdmissionError{Reason: ErrCertificateExpired}
	}
	return &Admission{Session: s, Certificate: rec}, nil
}

func sameLeaf(chainPEM string, der []byte) bool {
	block, _ := pem.Decode([]byte(chainPEM))
	return block != nil && bytes.Equal(block.Bytes, der)
}

// Heartbeat records activity of each live session named, and returns the
// ids that are no longer live.
func (r *Registry) Heartbeat(ctx context.Context, ids []string) ([]string, error) {
	var ended []string
	for _, id := range ids {
		err := r.Touch(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			ended = append(ended, id)
		case err != nil:
			return nil, err
		}
	}
	return ended, nil
}

// MaxEventWait bounds how long Events waits for an event.
const MaxEventWait = 60 * time.Second

// Events returns up to limit removal events after the cursor, waiting up to
// wait, as the registry's clock measures it, for one when there is none yet.
// It returns store.ErrCursorExpired for a cursor older than the retained
// history. The returned cursor is where the caller asks from next. A caller
// that goes away (ctx done) ends the wait as if it had passed: no events and
// no error, since nothing failed but the caller's patience.
func (r *Registry) Events(
	ctx context.Context,
	after uint64,
	wait time.Duration,
	limit int,
) ([]store.Event, uint64, error) {
	wait = min(wait, MaxEventWait)
	deadline := r.cfg.Now().Add(wait)
	for {
		evs, err := r.cfg.Store.Events(ctx, after, limit)
		if err != nil {
			if ctx.Err() != nil {
				return nil, after, nil
			}
			return nil, after, err
		}
		if len(evs) > 0 {
			return evs, evs[len(evs)-1].Cursor, nil
		}
		left := deadline.Sub(r.cfg.Now())
		if left <= 0 {
			return nil, after, nil
		}
		wctx, cancel := context.WithTimeout(ctx, left)
		stop := context.AfterFunc(r.drained, cancel)
		err = r.cfg.Store.WaitEvents(wctx, after)
		stop()
		cancel()
		if r.drained.Err() != nil {
			return nil, after, nil
		}
		switch {
		case err == nil:
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, ctx.Err() != nil:
			return nil, after, nil
		default:
			return nil, after, err
		}
	}
}

// EventCursor returns the cursor to start following events from.
func (r *Registry) EventCursor(ctx context.Context) (uint64, error) {
	return r.cfg.Store.EventCursor(ctx)
}

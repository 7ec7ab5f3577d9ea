package server

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/httpx"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/metrics"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// observer turns what the registry, the handlers and the administration
// report into metrics and audit lines. It implements session.Observer,
// manage.Observer and handlers.Recorder.
type observer struct {
	metrics *metrics.Metrics
	audit   *audit.Log
	log     *slog.Logger
}

var (
	_ session.Observer  = (*observer)(nil)
	_ manage.Observer   = (*observer)(nil)
	_ handlers.Recorder = (*observer)(nil)
)

// write records an audit event that may be lost only with a logged error.
func (o *observer) write(e audit.Event) {
	if err := o.audit.Write(e); err != nil {
		o.log.Error("audit write failed", slog.String("type", e.Type), slog.Any("error", err))
	}
}

func (o *observer) SessionCreated(_ *session.Session, initialCerts int) {
	o.metrics.SessionCreated(initialCerts)
}

func (o *observer) SessionRemoved(ev store.Event) {
	o.metrics.Removed(ev)
	o.write(audit.Event{
		Type: audit.TypeSessionEnded, APISessionID: ev.APISessionID, IdentityID: ev.IdentityID,
		Cause: string(ev.Cause), Fingerprints: ev.Fingerprints,
	})
}

func (o *observer) SweepDone(removed, expiredCerts int, err error) {
	o.metrics.Swept(removed, expiredCerts, err)
}

// Changed records an administrative change on disk before it is applied;
// when the line cannot be written, the change is not made and the request
// fails.
func (o *observer) Changed(ctx context.Context, c manage.Change) error {
	return o.audit.WriteDurable(audit.Event{
		Type: audit.TypeManagementChange, RequestID: httpx.RequestID(ctx), IdentityID: c.Actor,
		Change: &audit.Change{Actor: c.Actor, Action: c.Action, Kind: c.Kind, ID: c.ID,
			Before: auditView(c.Before), After: auditView(c.After)},
	})
}

// ChangeFailed records that a change recorded by Changed was refused by the
// store. A line lost here leaves the trail claiming a change that did not
// happen, so it is synced too, and a failure is logged.
func (o *observer) ChangeFailed(ctx context.Context, c manage.Change, reason string) {
	e := audit.Event{
		Type: audit.TypeManagementChangeFailed, RequestID: httpx.RequestID(ctx), IdentityID: c.Actor,
		Reason: reason, Change: &audit.Change{Actor: c.Actor, Action: c.Action, Kind: c.Kind, ID: c.ID},
	}
	if err := o.audit.WriteDurable(e); err != nil {
		o.log.Error("audit write failed", slog.String("type", e.Type), slog.String("kind", c.Kind),
			slog.String("id", c.ID), slog.Any("error", err))
	}
}

// auditView is an entity as a change's before or after shows it: keys in
// the trail's camel case, and a signer's JWKS endpoint without the
// credentials a URL may carry.
func auditView(v any) any {
	switch sg := v.(type) {
	case store.ExtJWTSigner:
		sg.JWKSEndpoint = withoutUserinfo(sg.JWKSEndpoint)
		v = sg
	case *store.ExtJWTSigner:
		if sg != nil {
			cp := *sg
			cp.JWKSEndpoint = withoutUserinfo(cp.JWKSEndpoint)
			v = cp
		}
	}
	return audit.Fields(v)
}

// withoutUserinfo drops the user and password of a URL; what does not parse
// is not written at all, since it may hold them.
func withoutUserinfo(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

func (o *observer) Login(ctx context.Context, a handlers.LoginAttempt) {
	e := audit.Event{RequestID: httpx.RequestID(ctx), Source: a.Source, Method: a.Method, Username: a.Username}
	if a.Err == nil {
		o.metrics.Login(a.Method, metrics.LoginSucceeded)
		e.Type = audit.TypeLoginSucceeded
		e.IdentityID = a.Result.Identity.ID
		e.APISessionID = a.Session.ID
		if a.Result.Certificate != nil {
			e.Fingerprints = []string{a.Result.Certificate.Fingerprint}
		}
		o.write(e)
		return
	}
	e.Type = audit.TypeLoginFailed
	var le *auth.LoginError
	switch {
	case errors.As(a.Err, &le):
		o.metrics.Login(a.Method, metrics.LoginInvalid)
		e.Reason = string(le.Reason)
	case errors.Is(a.Err, auth.ErrRateLimited):
		o.metrics.Login(a.Method, metrics.LoginRateLimited)
		// A refusal costs no password check, so a client can send them at
		// the rate of requests: only the first refusal of a run goes into
		// the trail, or a stranger could fill its disk.
		var limited *auth.RateLimitError
		if errors.As(a.Err, &limited) && !limited.First {
			return
		}
		e.Reason = "rateLimited"
	default:
		o.metrics.Login(a.Method, metrics.LoginError)
		e.Reason = "rejected"
	}
	o.write(e)
}

// CertificateIssued records an issuance on disk before the reply goes out.
func (o *observer) CertificateIssued(
	ctx context.Context,
	p *auth.Principal,
	c *session.Issued,
	took time.Duration,
) error {
	cert := c.Certificate
	err := o.audit.WriteDurable(audit.Event{
		Type: audit.TypeCertificateIssued, RequestID: httpx.RequestID(ctx),
		IdentityID: p.IdentityID, APISessionID: p.APISessionID,
		Certificate: &audit.Certificate{ID: cert.ID, Serial: cert.Serial, Fingerprint: cert.Fingerprint,
			KeyType: c.KeyType, ValidFrom: cert.ValidFrom, ValidTo: cert.ValidTo},
	})
	if err != nil {
		// Not issued after all: the handler deletes it and reports back
		// through IssuanceUndone.
		return err
	}
	o.metrics.Issued(c.KeyType, took)
	return nil
}

// IssuanceUndone accounts for a certificate deleted again because its
// issuance could not be audited. It was never counted as issued or live,
// so only the removal event is counted; a certificate the delete left
// behind is live until the sweeper removes it at expiry.
func (o *observer) IssuanceUndone(
	ctx context.Context,
	p *auth.Principal,
	c *session.Issued,
	ev *store.Event,
	err error,
) {
	o.metrics.IssuanceUndone(ev)
	if err != nil {
		o.log.Error("certificate left in the store after a failed audit write",
			slog.String("certificateId", c.Certificate.ID), slog.Any("error", err))
		return
	}
	o.write(audit.Event{
		Type: audit.TypeCertificateDeleted, RequestID: httpx.RequestID(ctx), Reason: "notAudited",
		IdentityID: p.IdentityID, APISessionID: p.APISessionID, Fingerprints: ev.Fingerprints,
		Certificate: &audit.Certificate{ID: c.Certificate.ID},
	})
}

func (o *observer) CertificateRefused(_ context.Context, _ *auth.Principal, err error) {
	var csrErr *ca.CSRError
	switch {
	case errors.As(err, &csrErr):
		o.metrics.Refused(metrics.RefusalBadCSR)
	case errors.Is(err, session.ErrCertificateLimit):
		o.metrics.Refused(metrics.RefusalCertCap)
	case errors.Is(err, session.ErrIssueRateLimited):
		o.metrics.Refused(metrics.RefusalRateLimited)
	case ca.CannotSign(err):
		o.metrics.Refused(metrics.RefusalCAUnavailable)
	}
}

// CertificateDeleted records a deletion on disk before the reply goes out.
func (o *observer) CertificateDeleted(ctx context.Context, p *auth.Principal, certID string, ev *store.Event) error {
	o.metrics.Removed(*ev)
	return o.audit.WriteDurable(audit.Event{
		Type: audit.TypeCertificateDeleted, RequestID: httpx.RequestID(ctx),
		IdentityID: p.IdentityID, APISessionID: p.APISessionID, Fingerprints: ev.Fingerprints,
		Certificate: &audit.Certificate{ID: certID},
	})
}

func (o *observer) AdmissionRefused(ctx context.Context, router *auth.Principal, code, fingerprint string) {
	o.write(audit.Event{
		Type: audit.TypeAdmissionRefused, RequestID: httpx.RequestID(ctx), Reason: code,
		IdentityID: router.IdentityID, Fingerprints: []string{fingerprint},
	})
}

func (o *observer) Waiting(delta int) { o.metrics.Waiting(delta) }

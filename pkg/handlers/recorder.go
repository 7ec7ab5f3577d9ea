package handlers

import (
	"context"
	"time"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// LoginAttempt describes a login for metrics and the audit trail.
type LoginAttempt struct {
	Method   string // password, cert or ext-jwt
	Username string // the attempted username of a password login
	Source   string // client address
	Result   *auth.Result
	Session  *session.Session // the new session, on success
	Err      error            // nil on success
}

// Recorder is told about security-relevant outcomes, for metrics and the
// audit trail. Methods returning an error must have recorded durably before
// the reply goes out; an error fails the request.
type Recorder interface {
	Login(ctx context.Context, a LoginAttempt)
	CertificateIssued(ctx context.Context, p *auth.Principal, c *session.Issued, took time.Duration) error
	// IssuanceUndone is told that an issued certificate was deleted again
	// because CertificateIssued failed: ev is the removal event, or nil
	// when the delete failed too (err) and the certificate stays stored.
	IssuanceUndone(ctx context.Context, p *auth.Principal, c *session.Issued, ev *store.Event, err error)
	CertificateRefused(ctx context.Context, p *auth.Principal, err error)
	CertificateDeleted(ctx context.Context, p *auth.Principal, certID string, ev *store.Event) error
	AdmissionRefused(ctx context.Context, router *auth.Principal, code, fingerprint string)
	Waiting(delta int)
}

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) Login(context.Context, LoginAttempt) {}
func (nopRecorder) CertificateIssued(context.Context, *auth.Principal, *session.Issued, time.Duration) error {
	return nil
}
func (nopRecorder) IssuanceUndone(context.Context, *auth.Principal, *session.Issued, *store.Event, error) {
}
func (nopRecorder) CertificateRefused(context.Context, *auth.Principal, error) {}
func (nopRecorder) CertificateDeleted(context.Context, *auth.Principal, string, *store.Event) error {
	return nil
}
func (nopRecorder) AdmissionRefused(context.Context, *auth.Principal, string, string) {}
func (nopRecorder) Waiting(int)                                                       {}

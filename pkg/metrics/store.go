package metrics

import (
	"context"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// InstrumentStore returns s with the latency of its request-path operations
// recorded in m. Other operations pass through unmeasured.
func InstrumentStore(s store.Store, m *Metrics) store.Store {
	if m == nil {
		return s
	}
	return &instrumented{Store: s, m: m}
}

type instrumented struct {
	store.Store
	m *Metrics
}

func (i *instrumented) observe(op string, start time.Time) { i.m.StoreOp(op, time.Since(start)) }

func (i *instrumented) CreateAPISession(ctx context.Context, s *store.APISession, c []*store.Certificate) error {
	defer i.observe("CreateAPISession", time.Now())
	return i.Store.CreateAPISession(ctx, s, c)
}

func (i *instrumented) FindAPISessionByTokenHash(ctx context.Context, h store.TokenHash) (*store.APISession, error) {
	defer i.observe("FindAPISessionByTokenHash", time.Now())
	return i.Store.FindAPISessionByTokenHash(ctx, h)
}

func (i *instrumented) TouchAPISessions(ctx context.Context, t []store.Touch) error {
	defer i.observe("TouchAPISessions", time.Now())
	return i.Store.TouchAPISessions(ctx, t)
}

func (i *instrumented) DeleteAPISession(
	ctx context.Context,
	id string,
	cause store.Cause,
	at time.Time,
) (*store.Event, error) {
	defer i.observe("DeleteAPISession", time.Now())
	return i.Store.DeleteAPISession(ctx, id, cause, at)
}

func (i *instrumented) DeleteExpiredAPISessions(ctx context.Context, now time.Time, limit int) ([]store.Event, error) {
	defer i.observe("DeleteExpiredAPISessions", time.Now())
	return i.Store.DeleteExpiredAPISessions(ctx, now, limit)
}

func (i *instrumented) CreateCertificate(ctx context.Context, c *store.Certificate, maxLive int, now time.Time) error {
	defer i.observe("CreateCertificate", time.Now())
	return i.Store.CreateCertificate(ctx, c, maxLive, now)
}

func (i *instrumented) ListCertificates(
	ctx context.Context,
	apiSessionID string,
	now time.Time,
	p store.Page,
) ([]*store.Certificate, int, error) {
	defer i.observe("ListCertificates", time.Now())
	return i.Store.ListCertificates(ctx, apiSessionID, now, p)
}

func (i *instrumented) FindCertificateByFingerprint(
	ctx context.Context,
	apiSessionID, fingerprint string,
) (*store.Certificate, error) {
	defer i.observe("FindCertificateByFingerprint", time.Now())
	return i.Store.FindCertificateByFingerprint(ctx, apiSessionID, fingerprint)
}

func (i *instrumented) DeleteCertificate(
	ctx context.Context,
	apiSessionID, id string,
	at time.Time,
) (*store.Event, error) {
	defer i.observe("DeleteCertificate", time.Now())
	return i.Store.DeleteCertificate(ctx, apiSessionID, id, at)
}

func (i *instrumented) Events(ctx context.Context, after uint64, limit int) ([]store.Event, error) {
	defer i.observe("Events", time.Now())
	return i.Store.Events(ctx, after, limit)
}

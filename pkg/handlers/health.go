package handlers

import (
	"context"
	"time"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/restapi/operations/informational"
)

// HealthCheck is the outcome of one health check.
type HealthCheck struct {
	ID       string
	Healthy  bool
	Duration time.Duration
	Detail   string
}

type healthHandler struct{ h *Handlers }

func (hh healthHandler) Handle(p informational.ListHealthChecksParams) informational.ListHealthChecksResponder {
	ctx := p.HTTPRequest.Context()

	checks := hh.h.cfg.Health(ctx)

	healthy := true
	data := make([]*models.HealthCheck, 0, len(checks))
	for _, c := range checks {
		healthy = healthy && c.Healthy
		data = append(data, &models.HealthCheck{
			ID:                ptr(c.ID),
			Healthy:           ptr(c.Healthy),
			LastCheckDuration: ptr(c.Duration.String()),
			Detail:            ptr(c.Detail),
		})
	}
	env := &models.HealthEnvelope{Data: &models.Health{Healthy: ptr(healthy), Checks: data}, Meta: emptyMeta()}
	if !healthy {
		return informational.NewListHealthChecksServiceUnavailable().WithPayload(env)
	}
	return informational.NewListHealthChecksOK().WithPayload(env)
}

// noHealth is the health function of handlers built without one.
func noHealth(context.Context) []HealthCheck { return nil }

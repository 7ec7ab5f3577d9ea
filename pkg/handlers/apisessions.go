package handlers

import (
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/session"
	aps "github.com/sessioncert/sessioncert/restapi/operations/api_sessions"
)

type listSessionsHandler struct{ h *Handlers }

func (l listSessionsHandler) Handle(p aps.ListAPISessionsParams, _ *auth.Principal) aps.ListAPISessionsResponder {
	ctx := p.HTTPRequest.Context()
	page := toPage(p.Limit, p.Offset)

	list, total, err := l.h.cfg.Registry.List(ctx, page)
	if err != nil {
		return listSessionsErrors.reply(ctx, err)
	}

	data := make([]*models.APISessionDetail, 0, len(list))
	for _, s := range list {
		data = append(data, toSessionDetail(s))
	}
	return aps.NewListAPISessionsOK().WithPayload(
		&models.APISessionListEnvelope{Data: data, Meta: listMeta(page, total)})
}

var listSessionsErrors = errorReplies[aps.ListAPISessionsResponder]{
	400: &aps.ListAPISessionsBadRequest{},
	401: &aps.ListAPISessionsUnauthorized{},
	500: &aps.ListAPISessionsInternalServerError{},
	503: &aps.ListAPISessionsServiceUnavailable{},
}

type detailSessionHandler struct{ h *Handlers }

func (d detailSessionHandler) Handle(p aps.DetailAPISessionParams, _ *auth.Principal) aps.DetailAPISessionResponder {
	ctx := p.HTTPRequest.Context()

	s, err := d.h.cfg.Registry.Get(ctx, p.ID)
	if err != nil {
		return detailSessionErrors.reply(ctx, err)
	}

	return aps.NewDetailAPISessionOK().WithPayload(
		&models.APISessionDetailEnvelope{Data: toSessionDetail(s), Meta: emptyMeta()})
}

var detailSessionErrors = errorReplies[aps.DetailAPISessionResponder]{
	401: &aps.DetailAPISessionUnauthorized{},
	404: &aps.DetailAPISessionNotFound{},
	500: &aps.DetailAPISessionInternalServerError{},
	503: &aps.DetailAPISessionServiceUnavailable{},
}

type deleteSessionHandler struct{ h *Handlers }

func (d deleteSessionHandler) Handle(p aps.DeleteAPISessionParams, pr *auth.Principal) aps.DeleteAPISessionResponder {
	ctx := p.HTTPRequest.Context()

	err := d.h.cfg.Manage.DeleteSession(ctx, pr.IdentityID, p.ID)
	if err != nil {
		return deleteSessionErrors.reply(ctx, err)
	}

	return aps.NewDeleteAPISessionOK().WithPayload(emptyEnvelope())
}

var deleteSessionErrors = errorReplies[aps.DeleteAPISessionResponder]{
	401: &aps.DeleteAPISessionUnauthorized{},
	404: &aps.DeleteAPISessionNotFound{},
	500: &aps.DeleteAPISessionInternalServerError{},
	503: &aps.DeleteAPISessionServiceUnavailable{},
}

// toSessionDetail is the session as an administrator sees it: everything
// but the token.
func toSessionDetail(s *session.Session) *models.APISessionDetail {
	d := toCurrentSessionDetail(s, "")
	return &models.APISessionDetail{
		ID:                d.ID,
		CreatedAt:         d.CreatedAt,
		UpdatedAt:         d.UpdatedAt,
		Links:             selfLink("./api-sessions/" + s.ID),
		Tags:              d.Tags,
		Identity:          d.Identity,
		IdentityID:        d.IdentityID,
		IPAddress:         d.IPAddress,
		ConfigTypes:       d.ConfigTypes,
		AuthQueries:       d.AuthQueries,
		IsMfaRequired:     d.IsMfaRequired,
		IsMfaComplete:     d.IsMfaComplete,
		AuthenticatorID:   d.AuthenticatorID,
		IsCertExtendable:  d.IsCertExtendable,
		LastActivityAt:    d.LastActivityAt,
		ExpiresAt:         d.ExpiresAt,
		ExpirationSeconds: d.ExpirationSeconds,
	}
}

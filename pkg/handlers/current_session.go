package handlers

import (
	"errors"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	cur "github.com/sessioncert/sessioncert/restapi/operations/current_api_session"
)

type getCurrentSessionHandler struct{ h *Handlers }

func (g getCurrentSessionHandler) Handle(
	p cur.GetCurrentAPISessionParams,
	principal *auth.Principal,
) cur.GetCurrentAPISessionResponder {
	ctx := p.HTTPRequest.Context()

	s, err := g.h.cfg.Registry.Get(ctx, principal.APISessionID)
	if errors.Is(err, session.ErrNotFound) {
		err = session.ErrInvalidToken // ended between authentication and now
	}
	if err != nil {
		return getCurrentSessionErrors.reply(ctx, err)
	}

	return cur.NewGetCurrentAPISessionOK().WithPayload(toCurrentSessionEnvelope(s, token(p.HTTPRequest)))
}

var getCurrentSessionErrors = errorReplies[cur.GetCurrentAPISessionResponder]{
	401: &cur.GetCurrentAPISessionUnauthorized{},
	500: &cur.GetCurrentAPISessionInternalServerError{},
	503: &cur.GetCurrentAPISessionServiceUnavailable{},
}

type deleteCurrentSessionHandler struct{ h *Handlers }

func (d deleteCurrentSessionHandler) Handle(
	p cur.DeleteCurrentAPISessionParams,
	principal *auth.Principal,
) cur.DeleteCurrentAPISessionResponder {
	ctx := p.HTTPRequest.Context()

	_, err := d.h.cfg.Registry.Delete(ctx, principal.APISessionID, store.CauseLogout)
	if errors.Is(err, session.ErrNotFound) {
		err = session.ErrInvalidToken
	}
	if err != nil {
		return deleteCurrentSessionErrors.reply(ctx, err)
	}

	return cur.NewDeleteCurrentAPISessionOK().WithPayload(emptyEnvelope())
}

var deleteCurrentSessionErrors = errorReplies[cur.DeleteCurrentAPISessionResponder]{
	401: &cur.DeleteCurrentAPISessionUnauthorized{},
	500: &cur.DeleteCurrentAPISessionInternalServerError{},
	503: &cur.DeleteCurrentAPISessionServiceUnavailable{},
}

func emptyEnvelope() *models.EmptyEnvelope {
	return &models.EmptyEnvelope{Data: map[string]any{}, Meta: emptyMeta()}
}

func toCurrentSessionEnvelope(s *session.Session, tok string) *models.CurrentAPISessionDetailEnvelope {
	return &models.CurrentAPISessionDetailEnvelope{Data: toCurrentSessionDetail(s, tok), Meta: emptyMeta()}
}

func toCurrentSessionDetail(s *session.Session, tok string) *models.CurrentAPISessionDetail {
	return &models.CurrentAPISessionDetail{
		ID:        ptr(s.ID),
		CreatedAt: dateTime(s.CreatedAt),
		UpdatedAt: dateTime(s.UpdatedAt),
		Links: models.Links{
			"self":         models.Link{Href: ptr("./current-api-session")},
			"certificates": models.Link{Href: ptr("./current-api-session/certificates")},
		},
		Tags:              emptyTags(),
		Token:             ptr(tok),
		Identity:          toIdentityRef(&s.Identity),
		IdentityID:        ptr(s.IdentityID),
		IPAddress:         ptr(s.IPAddress),
		ConfigTypes:       []string{}, // a login's configTypes are accepted and ignored
		AuthQueries:       []any{},
		IsMfaRequired:     ptr(false),
		IsMfaComplete:     ptr(false),
		AuthenticatorID:   ptr(s.AuthenticatorID),
		IsCertExtendable:  ptr(false),
		LastActivityAt:    *dateTime(s.LastActivityAt),
		ExpiresAt:         dateTime(s.ExpiresAt),
		ExpirationSeconds: ptr(int64(s.Timeout.Seconds())),
	}
}

func toIdentityRef(id *store.Identity) *models.EntityRef {
	return &models.EntityRef{
		ID:     ptr(id.ID),
		Name:   ptr(id.Name),
		Entity: ptr("identities"),
		Links:  selfLink("./identities/" + id.ID),
	}
}

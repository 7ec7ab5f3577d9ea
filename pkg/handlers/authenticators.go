package handlers

import (
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/store"
	authn "github.com/sessioncert/sessioncert/restapi/operations/authenticators"
)

type listAuthenticatorsHandler struct{ h *Handlers }

func (l listAuthenticatorsHandler) Handle(
	p authn.ListAuthenticatorsParams,
	_ *auth.Principal,
) authn.ListAuthenticatorsResponder {
	ctx := p.HTTPRequest.Context()
	page := toPage(p.Limit, p.Offset)

	list, total, err := l.h.cfg.Manage.ListAuthenticators(ctx, page)
	if err != nil {
		return listAuthenticatorsErrors.reply(ctx, err)
	}

	data := make([]*models.AuthenticatorDetail, 0, len(list))
	for _, a := range list {
		data = append(data, toAuthenticatorDetail(a))
	}
	return authn.NewListAuthenticatorsOK().WithPayload(
		&models.AuthenticatorListEnvelope{Data: data, Meta: listMeta(page, total)})
}

var listAuthenticatorsErrors = errorReplies[authn.ListAuthenticatorsResponder]{
	400: &authn.ListAuthenticatorsBadRequest{},
	401: &authn.ListAuthenticatorsUnauthorized{},
	500: &authn.ListAuthenticatorsInternalServerError{},
	503: &authn.ListAuthenticatorsServiceUnavailable{},
}

type createAuthenticatorHandler struct{ h *Handlers }

func (c createAuthenticatorHandler) Handle(
	p authn.CreateAuthenticatorParams,
	pr *auth.Principal,
) authn.CreateAuthenticatorResponder {
	ctx := p.HTTPRequest.Context()
	in := manage.AuthenticatorInput{
		Method:     *p.Body.Method,
		IdentityID: *p.Body.IdentityID,
		Username:   optional(p.Body.Username),
		Password:   optional(p.Body.Password.String()),
		CertPEM:    optional(p.Body.CertPem),
	}

	a, err := c.h.cfg.Manage.CreateAuthenticator(ctx, pr.IdentityID, in)
	if err != nil {
		return createAuthenticatorErrors.reply(ctx, err)
	}

	return authn.NewCreateAuthenticatorCreated().WithPayload(createdEnvelope(a.ID, authenticatorHref(a.ID)))
}

var createAuthenticatorErrors = errorReplies[authn.CreateAuthenticatorResponder]{
	400: &authn.CreateAuthenticatorBadRequest{},
	401: &authn.CreateAuthenticatorUnauthorized{},
	413: &authn.CreateAuthenticatorRequestEntityTooLarge{},
	500: &authn.CreateAuthenticatorInternalServerError{},
	503: &authn.CreateAuthenticatorServiceUnavailable{},
}

type detailAuthenticatorHandler struct{ h *Handlers }

func (d detailAuthenticatorHandler) Handle(
	p authn.DetailAuthenticatorParams,
	_ *auth.Principal,
) authn.DetailAuthenticatorResponder {
	ctx := p.HTTPRequest.Context()

	a, err := d.h.cfg.Manage.GetAuthenticator(ctx, p.ID)
	if err != nil {
		return detailAuthenticatorErrors.reply(ctx, err)
	}

	return authn.NewDetailAuthenticatorOK().WithPayload(
		&models.AuthenticatorDetailEnvelope{Data: toAuthenticatorDetail(a), Meta: emptyMeta()})
}

var detailAuthenticatorErrors = errorReplies[authn.DetailAuthenticatorResponder]{
	401: &authn.DetailAuthenticatorUnauthorized{},
	404: &authn.DetailAuthenticatorNotFound{},
	500: &authn.DetailAuthenticatorInternalServerError{},
	503: &authn.DetailAuthenticatorServiceUnavailable{},
}

type patchAuthenticatorHandler struct{ h *Handlers }

func (u patchAuthenticatorHandler) Handle(
	p authn.PatchAuthenticatorParams,
	pr *auth.Principal,
) authn.PatchAuthenticatorResponder {
	ctx := p.HTTPRequest.Context()
	in := manage.AuthenticatorInput{Username: p.Body.Username}
	if p.Body.Password != nil {
		in.Password = ptr(p.Body.Password.String())
	}

	err := u.h.cfg.Manage.UpdateAuthenticator(ctx, pr.IdentityID, p.ID, in)
	if err != nil {
		return patchAuthenticatorErrors.reply(ctx, err)
	}

	return authn.NewPatchAuthenticatorOK().WithPayload(emptyEnvelope())
}

var patchAuthenticatorErrors = errorReplies[authn.PatchAuthenticatorResponder]{
	400: &authn.PatchAuthenticatorBadRequest{},
	401: &authn.PatchAuthenticatorUnauthorized{},
	404: &authn.PatchAuthenticatorNotFound{},
	413: &authn.PatchAuthenticatorRequestEntityTooLarge{},
	500: &authn.PatchAuthenticatorInternalServerError{},
	503: &authn.PatchAuthenticatorServiceUnavailable{},
}

type deleteAuthenticatorHandler struct{ h *Handlers }

func (d deleteAuthenticatorHandler) Handle(
	p authn.DeleteAuthenticatorParams,
	pr *auth.Principal,
) authn.DeleteAuthenticatorResponder {
	ctx := p.HTTPRequest.Context()

	err := d.h.cfg.Manage.DeleteAuthenticator(ctx, pr.IdentityID, p.ID)
	if err != nil {
		return deleteAuthenticatorErrors.reply(ctx, err)
	}

	return authn.NewDeleteAuthenticatorOK().WithPayload(emptyEnvelope())
}

var deleteAuthenticatorErrors = errorReplies[authn.DeleteAuthenticatorResponder]{
	401: &authn.DeleteAuthenticatorUnauthorized{},
	404: &authn.DeleteAuthenticatorNotFound{},
	500: &authn.DeleteAuthenticatorInternalServerError{},
	503: &authn.DeleteAuthenticatorServiceUnavailable{},
}

func authenticatorHref(id string) string { return "./authenticators/" + id }

// toAuthenticatorDetail leaves out the password hash and the certificate:
// secrets and credentials are write-only.
func toAuthenticatorDetail(a *store.Authenticator) *models.AuthenticatorDetail {
	return &models.AuthenticatorDetail{
		ID:          ptr(a.ID),
		CreatedAt:   dateTime(a.CreatedAt),
		UpdatedAt:   dateTime(a.UpdatedAt),
		Links:       selfLink(authenticatorHref(a.ID)),
		Tags:        emptyTags(),
		Method:      ptr(string(a.Method)),
		IdentityID:  ptr(a.IdentityID),
		Username:    a.Username,
		Fingerprint: a.Fingerprint,
	}
}

// optional turns an absent (empty) optional field into nil.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

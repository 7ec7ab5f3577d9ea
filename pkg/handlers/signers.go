package handlers

import (
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/store"
	ejs "github.com/sessioncert/sessioncert/restapi/operations/external_jwt_signers"
)

type listSignersHandler struct{ h *Handlers }

func (l listSignersHandler) Handle(
	p ejs.ListExternalJWTSignersParams,
	_ *auth.Principal,
) ejs.ListExternalJWTSignersResponder {
	ctx := p.HTTPRequest.Context()
	page := toPage(p.Limit, p.Offset)

	list, total, err := l.h.cfg.Manage.ListSigners(ctx, page)
	if err != nil {
		return listSignersErrors.reply(ctx, err)
	}

	data := make([]*models.ExternalJwtSignerDetail, 0, len(list))
	for _, s := range list {
		data = append(data, toSignerDetail(s))
	}
	return ejs.NewListExternalJWTSignersOK().WithPayload(
		&models.ExternalJwtSignerListEnvelope{Data: data, Meta: listMeta(page, total)})
}

var listSignersErrors = errorReplies[ejs.ListExternalJWTSignersResponder]{
	400: &ejs.ListExternalJWTSignersBadRequest{},
	401: &ejs.ListExternalJWTSignersUnauthorized{},
	500: &ejs.ListExternalJWTSignersInternalServerError{},
	503: &ejs.ListExternalJWTSignersServiceUnavailable{},
}

type createSignerHandler struct{ h *Handlers }

func (c createSignerHandler) Handle(
	p ejs.CreateExternalJWTSignerParams,
	pr *auth.Principal,
) ejs.CreateExternalJWTSignerResponder {
	ctx := p.HTTPRequest.Context()
	b := p.Body
	in := manage.SignerInput{
		Name: b.Name, Issuer: b.Issuer, Audience: b.Audience,
		JWKSEndpoint: optional(b.JwksEndpoint), CertPEM: optional(b.CertPem),
		ClaimsProperty: optional(b.ClaimsProperty), UseExternalID: &b.UseExternalID, Enabled: b.Enabled,
	}

	s, err := c.h.cfg.Manage.CreateSigner(ctx, pr.IdentityID, in)
	if err != nil {
		return createSignerErrors.reply(ctx, err)
	}

	return ejs.NewCreateExternalJWTSignerCreated().WithPayload(createdEnvelope(s.ID, signerHref(s.ID)))
}

var createSignerErrors = errorReplies[ejs.CreateExternalJWTSignerResponder]{
	400: &ejs.CreateExternalJWTSignerBadRequest{},
	401: &ejs.CreateExternalJWTSignerUnauthorized{},
	413: &ejs.CreateExternalJWTSignerRequestEntityTooLarge{},
	500: &ejs.CreateExternalJWTSignerInternalServerError{},
	503: &ejs.CreateExternalJWTSignerServiceUnavailable{},
}

type detailSignerHandler struct{ h *Handlers }

func (d detailSignerHandler) Handle(
	p ejs.DetailExternalJWTSignerParams,
	_ *auth.Principal,
) ejs.DetailExternalJWTSignerResponder {
	ctx := p.HTTPRequest.Context()

	s, err := d.h.cfg.Manage.GetSigner(ctx, p.ID)
	if err != nil {
		return detailSignerErrors.reply(ctx, err)
	}

	return ejs.NewDetailExternalJWTSignerOK().WithPayload(
		&models.ExternalJwtSignerDetailEnvelope{Data: toSignerDetail(s), Meta: emptyMeta()})
}

var detailSignerErrors = errorReplies[ejs.DetailExternalJWTSignerResponder]{
	401: &ejs.DetailExternalJWTSignerUnauthorized{},
	404: &ejs.DetailExternalJWTSignerNotFound{},
	500: &ejs.DetailExternalJWTSignerInternalServerError{},
	503: &ejs.DetailExternalJWTSignerServiceUnavailable{},
}

type patchSignerHandler struct{ h *Handlers }

func (u patchSignerHandler) Handle(
	p ejs.PatchExternalJWTSignerParams,
	pr *auth.Principal,
) ejs.PatchExternalJWTSignerResponder {
	ctx := p.HTTPRequest.Context()
	b := p.Body
	in := manage.SignerInput{
		Name: b.Name, Issuer: b.Issuer, Audience: b.Audience, JWKSEndpoint: b.JwksEndpoint, CertPEM: b.CertPem,
		ClaimsProperty: b.ClaimsProperty, UseExternalID: b.UseExternalID, Enabled: b.Enabled,
	}

	err := u.h.cfg.Manage.UpdateSigner(ctx, pr.IdentityID, p.ID, in)
	if err != nil {
		return patchSignerErrors.reply(ctx, err)
	}

	return ejs.NewPatchExternalJWTSignerOK().WithPayload(emptyEnvelope())
}

var patchSignerErrors = errorReplies[ejs.PatchExternalJWTSignerResponder]{
	400: &ejs.PatchExternalJWTSignerBadRequest{},
	401: &ejs.PatchExternalJWTSignerUnauthorized{},
	404: &ejs.PatchExternalJWTSignerNotFound{},
	413: &ejs.PatchExternalJWTSignerRequestEntityTooLarge{},
	500: &ejs.PatchExternalJWTSignerInternalServerError{},
	503: &ejs.PatchExternalJWTSignerServiceUnavailable{},
}

type deleteSignerHandler struct{ h *Handlers }

func (d deleteSignerHandler) Handle(
	p ejs.DeleteExternalJWTSignerParams,
	pr *auth.Principal,
) ejs.DeleteExternalJWTSignerResponder {
	ctx := p.HTTPRequest.Context()

	err := d.h.cfg.Manage.DeleteSigner(ctx, pr.IdentityID, p.ID)
	if err != nil {
		return deleteSignerErrors.reply(ctx, err)
	}

	return ejs.NewDeleteExternalJWTSignerOK().WithPayload(emptyEnvelope())
}

var deleteSignerErrors = errorReplies[ejs.DeleteExternalJWTSignerResponder]{
	401: &ejs.DeleteExternalJWTSignerUnauthorized{},
	404: &ejs.DeleteExternalJWTSignerNotFound{},
	500: &ejs.DeleteExternalJWTSignerInternalServerError{},
	503: &ejs.DeleteExternalJWTSignerServiceUnavailable{},
}

func signerHref(id string) string { return "./external-jwt-signers/" + id }

func toSignerDetail(s *store.ExtJWTSigner) *models.ExternalJwtSignerDetail {
	return &models.ExternalJwtSignerDetail{
		ID:             ptr(s.ID),
		CreatedAt:      dateTime(s.CreatedAt),
		UpdatedAt:      dateTime(s.UpdatedAt),
		Links:          selfLink(signerHref(s.ID)),
		Tags:           emptyTags(),
		Name:           ptr(s.Name),
		Issuer:         ptr(s.Issuer),
		Audience:       ptr(s.Audience),
		JwksEndpoint:   s.JWKSEndpoint,
		CertPem:        s.CertPEM,
		ClaimsProperty: ptr(s.ClaimsProperty),
		UseExternalID:  ptr(s.UseExternalID),
		Enabled:        ptr(s.Enabled),
	}
}

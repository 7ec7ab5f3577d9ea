package handlers

import (
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/store"
	ids "github.com/sessioncert/sessioncert/restapi/operations/identities"
)

type listIdentitiesHandler struct{ h *Handlers }

func (l listIdentitiesHandler) Handle(p ids.ListIdentitiesParams, _ *auth.Principal) ids.ListIdentitiesResponder {
	ctx := p.HTTPRequest.Context()
	page := toPage(p.Limit, p.Offset)

	list, total, err := l.h.cfg.Manage.ListIdentities(ctx, page)
	if err != nil {
		return listIdentitiesErrors.reply(ctx, err)
	}

	data := make([]*models.IdentityDetail, 0, len(list))
	for _, i := range list {
		data = append(data, toIdentityDetail(i))
	}
	return ids.NewListIdentitiesOK().WithPayload(&models.IdentityListEnvelope{Data: data, Meta: listMeta(page, total)})
}

var listIdentitiesErrors = errorReplies[ids.ListIdentitiesResponder]{
	400: &ids.ListIdentitiesBadRequest{},
	401: &ids.ListIdentitiesUnauthorized{},
	500: &ids.ListIdentitiesInternalServerError{},
	503: &ids.ListIdentitiesServiceUnavailable{},
}

type createIdentityHandler struct{ h *Handlers }

func (c createIdentityHandler) Handle(p ids.CreateIdentityParams, pr *auth.Principal) ids.CreateIdentityResponder {
	ctx := p.HTTPRequest.Context()
	in := manage.IdentityInput{
		Name:       p.Body.Name,
		Type:       (*string)(p.Body.Type),
		IsAdmin:    &p.Body.IsAdmin,
		ExternalID: &p.Body.ExternalID,
	}

	ident, err := c.h.cfg.Manage.CreateIdentity(ctx, pr.IdentityID, in)
	if err != nil {
		return createIdentityErrors.reply(ctx, err)
	}

	return ids.NewCreateIdentityCreated().WithPayload(createdEnvelope(ident.ID, identityHref(ident.ID)))
}

var createIdentityErrors = errorReplies[ids.CreateIdentityResponder]{
	400: &ids.CreateIdentityBadRequest{},
	401: &ids.CreateIdentityUnauthorized{},
	413: &ids.CreateIdentityRequestEntityTooLarge{},
	500: &ids.CreateIdentityInternalServerError{},
	503: &ids.CreateIdentityServiceUnavailable{},
}

type detailIdentityHandler struct{ h *Handlers }

func (d detailIdentityHandler) Handle(p ids.DetailIdentityParams, _ *auth.Principal) ids.DetailIdentityResponder {
	ctx := p.HTTPRequest.Context()

	ident, err := d.h.cfg.Manage.GetIdentity(ctx, p.ID)
	if err != nil {
		return detailIdentityErrors.reply(ctx, err)
	}

	return ids.NewDetailIdentityOK().WithPayload(
		&models.IdentityDetailEnvelope{Data: toIdentityDetail(ident), Meta: emptyMeta()})
}

var detailIdentityErrors = errorReplies[ids.DetailIdentityResponder]{
	401: &ids.DetailIdentityUnauthorized{},
	404: &ids.DetailIdentityNotFound{},
	500: &ids.DetailIdentityInternalServerError{},
	503: &ids.DetailIdentityServiceUnavailable{},
}

type patchIdentityHandler struct{ h *Handlers }

func (u patchIdentityHandler) Handle(p ids.PatchIdentityParams, pr *auth.Principal) ids.PatchIdentityResponder {
	ctx := p.HTTPRequest.Context()
	in := manage.IdentityInput{
		Name: p.Body.Name, Type: p.Body.Type, IsAdmin: p.Body.IsAdmin, ExternalID: p.Body.ExternalID,
	}

	err := u.h.cfg.Manage.UpdateIdentity(ctx, pr.IdentityID, p.ID, in)
	if err != nil {
		return patchIdentityErrors.reply(ctx, err)
	}

	return ids.NewPatchIdentityOK().WithPayload(emptyEnvelope())
}

var patchIdentityErrors = errorReplies[ids.PatchIdentityResponder]{
	400: &ids.PatchIdentityBadRequest{},
	401: &ids.PatchIdentityUnauthorized{},
	404: &ids.PatchIdentityNotFound{},
	413: &ids.PatchIdentityRequestEntityTooLarge{},
	500: &ids.PatchIdentityInternalServerError{},
	503: &ids.PatchIdentityServiceUnavailable{},
}

type deleteIdentityHandler struct{ h *Handlers }

func (d deleteIdentityHandler) Handle(p ids.DeleteIdentityParams, pr *auth.Principal) ids.DeleteIdentityResponder {
	ctx := p.HTTPRequest.Context()

	err := d.h.cfg.Manage.DeleteIdentity(ctx, pr.IdentityID, p.ID)
	if err != nil {
		return deleteIdentityErrors.reply(ctx, err)
	}

	return ids.NewDeleteIdentityOK().WithPayload(emptyEnvelope())
}

var deleteIdentityErrors = errorReplies[ids.DeleteIdentityResponder]{
	401: &ids.DeleteIdentityUnauthorized{},
	404: &ids.DeleteIdentityNotFound{},
	500: &ids.DeleteIdentityInternalServerError{},
	503: &ids.DeleteIdentityServiceUnavailable{},
}

func identityHref(id string) string { return "./identities/" + id }

func toIdentityDetail(i *store.Identity) *models.IdentityDetail {
	t := models.IdentityType(i.Type)
	return &models.IdentityDetail{
		ID:         ptr(i.ID),
		CreatedAt:  dateTime(i.CreatedAt),
		UpdatedAt:  dateTime(i.UpdatedAt),
		Links:      selfLink(identityHref(i.ID)),
		Tags:       emptyTags(),
		Name:       ptr(i.Name),
		Type:       &t,
		IsAdmin:    ptr(i.IsAdmin),
		ExternalID: i.ExternalID,
	}
}

func createdEnvelope(id, href string) *models.CreateEnvelope {
	return &models.CreateEnvelope{
		Data: &models.CreatedRef{ID: ptr(id), Links: selfLink(href)},
		Meta: emptyMeta(),
	}
}

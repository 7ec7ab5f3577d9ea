package handlers

import (
	"context"
	"time"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/store"
	cur "github.com/sessioncert/sessioncert/restapi/operations/current_api_session"
)

type createCertificateHandler struct{ h *Handlers }

func (c createCertificateHandler) Handle(
	p cur.CreateCurrentAPISessionCertificateParams,
	principal *auth.Principal,
) cur.CreateCurrentAPISessionCertificateResponder {
	ctx := p.HTTPRequest.Context()
	csr := []byte(*p.SessionCertificate.Csr)

	start := time.Now()
	issued, err := c.h.cfg.Issuer.Issue(ctx, principal.APISessionID, csr)
	if err != nil {
		c.h.cfg.Recorder.CertificateRefused(ctx, principal, err)
		return createCertificateErrors.reply(ctx, err)
	}
	if err := c.h.cfg.Recorder.CertificateIssued(ctx, principal, issued, time.Since(start)); err != nil {
		// The client never gets a certificate the audit trail does not
		// know; remove it rather than leave it unaccounted for. The delete
		// must not depend on the client staying connected.
		ev, derr := c.h.cfg.Issuer.Delete(context.WithoutCancel(ctx), principal.APISessionID,
			issued.Certificate.ID)
		c.h.cfg.Recorder.IssuanceUndone(ctx, principal, issued, ev, derr)
		return createCertificateErrors.reply(ctx, err)
	}

	cert := issued.Certificate
	return cur.NewCreateCurrentAPISessionCertificateCreated().WithPayload(
		&models.CurrentAPISessionCertificateCreateEnvelope{
			Data: &models.CurrentAPISessionCertificateCreated{
				ID:          ptr(cert.ID),
				Links:       selfLink(certificateHref(cert.ID)),
				Certificate: ptr(cert.ChainPEM),
				Cas:         ptr(c.h.cfg.Issuer.BundlePEM()),
			},
			Meta: emptyMeta(),
		})
}

var createCertificateErrors = errorReplies[cur.CreateCurrentAPISessionCertificateResponder]{
	400: &cur.CreateCurrentAPISessionCertificateBadRequest{},
	401: &cur.CreateCurrentAPISessionCertificateUnauthorized{},
	413: &cur.CreateCurrentAPISessionCertificateRequestEntityTooLarge{},
	429: &cur.CreateCurrentAPISessionCertificateTooManyRequests{},
	500: &cur.CreateCurrentAPISessionCertificateInternalServerError{},
	503: &cur.CreateCurrentAPISessionCertificateServiceUnavailable{},
}

type listCertificatesHandler struct{ h *Handlers }

func (l listCertificatesHandler) Handle(
	p cur.ListCurrentAPISessionCertificatesParams,
	principal *auth.Principal,
) cur.ListCurrentAPISessionCertificatesResponder {
	ctx := p.HTTPRequest.Context()
	page := toPage(p.Limit, p.Offset)

	certs, total, err := l.h.cfg.Issuer.List(ctx, principal.APISessionID, page)
	if err != nil {
		return listCertificatesErrors.reply(ctx, err)
	}

	data := make([]*models.CurrentAPISessionCertificateDetail, 0, len(certs))
	for _, c := range certs {
		data = append(data, toCertificateDetail(c))
	}
	return cur.NewListCurrentAPISessionCertificatesOK().WithPayload(
		&models.CurrentAPISessionCertificateListEnvelope{
			Data: data,
			Meta: listMeta(page, total),
		})
}

var listCertificatesErrors = errorReplies[cur.ListCurrentAPISessionCertificatesResponder]{
	400: &cur.ListCurrentAPISessionCertificatesBadRequest{},
	401: &cur.ListCurrentAPISessionCertificatesUnauthorized{},
	500: &cur.ListCurrentAPISessionCertificatesInternalServerError{},
	503: &cur.ListCurrentAPISessionCertificatesServiceUnavailable{},
}

type detailCertificateHandler struct{ h *Handlers }

func (d detailCertificateHandler) Handle(
	p cur.DetailCurrentAPISessionCertificateParams,
	principal *auth.Principal,
) cur.DetailCurrentAPISessionCertificateResponder {
	ctx := p.HTTPRequest.Context()

	c, err := d.h.cfg.Issuer.Get(ctx, principal.APISessionID, p.ID)
	if err != nil {
		return detailCertificateErrors.reply(ctx, err)
	}

	return cur.NewDetailCurrentAPISessionCertificateOK().WithPayload(
		&models.CurrentAPISessionCertificateDetailEnvelope{Data: toCertificateDetail(c), Meta: emptyMeta()})
}

var detailCertificateErrors = errorReplies[cur.DetailCurrentAPISessionCertificateResponder]{
	401: &cur.DetailCurrentAPISessionCertificateUnauthorized{},
	404: &cur.DetailCurrentAPISessionCertificateNotFound{},
	500: &cur.DetailCurrentAPISessionCertificateInternalServerError{},
	503: &cur.DetailCurrentAPISessionCertificateServiceUnavailable{},
}

type deleteCertificateHandler struct{ h *Handlers }

func (d deleteCertificateHandler) Handle(
	p cur.DeleteCurrentAPISessionCertificateParams,
	principal *auth.Principal,
) cur.DeleteCurrentAPISessionCertificateResponder {
	ctx := p.HTTPRequest.Context()

	ev, err := d.h.cfg.Issuer.Delete(ctx, principal.APISessionID, p.ID)
	if err == nil {
		err = d.h.cfg.Recorder.CertificateDeleted(ctx, principal, p.ID, ev)
	}
	if err != nil {
		return deleteCertificateErrors.reply(ctx, err)
	}

	return cur.NewDeleteCurrentAPISessionCertificateOK().WithPayload(emptyEnvelope())
}

var deleteCertificateErrors = errorReplies[cur.DeleteCurrentAPISessionCertificateResponder]{
	401: &cur.DeleteCurrentAPISessionCertificateUnauthorized{},
	404: &cur.DeleteCurrentAPISessionCertificateNotFound{},
	500: &cur.DeleteCurrentAPISessionCertificateInternalServerError{},
	503: &cur.DeleteCurrentAPISessionCertificateServiceUnavailable{},
}

func certificateHref(id string) string { return "./current-api-session/certificates/" + id }

func toCertificateDetail(c *store.Certificate) *models.CurrentAPISessionCertificateDetail {
	return &models.CurrentAPISessionCertificateDetail{
		ID:          ptr(c.ID),
		CreatedAt:   dateTime(c.CreatedAt),
		UpdatedAt:   dateTime(c.CreatedAt),
		Links:       selfLink(certificateHref(c.ID)),
		Tags:        emptyTags(),
		Subject:     ptr(c.Subject),
		Fingerprint: ptr(c.Fingerprint),
		ValidFrom:   dateTime(c.ValidFrom),
		ValidTo:     dateTime(c.ValidTo),
		Certificate: ptr(c.ChainPEM),
	}
}

// toPage turns validated pagination parameters into a store page. The spec
// gives both defaults and bounds, so both are set and in range here.
func toPage(limit, offset *int64) store.Page {
	p := store.Page{Limit: 10}
	if limit != nil {
		p.Limit = int(*limit)
	}
	if offset != nil {
		p.Offset = int(*offset)
	}
	return p
}

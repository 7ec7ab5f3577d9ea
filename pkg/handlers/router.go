package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/restapi/operations/router"
)

// Codes of refused admissions and of the event stream.
const (
	CodeInvalidAPISession     = "INVALID_API_SESSION"
	CodeCertificateNotBound   = "CERTIFICATE_NOT_BOUND"
	CodeCertificateExpired    = "CERTIFICATE_EXPIRED"
	CodeCertificateUntrusted  = "CERTIFICATE_UNTRUSTED"
	CodeCursorExpired         = "CURSOR_EXPIRED"
	refusedAdmissionMessage   = "the client may not pass"
	cursorExpiredMessage      = "the cursor is older than the retained history; start again"
	chainNotParsedDescription = "must be PEM CERTIFICATE blocks, leaf first"
)

type createAdmissionHandler struct{ h *Handlers }

func (a createAdmissionHandler) Handle(
	p router.CreateAdmissionParams,
	principal *auth.Principal,
) router.CreateAdmissionResponder {
	ctx := p.HTTPRequest.Context()
	chain, err := session.ParseChain([]byte(*p.Body.Certificate))
	if err != nil {
		return createAdmissionErrors.reply(ctx, errValidation("certificate", chainNotParsedDescription, nil))
	}

	adm, err := a.h.cfg.Issuer.Admit(ctx, *p.Body.Token, chain)
	if err != nil {
		err = admissionError(err)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusForbidden {
			a.h.cfg.Recorder.AdmissionRefused(ctx, principal, ae.code, ca.Fingerprint(chain[0].Raw))
		}
		return createAdmissionErrors.reply(ctx, err)
	}

	s, c := adm.Session, adm.Certificate
	return router.NewCreateAdmissionOK().WithPayload(&models.AdmissionEnvelope{
		Data: &models.Admission{
			APISessionID:       ptr(s.ID),
			IdentityID:         ptr(s.IdentityID),
			IdentityName:       ptr(s.Identity.Name),
			CertificateID:      ptr(c.ID),
			Fingerprint:        ptr(c.Fingerprint),
			SessionExpiresAt:   dateTime(s.ExpiresAt),
			CertificateValidTo: dateTime(c.ValidTo),
		},
		Meta: emptyMeta(),
	})
}

// admissionError gives each refusal its own 403 code; other errors pass.
func admissionError(err error) error {
	var ae *session.AdmissionError
	if !errors.As(err, &ae) {
		return err
	}
	code := CodeCertificateUntrusted
	switch {
	case errors.Is(err, session.ErrAdmissionSession):
		code = CodeInvalidAPISession
	case errors.Is(err, session.ErrCertificateNotBound):
		code = CodeCertificateNotBound
	case errors.Is(err, session.ErrCertificateExpired):
		code = CodeCertificateExpired
	}
	return &apiError{status: http.StatusForbidden, code: code, message: refusedAdmissionMessage}
}

var createAdmissionErrors = errorReplies[router.CreateAdmissionResponder]{
	400: &router.CreateAdmissionBadRequest{},
	401: &router.CreateAdmissionUnauthorized{},
	403: &router.CreateAdmissionForbidden{},
	413: &router.CreateAdmissionRequestEntityTooLarge{},
	500: &router.CreateAdmissionInternalServerError{},
	503: &router.CreateAdmissionServiceUnavailable{},
}

type listEventsHandler struct{ h *Handlers }

func (l listEventsHandler) Handle(p router.ListEventsParams, _ *auth.Principal) router.ListEventsResponder {
	ctx := p.HTTPRequest.Context()
	reg := l.h.cfg.Registry

	// An empty cursor is a router that lost its own: it must be told, not
	// silently given the current one and so skip the events in between.
	if q := p.HTTPRequest.URL.Query(); q.Has("after") && q.Get("after") == "" {
		return listEventsErrors.reply(ctx, errValidation("after", "must be a cursor", ""))
	}
	// Without a cursor the router is starting: tell it where from.
	if p.After == nil {
		cursor, err := reg.EventCursor(ctx)
		if err != nil {
			return listEventsErrors.reply(ctx, err)
		}
		return router.NewListEventsOK().WithPayload(toEventsEnvelope(nil, cursor))
	}
	after, err := strconv.ParseUint(*p.After, 10, 64)
	if err != nil {
		return listEventsErrors.reply(ctx, errValidation("after", "must be a cursor", *p.After))
	}
	wait := time.Duration(*p.Wait) * time.Second

	if wait > 0 {
		l.h.cfg.Recorder.Waiting(1)
		defer l.h.cfg.Recorder.Waiting(-1)
	}
	evs, next, err := reg.Events(ctx, after, wait, int(*p.Limit))
	if errors.Is(err, store.ErrCursorExpired) {
		err = &apiError{status: http.StatusGone, code: CodeCursorExpired, message: cursorExpiredMessage}
	}
	if err != nil {
		return listEventsErrors.reply(ctx, err)
	}

	return router.NewListEventsOK().WithPayload(toEventsEnvelope(evs, next))
}

var listEventsErrors = errorReplies[router.ListEventsResponder]{
	400: &router.ListEventsBadRequest{},
	401: &router.ListEventsUnauthorized{},
	410: &router.ListEventsGone{},
	500: &router.ListEventsInternalServerError{},
	503: &router.ListEventsServiceUnavailable{},
}

func toEventsEnvelope(evs []store.Event, cursor uint64) *models.EventListEnvelope {
	data := make([]*models.Event, 0, len(evs))
	for _, ev := range evs {
		fps := ev.Fingerprints
		if fps == nil {
			fps = []string{}
		}
		data = append(data, &models.Event{
			Cursor:       ptr(strconv.FormatUint(ev.Cursor, 10)),
			Type:         ptr(string(ev.Type)),
			APISessionID: ptr(ev.APISessionID),
			Fingerprints: fps,
		})
	}
	return &models.EventListEnvelope{
		Data: data,
		Meta: &models.EventMeta{Cursor: ptr(strconv.FormatUint(cursor, 10))},
	}
}

type createHeartbeatHandler struct{ h *Handlers }

func (c createHeartbeatHandler) Handle(
	p router.CreateHeartbeatParams,
	_ *auth.Principal,
) router.CreateHeartbeatResponder {
	ctx := p.HTTPRequest.Context()

	ended, err := c.h.cfg.Registry.Heartbeat(ctx, p.Body.APISessionIds)
	if err != nil {
		return createHeartbeatErrors.reply(ctx, err)
	}

	if ended == nil {
		ended = []string{}
	}
	return router.NewCreateHeartbeatOK().WithPayload(&models.HeartbeatResultEnvelope{
		Data: &models.HeartbeatResult{EndedAPISessionIds: ended},
		Meta: emptyMeta(),
	})
}

var createHeartbeatErrors = errorReplies[router.CreateHeartbeatResponder]{
	400: &router.CreateHeartbeatBadRequest{},
	401: &router.CreateHeartbeatUnauthorized{},
	413: &router.CreateHeartbeatRequestEntityTooLarge{},
	500: &router.CreateHeartbeatInternalServerError{},
	503: &router.CreateHeartbeatServiceUnavailable{},
}

type listRouterCAsHandler struct{ h *Handlers }

func (l listRouterCAsHandler) Handle(_ router.ListRouterCasParams, _ *auth.Principal) router.ListRouterCasResponder {
	return router.NewListRouterCasOK().WithPayload(&models.CaBundleEnvelope{
		Data: &models.CaBundle{Cas: ptr(l.h.cfg.Issuer.BundlePEM())},
		Meta: emptyMeta(),
	})
}

package handlers

import (
	"net/http"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/httpx"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	auth_op "github.com/sessioncert/sessioncert/restapi/operations/authentication"
)

type authenticateHandler struct{ h *Handlers }

func (a authenticateHandler) Handle(p auth_op.AuthenticateParams) auth_op.AuthenticateResponder {
	ctx := p.HTTPRequest.Context()

	res, err := a.login(p)
	if err != nil {
		return authenticateErrors.reply(ctx, err)
	}
	var configTypes []string
	if p.Auth != nil {
		configTypes = p.Auth.ConfigTypes
	}
	tok, s, err := a.h.cfg.Registry.Create(ctx, session.CreateRequest{
		Identity:        res.Identity,
		AuthenticatorID: res.Authenticator.ID,
		AuthMethod:      res.Method,
		IPAddress:       httpx.ClientIP(p.HTTPRequest),
		ConfigTypes:     configTypes,
		Certificates:    certificatesOf(res),
	})
	if err != nil {
		return authenticateErrors.reply(ctx, err)
	}

	return auth_op.NewAuthenticateOK().WithZtSession(tok).WithPayload(toCurrentSessionEnvelope(s, tok))
}

// login runs the primary authenticator that method names.
func (a authenticateHandler) login(p auth_op.AuthenticateParams) (*auth.Result, error) {
	switch p.Method {
	case "password":
		if p.Auth == nil || p.Auth.Username == "" {
			return nil, errValidation("username", "required", nil)
		}
		if p.Auth.Password == "" {
			return nil, errValidation("password", "required", nil)
		}
		return a.h.cfg.Password.Authenticate(p.HTTPRequest.Context(),
			p.Auth.Username, p.Auth.Password.String(), httpx.ClientIP(p.HTTPRequest))
	default:
		return nil, &apiError{
			status: http.StatusBadRequest, code: CodeInvalidAuthMethod,
			message: "the authentication method is not served",
		}
	}
}

func certificatesOf(res *auth.Result) []*store.Certificate {
	if res.Certificate == nil {
		return nil
	}
	return []*store.Certificate{res.Certificate}
}

var authenticateErrors = errorReplies[auth_op.AuthenticateResponder]{
	400: &auth_op.AuthenticateBadRequest{},
	401: &auth_op.AuthenticateUnauthorized{},
	413: &auth_op.AuthenticateRequestEntityTooLarge{},
	429: &auth_op.AuthenticateTooManyRequests{},
	500: &auth_op.AuthenticateInternalServerError{},
	503: &auth_op.AuthenticateServiceUnavailable{},
}

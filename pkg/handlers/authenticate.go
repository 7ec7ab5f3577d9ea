package handlers

import (
	"crypto/x509"
	"errors"
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

	attempt := LoginAttempt{Method: p.Method, Source: httpx.ClientIP(p.HTTPRequest)}
	if p.Auth != nil {
		attempt.Username = p.Auth.Username
	}
	var res *auth.Result
	err := checkInfo(p)
	if err == nil {
		res, err = a.login(p)
	}
	if err != nil {
		attempt.Err = err
		a.h.cfg.Recorder.Login(ctx, attempt)
		return authenticateErrors.reply(ctx, err)
	}
	tok, s, err := a.h.cfg.Registry.Create(ctx, session.CreateRequest{
		Identity:        res.Identity,
		AuthenticatorID: res.Authenticator.ID,
		AuthMethod:      res.Method,
		IPAddress:       httpx.ClientIP(p.HTTPRequest),
		Certificates:    certificatesOf(res),
		Confirm:         res.Confirm,
	})
	attempt.Result, attempt.Session, attempt.Err = res, s, err
	a.h.cfg.Recorder.Login(ctx, attempt)
	if err != nil {
		return authenticateErrors.reply(ctx, err)
	}

	return auth_op.NewAuthenticateOK().WithZtSession(tok).WithPayload(toCurrentSessionEnvelope(s, tok))
}

// checkInfo refuses envInfo and sdkInfo that are not objects: the spec
// declares them so, but the generated model takes any JSON value.
func checkInfo(p auth_op.AuthenticateParams) error {
	if p.Auth == nil {
		return nil
	}
	for field, v := range map[string]any{"envInfo": p.Auth.EnvInfo, "sdkInfo": p.Auth.SdkInfo} {
		if _, ok := v.(map[string]any); v != nil && !ok {
			return errValidation(field, "must be an object", nil)
		}
	}
	return nil
}

// login runs the primary authenticator that method names.
func (a authenticateHandler) login(p auth_op.AuthenticateParams) (*auth.Result, error) {
	switch p.Method {
	case auth.MethodPassword:
		if p.Auth == nil || p.Auth.Username == "" {
			return nil, errValidation("username", "required", nil)
		}
		if p.Auth.Password == "" {
			return nil, errValidation("password", "required", nil)
		}
		return a.h.cfg.Password.Authenticate(p.HTTPRequest.Context(),
			p.Auth.Username, p.Auth.Password.String(), httpx.ClientIP(p.HTTPRequest))
	case auth.MethodCert:
		return a.limited(p, func() (*auth.Result, error) {
			var peer []*x509.Certificate
			if p.HTTPRequest.TLS != nil {
				peer = p.HTTPRequest.TLS.PeerCertificates
			}
			return a.h.cfg.Cert.Authenticate(p.HTTPRequest.Context(), peer)
		})
	case auth.MethodExtJWT:
		res, err := a.limited(p, func() (*auth.Result, error) {
			return a.h.cfg.ExtJWT.Authenticate(p.HTTPRequest.Context(), p.HTTPRequest.Header.Get("Authorization"))
		})
		if errors.Is(err, auth.ErrInvalidAuth) {
			// The contract's ext-jwt failures carry a Bearer challenge that
			// says whether the token was missing, expired or invalid.
			ae := toAPIError(err)
			ae.challenge = auth.BearerChallenge(err)
			return nil, ae
		}
		return res, err
	default:
		return nil, &apiError{
			status: http.StatusBadRequest, code: CodeInvalidAuthMethod,
			message: "the authentication method is not served",
		}
	}
}

// limited applies the per-source limit of failed logins to the cert and
// ext-jwt methods; the password authenticator limits itself, per source and
// per username. The attempt takes its token before the credential is
// checked, so that parallel attempts cannot all pass on the last one, and
// gives it back unless the credential was refused.
func (a authenticateHandler) limited(
	p auth_op.AuthenticateParams,
	login func() (*auth.Result, error),
) (*auth.Result, error) {
	source := httpx.ClientIP(p.HTTPRequest)
	if ok, first := a.h.cfg.Logins.Take(source, a.h.cfg.Now()); !ok {
		return nil, &auth.RateLimitError{First: first}
	}

	res, err := login()
	if !errors.Is(err, auth.ErrInvalidAuth) {
		a.h.cfg.Logins.GiveBack(source)
	}
	return res, err
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

// Package handlers adapts the generated server operations to the domain
// packages. Each handler has four steps: wire parameters to a domain request,
// the domain call, the error mapping, and the wire result. Nothing here
// decides policy; it only translates.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-openapi/runtime"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/restapi/operations"
)

// VersionInfo describes the running build.
type VersionInfo struct {
	Version   string
	Revision  string
	BuildDate string
}

// Config holds what the handlers need.
type Config struct {
	Registry *session.Registry
	Issuer   *session.Issuer
	Manage   *manage.Service
	Password *auth.Password
	Cert     *auth.Cert
	ExtJWT   *auth.ExtJWT

	// Logins limits failed cert and ext-jwt logins per source address.
	Logins  *auth.AttemptLimiter
	Version VersionInfo

	// Recorder is told about logins, issuance and refusals; nil records
	// nothing.
	Recorder Recorder

	// Health runs the health checks; nil reports no checks.
	Health func(ctx context.Context) []HealthCheck

	Logger *slog.Logger
	Now    func() time.Time
}

// Handlers implements every operation of the API.
type Handlers struct {
	cfg Config
}

// New returns the handlers.
func New(cfg Config) *Handlers {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Recorder == nil {
		cfg.Recorder = nopRecorder{}
	}
	if cfg.Health == nil {
		cfg.Health = noHealth
	}
	return &Handlers{cfg: cfg}
}

// Register sets every operation handler of api, its security handler, its
// error writer and its consumers and producers.
func (h *Handlers) Register(api *operations.SessioncertAPI) {
	api.ServeError = ServeError
	api.JSONConsumer = strictJSONConsumer()
	api.JSONProducer = runtime.JSONProducer()
	api.ZtSessionAuth = h.authenticateToken
	api.APIAuthorizer = runtime.AuthorizerFunc(authorize)

	api.AuthenticationAuthenticateHandler = authenticateHandler{h}
	api.CurrentAPISessionGetCurrentAPISessionHandler = getCurrentSessionHandler{h}
	api.CurrentAPISessionDeleteCurrentAPISessionHandler = deleteCurrentSessionHandler{h}
	api.CurrentAPISessionCreateCurrentAPISessionCertificateHandler = createCertificateHandler{h}
	api.CurrentAPISessionListCurrentAPISessionCertificatesHandler = listCertificatesHandler{h}
	api.CurrentAPISessionDetailCurrentAPISessionCertificateHandler = detailCertificateHandler{h}
	api.CurrentAPISessionDeleteCurrentAPISessionCertificateHandler = deleteCertificateHandler{h}
	api.InformationalListVersionHandler = listVersionHandler{h}
	api.InformationalListHealthChecksHandler = healthHandler{h}

	api.IdentitiesListIdentitiesHandler = listIdentitiesHandler{h}
	api.IdentitiesCreateIdentityHandler = createIdentityHandler{h}
	api.IdentitiesDetailIdentityHandler = detailIdentityHandler{h}
	api.IdentitiesPatchIdentityHandler = patchIdentityHandler{h}
	api.IdentitiesDeleteIdentityHandler = deleteIdentityHandler{h}
	api.AuthenticatorsListAuthenticatorsHandler = listAuthenticatorsHandler{h}
	api.AuthenticatorsCreateAuthenticatorHandler = createAuthenticatorHandler{h}
	api.AuthenticatorsDetailAuthenticatorHandler = detailAuthenticatorHandler{h}
	api.AuthenticatorsPatchAuthenticatorHandler = patchAuthenticatorHandler{h}
	api.AuthenticatorsDeleteAuthenticatorHandler = deleteAuthenticatorHandler{h}
	api.ExternalJwtSignersListExternalJWTSignersHandler = listSignersHandler{h}
	api.ExternalJwtSignersCreateExternalJWTSignerHandler = createSignerHandler{h}
	api.ExternalJwtSignersDetailExternalJWTSignerHandler = detailSignerHandler{h}
	api.ExternalJwtSignersPatchExternalJWTSignerHandler = patchSignerHandler{h}
	api.ExternalJwtSignersDeleteExternalJWTSignerHandler = deleteSignerHandler{h}
	api.APISessionsListAPISessionsHandler = listSessionsHandler{h}
	api.APISessionsDetailAPISessionHandler = detailSessionHandler{h}
	api.APISessionsDeleteAPISessionHandler = deleteSessionHandler{h}

	api.RouterCreateAdmissionHandler = createAdmissionHandler{h}
	api.RouterListEventsHandler = listEventsHandler{h}
	api.RouterCreateHeartbeatHandler = createHeartbeatHandler{h}
	api.RouterListRouterCasHandler = listRouterCAsHandler{h}
}

// authenticateToken resolves a zt-session token for the generated security
// layer. Errors it returns reach ServeError unchanged.
func (h *Handlers) authenticateToken(token string) (*auth.Principal, error) {
	// The generated security layer does not pass the request's context; the
	// lookup is from memory on the hot path and bounded otherwise.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s, err := h.cfg.Registry.Resolve(ctx, token)
	if errors.Is(err, session.ErrInvalidToken) {
		return nil, errInvalidToken()
	}
	if err != nil {
		ae := toAPIError(err)
		return nil, ae
	}
	return toPrincipal(s), nil
}

func toPrincipal(s *session.Session) *auth.Principal {
	return &auth.Principal{
		APISessionID:    s.ID,
		IdentityID:      s.IdentityID,
		IdentityName:    s.Identity.Name,
		IdentityType:    s.Identity.Type,
		IsAdmin:         s.Identity.IsAdmin,
		AuthenticatorID: s.AuthenticatorID,
		ExpiresAt:       s.ExpiresAt,
	}
}

// token returns the zt-session token the request was authenticated with.
func token(r *http.Request) string { return r.Header.Get("zt-session") }

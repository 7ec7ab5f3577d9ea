package gate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/ca"
)

// errCursorExpired is the controller's 410 CURSOR_EXPIRED.
var errCursorExpired = errors.New("gate: event cursor expired")

// statusCoder is implemented by every error response of the generated
// client.
type statusCoder interface{ IsCode(code int) bool }

func hasStatus(err error, code int) bool {
	var sc statusCoder
	return errors.As(err, &sc) && sc.IsCode(code)
}

// unavailable wraps a failed call so that callers can tell "no decision"
// from a refusal.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// login logs the router in and returns the new token, unless another
// caller already replaced stale, whose token it then returns. Logins are
// serialized so that a burst of 401s costs one login.
func (g *Gate) login(ctx context.Context, stale string) (string, error) {
	g.loginMu.Lock()
	defer g.loginMu.Unlock()
	if tok := g.token.Load(); tok != nil && *tok != stale {
		return *tok, nil
	}
	params := &authentication.AuthenticateParams{
		Method: "password",
		Auth: &models.Authenticate{
			Username: g.cfg.Username,
			Password: strfmt.Password(g.cfg.Password),
		},
	}
	ok, err := g.cfg.Client.Authentication.AuthenticateContext(ctx, params)
	var refused *authentication.AuthenticateUnauthorized
	if errors.As(err, &refused) {
		return "", ErrLoginRefused
	}
	if err != nil {
		return "", unavailable("login", err)
	}
	if ok.ZtSession == "" {
		return "", unavailable("login", errors.New("no session token in the reply"))
	}
	g.token.Store(&ok.ZtSession)
	g.log.Info("logged in to the controller", slog.String("username", g.cfg.Username))
	return ok.ZtSession, nil
}

// call runs op with the router's session token, logging in first when
// there is none, and once more when op is answered 401: the session may
// have expired or been deleted. A 401 to a session just created means the
// identity may not use the router API at all.
func (g *Gate) call(ctx context.Context, op func(runtime.ClientAuthInfoWriter) error) error {
	tok := ""
	if p := g.token.Load(); p != nil {
		tok = *p
	} else {
		var err error
		if tok, err = g.login(ctx, ""); err != nil {
			return err
		}
	}
	err := op(httptransport.APIKeyAuth("zt-session", "header", tok))
	if !hasStatus(err, 401) {
		return err
	}
	if tok, err = g.login(ctx, tok); err != nil {
		return err
	}
	err = op(httptransport.APIKeyAuth("zt-session", "header", tok))
	if hasStatus(err, 401) {
		return ErrNotRouter
	}
	return err
}

// askAdmission sends createAdmission and maps the answer.
func (g *Gate) askAdmission(
	ctx context.Context,
	token string,
	chain []*x509.Certificate,
) (*Admission, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	chainPEM := encodeChain(chain)
	var ok *router.CreateAdmissionOK
	err := g.call(ctx, func(auth runtime.ClientAuthInfoWriter) error {
		var err error
		ok, err = g.cfg.Client.Router.CreateAdmissionContext(ctx, &router.CreateAdmissionParams{
			Body: &models.AdmissionRequest{Token: &token, Certificate: &chainPEM},
		}, auth)
		return err
	})
	var (
		forbidden *router.CreateAdmissionForbidden
		malformed *router.CreateAdmissionBadRequest
		tooLarge  *router.CreateAdmissionRequestEntityTooLarge
	)
	switch {
	case errors.As(err, &forbidden):
		return nil, &RefusedError{Code: errorCode(forbidden.Payload)}
	// What the client sent cannot be judged (a chain too long, say): that is
	// its fault, and it may not pass.
	case errors.As(err, &malformed):
		return nil, &RefusedError{Code: errorCode(malformed.Payload)}
	case errors.As(err, &tooLarge):
		return nil, &RefusedError{Code: errorCode(tooLarge.Payload)}
	case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrNotRouter):
		return nil, err
	case err != nil:
		return nil, unavailable("create admission", err)
	}

	adm, err := toAdmission(ok.Payload)
	if err != nil {
		return nil, unavailable("create admission", err)
	}
	// The cache and the tombstones match removal events by fingerprint, so
	// it must name the leaf the client presented.
	if want := ca.Fingerprint(chain[0].Raw); adm.Fingerprint != want {
		return nil, unavailable("create admission",
			fmt.Errorf("controller admitted fingerprint %s, the leaf is %s", adm.Fingerprint, want))
	}
	return adm, nil
}

// ClientCAs asks the controller for the CA certificates its API Session
// Certificates chain to (the cas of an issued certificate), for a router
// to verify client certificates against in its TLS handshakes. It returns
// ErrLoginRefused or ErrNotRouter as Admit does, and an error wrapping
// ErrUnavailable when the controller cannot be reached or answers with
// anything but CA certificates.
func (g *Gate) ClientCAs(ctx context.Context) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	var ok *router.ListRouterCasOK
	err := g.call(ctx, func(auth runtime.ClientAuthInfoWriter) error {
		var err error
		ok, err = g.cfg.Client.Router.ListRouterCasContext(ctx, &router.ListRouterCasParams{}, auth)
		return err
	})
	switch {
	case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrNotRouter):
		return nil, err
	case err != nil:
		return nil, unavailable("list CAs", err)
	case ok.Payload == nil || ok.Payload.Data == nil || ok.Payload.Data.Cas == nil:
		return nil, unavailable("list CAs", errors.New("empty CA bundle"))
	}
	cas, err := parseCABundle([]byte(*ok.Payload.Data.Cas))
	if err != nil {
		return nil, unavailable("list CAs", err)
	}
	return cas, nil
}

// parseCABundle reads PEM CERTIFICATE blocks that are all CA certificates.
func parseCABundle(bundle []byte) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("CA bundle holds a %s block", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("CA bundle holds %q, which is not a CA", c.Subject)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, errors.New("CA bundle holds no certificate")
	}
	return cas, nil
}

func encodeChain(chain []*x509.Certificate) string {
	var b bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// errorCode returns the code of an error envelope, or CodeInvalidAPISession
// for a 403 without one: a refusal must stay a refusal.
func errorCode(env *models.APIErrorEnvelope) string {
	if env == nil || env.Error == nil || env.Error.Code == nil || *env.Error.Code == "" {
		return CodeInvalidAPISession
	}
	return *env.Error.Code
}

func toAdmission(env *models.AdmissionEnvelope) (*Admission, error) {
	if env == nil || env.Data == nil {
		return nil, errors.New("empty admission")
	}
	d := env.Data
	if d.APISessionID == nil || d.Fingerprint == nil || d.SessionExpiresAt == nil ||
		d.CertificateValidTo == nil {
		return nil, errors.New("admission lacks a required field")
	}
	return &Admission{
		APISessionID:       *d.APISessionID,
		IdentityID:         deref(d.IdentityID),
		IdentityName:       deref(d.IdentityName),
		CertificateID:      deref(d.CertificateID),
		Fingerprint:        *d.Fingerprint,
		SessionExpiresAt:   time.Time(*d.SessionExpiresAt),
		CertificateValidTo: time.Time(*d.CertificateValidTo),
	}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// eventBatch is the most events one poll asks for.
const eventBatch = 500

// pollSlack is added to the long-poll wait for the call's deadline: the
// controller answers after the wait, and the answer needs time to arrive.
const pollSlack = 15 * time.Second

// listEvents asks for the events after cursor, waiting up to EventWait;
// without a cursor it asks for the current cursor only. It returns
// errCursorExpired for a 410.
func (g *Gate) listEvents(ctx context.Context, after string) ([]*models.Event, string, error) {
	params := &router.ListEventsParams{}
	timeout := g.cfg.CallTimeout
	if after != "" {
		wait, limit := int64(g.cfg.EventWait/time.Second), int64(eventBatch)
		params.After, params.Wait, params.Limit = &after, &wait, &limit
		timeout = g.cfg.EventWait + pollSlack
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var ok *router.ListEventsOK
	err := g.call(ctx, func(auth runtime.ClientAuthInfoWriter) error {
		var err error
		ok, err = g.cfg.Client.Router.ListEventsContext(ctx, params, auth)
		return err
	})
	var gone *router.ListEventsGone
	switch {
	case errors.As(err, &gone):
		return nil, "", errCursorExpired
	case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrNotRouter):
		return nil, "", err
	case err != nil:
		return nil, "", unavailable("list events", err)
	}
	if ok.Payload == nil || ok.Payload.Meta == nil || ok.Payload.Meta.Cursor == nil ||
		*ok.Payload.Meta.Cursor == "" {
		return nil, "", unavailable("list events", errors.New("reply lacks the cursor"))
	}
	return ok.Payload.Data, *ok.Payload.Meta.Cursor, nil
}

// sendHeartbeat reports sessions with open connections and returns those
// the controller says have ended.
func (g *Gate) sendHeartbeat(ctx context.Context, ids []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	var ok *router.CreateHeartbeatOK
	err := g.call(ctx, func(auth runtime.ClientAuthInfoWriter) error {
		var err error
		ok, err = g.cfg.Client.Router.CreateHeartbeatContext(ctx, &router.CreateHeartbeatParams{
			Body: &models.Heartbeat{APISessionIds: ids},
		}, auth)
		return err
	})
	switch {
	case errors.Is(err, ErrLoginRefused), errors.Is(err, ErrNotRouter):
		return nil, err
	case err != nil:
		return nil, unavailable("heartbeat", err)
	}
	if ok.Payload == nil || ok.Payload.Data == nil {
		return nil, nil
	}
	return ok.Payload.Data.EndedAPISessionIds, nil
}

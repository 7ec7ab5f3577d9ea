package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/models"
)

// Login methods, the values of the authenticate operation's method query
// parameter.
const (
	MethodPassword = "password"
	MethodCert     = "cert"
	MethodExtJWT   = "ext-jwt"
)

// Credentials log in to the controller. The SDK calls Login at first use and
// again whenever the controller has ended the session (logout elsewhere,
// idle expiry, an administrator's delete), one call at a time.
type Credentials interface {
	// Login authenticates with c and returns the controller's reply, which
	// carries the new session and its token. A refused login is an error
	// for which AsAPIError reports CodeInvalidAuth.
	Login(ctx context.Context, c *client.Sessioncert) (*authentication.AuthenticateOK, error)
}

// Password logs in with the username and password of an updb
// authenticator.
type Password struct {
	Username string
	Password string
}

// Login logs in with method password.
func (p Password) Login(
	ctx context.Context,
	c *client.Sessioncert,
) (*authentication.AuthenticateOK, error) {
	ok, err := c.Authentication.AuthenticateContext(ctx, &authentication.AuthenticateParams{
		Method: MethodPassword,
		Auth:   &models.Authenticate{Username: p.Username, Password: strfmt.Password(p.Password)},
	})
	return ok, wrap("authenticate", err)
}

// Cert logs in with a client certificate registered to the identity by a
// cert authenticator. The login request goes over a connection of its own
// that presents Certificate; the SDK's other requests do not present it.
type Cert struct {
	// Certificate is the client certificate and its private key.
	Certificate tls.Certificate

	// RootCAs trusts the controller's TLS certificate; nil means the
	// system roots.
	RootCAs *x509.CertPool
}

// Login logs in with method cert.
func (cr Cert) Login(
	ctx context.Context,
	c *client.Sessioncert,
) (*authentication.AuthenticateOK, error) {
	if len(cr.Certificate.Certificate) == 0 {
		return nil, errors.New("sdk: cert login: no client certificate")
	}
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			RootCAs:      cr.RootCAs,
			Certificates: []tls.Certificate{cr.Certificate},
		},
	}
	// The transport serves this one login; its idle connection would only
	// linger.
	defer tr.CloseIdleConnections()

	ok, err := c.Authentication.AuthenticateContext(ctx, &authentication.AuthenticateParams{
		Method:     MethodCert,
		Auth:       &models.Authenticate{ConfigTypes: []string{}},
		HTTPClient: &http.Client{Transport: tr},
	})
	return ok, wrap("authenticate", err)
}

// ExtJWT logs in with a JWT of an external signer configured on the
// controller, sent as "Authorization: Bearer <jwt>".
type ExtJWT struct {
	// Token returns the JWT to present. It is called at every login, so it
	// may fetch a fresh token when the last one has expired.
	Token func(ctx context.Context) (string, error)
}

// Login logs in with method ext-jwt.
func (x ExtJWT) Login(
	ctx context.Context,
	c *client.Sessioncert,
) (*authentication.AuthenticateOK, error) {
	if x.Token == nil {
		return nil, errors.New("sdk: ext-jwt login: no token source")
	}
	jwt, err := x.Token(ctx)
	if err != nil {
		return nil, wrap("ext-jwt token", err)
	}
	if jwt == "" {
		return nil, errors.New("sdk: ext-jwt login: empty token")
	}
	// The contract puts the JWT in a header the generated client has no
	// parameter for; an auth info writer adds it to this one request.
	bearer := runtime.ClientAuthInfoWriterFunc(
		func(r runtime.ClientRequest, _ strfmt.Registry) error {
			return r.SetHeaderParam("Authorization", "Bearer "+jwt)
		})
	ok, err := c.Authentication.AuthenticateContext(ctx, &authentication.AuthenticateParams{
		Method: MethodExtJWT,
		Auth:   &models.Authenticate{ConfigTypes: []string{}},
	}, func(op *runtime.ClientOperation) { op.AuthInfo = bearer })
	return ok, wrap("authenticate", err)
}

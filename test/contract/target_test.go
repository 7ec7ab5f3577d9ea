package contract

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// Environment variables of the external mode and of the report.
const (
	envURL       = "SESSIONCERT_CONTRACT_URL"
	envCA        = "SESSIONCERT_CONTRACT_CA"
	envAdminUser = "SESSIONCERT_CONTRACT_ADMIN_USERNAME"
	envAdminPass = "SESSIONCERT_CONTRACT_ADMIN_PASSWORD"
	envSpec      = "SESSIONCERT_CONTRACT_SPEC"
	envReport    = "SESSIONCERT_CONTRACT_REPORT"
)

// target is the server a scenario runs against.
type target struct {
	// env reaches the server. In external mode only URL, Host and RootCAs
	// are set: there is no Server, no Clock and no store.
	env       *servertest.Env
	external  bool
	adminUser string
	adminPass string

	// specSource is a spec file or https URL; empty means the embedded
	// spec, restapi.SwaggerJSON.
	specSource string
}

func (tg *target) mode() string {
	if tg.external {
		return "external mode against " + tg.env.URL
	}
	return "in-process"
}

// externalTarget reads the external mode's settings through getenv. It
// returns nil when the mode is not asked for, and an error when it is asked
// for but incomplete.
func externalTarget(getenv func(string) string) (*target, error) {
	raw := getenv(envURL)
	if raw == "" {
		// The mode is off: no target, and nothing wrong.
		return nil, nil
	}
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%s=%q: want https://host[:port] with no path", envURL, raw)
	}
	caFile, pass := getenv(envCA), getenv(envAdminPass)
	if caFile == "" || pass == "" {
		return nil, fmt.Errorf("%s is set: %s and %s are needed too", envURL, envCA, envAdminPass)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCA, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", envCA, caFile)
	}
	user := getenv(envAdminUser)
	if user == "" {
		user = "admin"
	}
	env := &servertest.Env{URL: "https://" + u.Host, Host: u.Host, RootCAs: roots}
	env.HTTP = env.NewHTTPClient(nil)
	return &target{
		env: env, external: true, adminUser: user, adminPass: pass, specSource: getenv(envSpec),
	}, nil
}

// inProcessConfig sets the limits low enough that the scenario reaches
// every 4xx quickly: a short event history for CURSOR_EXPIRED, a small
// certificate cap and login burst for RATE_LIMITED.
func inProcessConfig(c *server.Config) {
	c.Store.EventHistory = 2
	c.Certs.MaxCertsPerSession = 3
	c.Logins.FailureBurst = 3
	c.Logins.FailureEvery = time.Hour
}

// quiet discards the in-process server's log, which would bury the coverage
// table under -v; a failure names the request and its reply instead.
var quiet = slog.New(slog.DiscardHandler)

// inProcessFlags are the same limits as flags of sessioncert-server.
var inProcessFlags = []string{
	"--event-history", "2",
	"--max-certs-per-session", "3",
	"--login-failure-burst", "3",
	"--login-failure-refill", "1h",
}

func inProcessTarget(t *testing.T) *target {
	t.Helper()
	e := servertest.Start(t, servertest.Options{Config: inProcessConfig, Logger: quiet})
	return &target{env: e, adminUser: "admin", adminPass: servertest.AdminPassword}
}

// loadTargetSpec loads the spec the target is judged by.
func loadTargetSpec(tg *target) (*apiSpec, error) {
	src := tg.specSource
	switch {
	case src == "":
		return embeddedSpec()
	case strings.HasPrefix(src, "https://"):
		// The deployment's own CA may be the only one that verifies the
		// spec's URL, which loads' default client would not trust.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := tg.env.HTTP.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch spec: %w", err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch spec %s: status %d: %w", src, resp.StatusCode, err)
		}
		return loadSpec(body)
	default:
		return loadSpecFile(src)
	}
}

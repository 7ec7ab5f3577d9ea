package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	openapi "github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/server"
)

// gateTrials is how many logouts the propagation measure times.
const gateTrials = 300

// benchGate measures pkg/gate against a controller in this process, over
// HTTPS on loopback: cached admission decisions against a controller round
// trip, and how long a logout takes to turn a cached grant into a refusal.
func benchGate(r *report) error {
	ctl, err := startGateController()
	if err != nil {
		return err
	}
	defer ctl.close()

	g, err := gate.New(gate.Config{
		Client:   ctl.client,
		Username: "bench-router", Password: "bench-router-password",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			fmt.Fprintf(os.Stderr, "gate: run: %v\n", err)
		}
	}()
	select {
	case <-g.Ready():
	case err := <-runDone:
		return fmt.Errorf("gate: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("gate: never followed the event stream")
	}

	if err := benchCachedAdmissions(r, ctl, g); err != nil {
		return err
	}
	return benchRemovalPropagation(r, ctl, g)
}

// benchCachedAdmissions compares decisions from the cache, on all cores,
// with decisions the controller makes.
func benchCachedAdmissions(r *report, ctl *gateController, g *gate.Gate) error {
	token, chain, err := ctl.userWithCertificate()
	if err != nil {
		return err
	}
	ctx := context.Background()
	admit := func() error {
		_, err := g.Admit(ctx, token, chain)
		return err
	}
	if err := admit(); err != nil {
		return err
	}

	var runs []loadResult
	for range 3 {
		res, err := drive(runtime.GOMAXPROCS(0), 2*time.Second, admit)
		if err != nil {
			return err
		}
		// A failed poll sends every decision to the controller: the run
		// would then not have measured the cache.
		if !g.Stats().Current {
			return errors.New("gate: the event stream failed during a cached run")
		}
		runs = append(runs, res)
	}
	slices.SortFunc(runs, func(a, b loadResult) int { return cmp.Compare(a.rate(), b.rate()) })
	mid := runs[len(runs)/2]
	cached := mid.rate()
	r.add("gate", fmt.Sprintf("cached admissions/s (%d cores)", runtime.GOMAXPROCS(0)),
		fmt.Sprintf("%.0f", cached), "median of 3 × 2 s, one hot token+certificate")
	r.add("gate", "cached admission p50 / p99",
		fmt.Sprintf("%s / %s", percentile(mid.latencies, 0.50), percentile(mid.latencies, 0.99)),
		"of the median run; includes SHA-256 of token and leaf")

	// The same decision from the controller: a gate that does not follow
	// the stream never caches, so each call is a createAdmission.
	uncached, err := gate.New(gate.Config{
		Client: ctl.client, Username: "bench-router", Password: "bench-router-password",
	})
	if err != nil {
		return err
	}
	res, err := drive(1, 2*time.Second, func() error {
		_, err := uncached.Admit(ctx, token, chain)
		return err
	})
	if err != nil {
		return err
	}
	r.add("gate", "controller admission p50 / p99",
		fmt.Sprintf("%s / %s", res.p(0.50), res.p(0.99)),
		fmt.Sprintf("one caller, HTTPS on loopback, %.0f/s", res.rate()))
	r.add("gate", "cached vs controller decisions/s", fmt.Sprintf("%.0f×", cached/res.rate()),
		"all cores cached against one caller to the controller")
	return nil
}

// benchRemovalPropagation times, over many trials, from the moment a logout
// reply is received to the first refusal of the session's cached grant.
func benchRemovalPropagation(r *report, ctl *gateController, g *gate.Gate) error {
	ctx := context.Background()
	var delays []time.Duration
	early := 0
	for range gateTrials {
		token, chain, err := ctl.userWithCertificate()
		if err != nil {
			return err
		}
		if _, err := g.Admit(ctx, token, chain); err != nil {
			return err
		}

		// Poll as a router does on each request; a short sleep leaves the
		// cores to the controller and the gate's event loop.
		refused := make(chan time.Time, 1)
		stop := make(chan struct{})
		go func() {
			for {
				_, err := g.Admit(ctx, token, chain)
				if errors.Is(err, gate.ErrRefused) {
					refused <- time.Now()
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
			}
		}()

		_, err = ctl.client.CurrentAPISession.DeleteCurrentAPISession(
			&current_api_session.DeleteCurrentAPISessionParams{}, apiKey(token))
		loggedOut := time.Now()
		if err != nil {
			close(stop)
			return fmt.Errorf("logout: %w", err)
		}
		select {
		case at := <-refused:
			d := at.Sub(loggedOut)
			if d < 0 {
				// The event outran the logout reply.
				early++
				d = 0
			}
			delays = append(delays, d)
		case <-time.After(5 * time.Second):
			close(stop)
			return errors.New("a logged-out session was still admitted after 5 s")
		}
	}

	note := fmt.Sprintf("%d trials, logout reply → first refusal via gate.Admit polling",
		len(delays))
	p50, p99 := percentile(delays, 0.50), percentile(delays, 0.99)
	r.add("gate", "logout → refusal p50", p50.Round(10*time.Microsecond).String(), note)
	verdict := "target < 100 ms: met"
	if p99 >= 100*time.Millisecond {
		verdict = "target < 100 ms: MISSED"
	}
	r.add("gate", "logout → refusal p99", p99.Round(10*time.Microsecond).String(),
		fmt.Sprintf("%s; %d refused before the reply arrived", verdict, early))
	return nil
}

// gateController is sessioncert-server running in this process.
type gateController struct {
	srv    *server.Server
	dir    string
	client *client.Sessioncert
	admin  openapi.ClientAuthInfoWriter
	stop   func()
}

// startGateController starts a controller on a free port with a fresh data
// directory, a Router identity "bench-router" and a User "bench-user".
// Password hashes are cheap: logins are set-up here, not what is measured.
func startGateController() (*gateController, error) {
	dir, err := os.MkdirTemp("", "sessioncert-bench-gate-")
	if err != nil {
		return nil, err
	}
	c := &gateController{dir: dir, stop: func() {}}
	if err := c.start(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *gateController) start() error {
	cfg, err := server.DefaultConfig()
	if err != nil {
		return err
	}
	cfg.DataDir = c.dir
	cfg.Listen.Port = 0
	cfg.Listen.ShutdownTimeout = 5 * time.Second
	c.srv, err = server.New(cfg, server.Deps{
		Logger:        slog.New(slog.DiscardHandler),
		HashParams:    auth.HashParams{Time: 1, Memory: 64, Threads: 1},
		AdminPassword: benchAdminPassword,
	})
	if err != nil {
		return err
	}
	ln, err := c.srv.Listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.srv.Serve(ctx, ln) }()
	c.stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "gate: controller: %v\n", err)
		}
		_ = c.srv.Close()
	}

	bundle, err := os.ReadFile(filepath.Join(c.dir, "pki", "ca-bundle.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("no certificate in the development ca bundle")
	}
	httpClient := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
	}}
	c.client = client.New(httptransport.NewWithClient(ln.Addr().String(), client.DefaultBasePath,
		[]string{"https"}, httpClient), strfmt.Default)

	tok, err := c.login("admin", benchAdminPassword)
	if err != nil {
		return err
	}
	c.admin = apiKey(tok)
	if err := c.createIdentity("bench-router", "Router", "bench-router-password"); err != nil {
		return err
	}
	return c.createIdentity("bench-user", "User", "bench-user-password")
}

func (c *gateController) close() {
	c.stop()
	_ = os.RemoveAll(c.dir)
}

func (c *gateController) login(username, password string) (string, error) {
	ok, err := c.client.Authentication.Authenticate(&authentication.AuthenticateParams{
		Method: "password",
		Auth:   &models.Authenticate{Username: username, Password: strfmt.Password(password)},
	})
	if err != nil {
		return "", fmt.Errorf("login %s: %w", username, err)
	}
	return ok.ZtSession, nil
}

func (c *gateController) createIdentity(name, typ, password string) error {
	it := models.IdentityType(typ)
	created, err := c.client.Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &it},
	}, c.admin)
	if err != nil {
		return fmt.Errorf("create identity %s: %w", name, err)
	}
	method := "updb"
	_, err = c.client.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
		Body: &models.AuthenticatorCreate{
			Method: &method, IdentityID: created.Payload.Data.ID,
			Username: name, Password: strfmt.Password(password),
		},
	}, c.admin)
	if err != nil {
		return fmt.Errorf("create authenticator of %s: %w", name, err)
	}
	return nil
}

// userWithCertificate logs the bench user in and issues a certificate to
// the new session; it returns the token and the certificate chain.
func (c *gateController) userWithCertificate() (string, []*x509.Certificate, error) {
	tok, err := c.login("bench-user", "bench-user-password")
	if err != nil {
		return "", nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return "", nil, err
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	res, err := c.client.CurrentAPISession.CreateCurrentAPISessionCertificate(
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, apiKey(tok))
	if err != nil {
		return "", nil, fmt.Errorf("create certificate: %w", err)
	}
	var chain []*x509.Certificate
	rest := []byte(*res.Payload.Data.Certificate)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", nil, err
		}
		chain = append(chain, cert)
	}
	return tok, chain, nil
}

func apiKey(token string) openapi.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", token)
}

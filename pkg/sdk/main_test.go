package sdk_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/sdk"
	"github.com/sessioncert/sessioncert/pkg/server"
)

// TestMain runs the controller and the edge router that Example talks to. An
// example cannot take a *testing.T, so servertest cannot start them; the
// tests start servers of their own.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stop, err := startExampleWorld()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the example's controller:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// startExampleWorld starts a controller with the identity alice, and the
// edge router of Example.
func startExampleWorld() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "sdk-example-")
	if err != nil {
		return nil, err
	}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		_ = os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()

	cfg, err := server.DefaultConfig()
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dir
	cfg.Listen.Port = 0
	const adminPassword = "example-admin-password"
	srv, err := server.New(cfg, server.Deps{
		Logger:        slog.New(slog.DiscardHandler),
		HashParams:    auth.HashParams{Time: 1, Memory: 64, Threads: 1},
		AdminPassword: adminPassword,
	})
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() { _ = srv.Close() })
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ctx, ln)
	}()
	stops = append(stops, func() { cancel(); <-served })

	bundle, err := os.ReadFile(filepath.Join(dir, "pki", "ca-bundle.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}}
	controller = client.New(httptransport.NewWithClient(ln.Addr().String(),
		client.DefaultBasePath, []string{"https"}, hc), strfmt.Default)

	err = createExampleIdentity(controller, adminPassword, "alice", "User", alicePassword)
	if err != nil {
		return nil, err
	}
	const routerName, routerPassword = "example-router", "example-router-password"
	err = createExampleIdentity(controller, adminPassword, routerName, "Router", routerPassword)
	if err != nil {
		return nil, err
	}
	g, err := gate.New(gate.Config{Client: controller, Username: routerName,
		Password: routerPassword})
	if err != nil {
		return nil, err
	}
	stopRouter, err := startExampleRouter(dir, g)
	if err != nil {
		return nil, err
	}
	stops = append(stops, stopRouter)
	return stop, nil
}

// createExampleIdentity logs in as admin and creates an identity of type
// typ with a password.
func createExampleIdentity(c *client.Sessioncert, adminPassword, name, typ, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), exampleTimeout)
	defer cancel()
	ok, err := sdk.Password{Username: "admin", Password: adminPassword}.Login(ctx, c)
	if err != nil {
		return err
	}
	admin := httptransport.APIKeyAuth("zt-session", "header", ok.ZtSession)
	it := models.IdentityType(typ)
	created, err := c.Identities.CreateIdentityContext(ctx, &identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &it},
	}, admin)
	if err != nil {
		return err
	}
	method := "updb"
	_, err = c.Authenticators.CreateAuthenticatorContext(ctx,
		&authenticators.CreateAuthenticatorParams{Body: &models.AuthenticatorCreate{
			Method: &method, IdentityID: created.Payload.Data.ID,
			Username: name, Password: strfmt.Password(password),
		}}, admin)
	if err != nil {
		return fmt.Errorf("create authenticator: %w", err)
	}
	return nil
}

// exampleTimeout bounds the set-up of the example's controller.
const exampleTimeout = 30 * time.Second

package sdk_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/sdk"
)

// Example obtains a certificate for the identity alice and calls an edge
// router with it: the router admits a request only with a certificate of
// the controller's CA together with the token of the session that obtained
// it, which the SDK's Transport sends as a pair. The controller, the router
// and alice's password come from TestMain, as a deployment would provide
// them.
func Example() {
	ctx := context.Background()
	s, err := sdk.New(sdk.Config{
		Client:      controller,
		Credentials: sdk.Password{Username: "alice", Password: alicePassword},
	})
	if err != nil {
		log.Fatal(err)
	}

	// The SDK supplies the client certificate and the token; trusting the
	// router's own certificate is up to the caller.
	tr := s.Transport(&http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: routerCAs},
	})
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()
	res, err := hc.Get(routerURL)
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(body))

	cred, err := s.Credential(ctx)
	if err != nil {
		log.Fatal(err)
	}
	leaf := cred.Certificate.Leaf
	fmt.Println("valid for", leaf.NotAfter.Sub(leaf.NotBefore))

	// Logging out ends the session and every certificate it obtained.
	if err := s.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// hello, alice
	// valid for 12h1m0s
}

// What Example needs from its surroundings, set by TestMain.
var (
	controller    *client.Sessioncert // the generated client of a running controller
	alicePassword = "alice-password-for-the-example"
	routerURL     string         // an edge router in front of a service
	routerCAs     *x509.CertPool // trusts the router's TLS certificate
)

// startExampleRouter starts the edge router Example calls: it admits only
// TLS clients whose certificate chains to the controller's CA bundle, and
// asks the controller through g whether the certificate belongs to the
// session of the zt-session token. It greets admitted clients by name.
func startExampleRouter(dataDir string, g *gate.Gate) (stop func(), err error) {
	bundle, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca-bundle.pem"))
	if err != nil {
		return nil, err
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(bundle) {
		return nil, fmt.Errorf("no certificate in the ca bundle")
	}
	greet := func(w http.ResponseWriter, r *http.Request) {
		adm, err := g.Admit(r.Context(), r.Header.Get("zt-session"), r.TLS.PeerCertificates)
		var refused *gate.RefusedError
		switch {
		case errors.As(err, &refused):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"error": map[string]string{"code": refused.Code}})
		case err != nil:
			http.Error(w, "no decision", http.StatusServiceUnavailable)
		default:
			//nolint:gosec // G705: a plain-text reply to a test client, not a page
			_, _ = fmt.Fprintf(w, "hello, %s\n", adm.IdentityName)
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(greet))
	srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  clientCAs,
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	routerURL = srv.URL
	routerCAs = x509.NewCertPool()
	routerCAs.AddCert(srv.Certificate())
	return srv.Close, nil
}

package sdk_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/pkg/sdk"
)

// Example obtains a certificate for the identity alice and uses it to call a
// service that requires a client certificate issued by the controller's CA.
// The controller, the service and alice's password come from TestMain, as a
// deployment would provide them.
func Example() {
	ctx := context.Background()
	s, err := sdk.New(sdk.Config{
		Client:      controller,
		Credentials: sdk.Password{Username: "alice", Password: alicePassword},
	})
	if err != nil {
		log.Fatal(err)
	}

	// The SDK supplies the client certificate; trusting the service's own
	// certificate is up to the caller.
	tlsConfig := s.TLSConfig()
	tlsConfig.RootCAs = serviceCAs
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	res, err := hc.Get(serviceURL)
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(body))

	cert, err := s.Certificate(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid for", cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore))

	// Logging out ends the session and every certificate it obtained.
	if err := s.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// hello, client of sessioncert.local
	// valid for 12h1m0s
}

// What Example needs from its surroundings, set by TestMain.
var (
	controller    *client.Sessioncert // the generated client of a running controller
	alicePassword = "alice-password-for-the-example"
	serviceURL    string         // a service that requires the controller's client certificates
	serviceCAs    *x509.CertPool // trusts the service's TLS certificate
)

// startExampleService starts the service Example calls: it admits only TLS
// clients whose certificate chains to the controller's CA bundle, and greets
// them by their certificate's SPIFFE trust domain.
func startExampleService(dataDir string) (stop func(), err error) {
	bundle, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca-bundle.pem"))
	if err != nil {
		return nil, err
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(bundle) {
		return nil, fmt.Errorf("no certificate in the ca bundle")
	}
	greet := func(w http.ResponseWriter, r *http.Request) {
		leaf := r.TLS.PeerCertificates[0]
		//nolint:gosec // G705: a plain-text reply to a test client, not a page
		_, _ = fmt.Fprintf(w, "hello, client of %s\n", leaf.URIs[0].Host)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(greet))
	srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  clientCAs,
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	serviceURL = srv.URL
	serviceCAs = x509.NewCertPool()
	serviceCAs.AddCert(srv.Certificate())
	return srv.Close, nil
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
)

// serverTLSConfig is the router's listener: its own certificate, and a
// client certificate required and verified against the client CA bundle,
// so that a certificate from any other CA fails in the handshake, before
// the controller is asked anything. Without clientCAFile the config has no
// ClientCAs yet: the router reads them from the controller before it
// serves (router.loadClientCAs).
func serverTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-certificate: %w", err)
	}
	clientCAs, err := loadPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("--client-ca: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}, nil
}

// loadPool reads a PEM bundle into a pool; an empty path gives nil, which
// crypto/tls reads as the system roots.
func loadPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(path) //nolint:gosec // G304: operator-chosen path
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// dialFunc dials the controller; tests replace it to follow a controller
// that restarts on another port.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// newControllerClient returns the generated client for the controller at
// base, trusting roots (nil: the system roots). The HTTP client has no
// overall timeout: the gate bounds each call itself, and long polls last
// up to a minute.
func newControllerClient(base *url.URL, roots *x509.CertPool, dial dialFunc) *client.Sessioncert {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	httpClient := &http.Client{Transport: &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}}
	basePath := base.Path
	if basePath == "" {
		basePath = client.DefaultBasePath
	}
	rt := httptransport.NewWithClient(base.Host, basePath, []string{base.Scheme}, httpClient)
	return client.New(rt, strfmt.Default)
}

// newServer returns the router's HTTPS server around p. ConnContext and
// ConnState let p bind each connection to one session and release it when
// the connection ends.
func newServer(p *proxy, tlsCfg *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           p,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       p.connContext,
		ConnState:         p.connState,
		// Failed handshakes land here: one line per stranger is Debug.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

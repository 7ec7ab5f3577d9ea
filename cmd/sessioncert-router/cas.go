package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sessioncert/sessioncert/pkg/gate"
)

// Bounds of the pause between attempts to read the client CAs.
const (
	casMinRetry = time.Second
	casMaxRetry = 30 * time.Second
)

// loadClientCAs reads the CA bundle of the controller's session
// certificates into the listener's ClientCAs, for a router given no
// --client-ca. The gate has logged in by now, so a failure to reach the
// controller is passing: it tries again until ctx ends, and then returns
// ctx's error. Credentials the
// controller refuses end the attempt at once. It must run before the
// server serves, as crypto/tls does not expect ClientCAs to change under
// it. The bundle is read once: restart the router after the controller's
// CA changes.
func (rt *router) loadClientCAs(ctx context.Context) error {
	for wait := casMinRetry; ; wait = min(2*wait, casMaxRetry) {
		cas, err := rt.gate.ClientCAs(ctx)
		if err == nil {
			pool := x509.NewCertPool()
			for _, c := range cas {
				pool.AddCert(c)
			}
			rt.srv.TLSConfig.ClientCAs = pool
			rt.log.Info("client CAs read from the controller", slog.Int("certificates", len(cas)))
			return nil
		}
		if !errors.Is(err, gate.ErrUnavailable) {
			return fmt.Errorf("reading the client CAs from the controller: %w", err)
		}
		rt.log.Warn("reading the client CAs from the controller failed; trying again",
			slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

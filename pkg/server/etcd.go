package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/etcd"
)

// clockSkew is how far apart the replicas' clocks may be; the registry's
// sweep margin and the etcd lease slack both allow for it.
const clockSkew = session.DefaultClockSkew

// openEtcd connects to the etcd cluster of --etcd-endpoints.
func (s *Server) openEtcd() (store.Store, error) {
	tlsConfig, err := s.etcdTLS()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := etcd.Open(ctx, etcd.Options{
		Endpoints:    s.cfg.Store.EtcdEndpoints,
		TLS:          tlsConfig,
		Prefix:       s.cfg.Store.EtcdPrefix,
		EventHistory: s.cfg.Store.EventHistory,
		// The lease slack follows from how long the registry holds
		// activity before it writes it, and how far the replicas' clocks
		// may disagree: the same two values the registry is given.
		FlushInterval: s.cfg.Store.FlushInterval,
		ClockSkew:     clockSkew,
		OnError: func(err error) {
			if errors.Is(err, etcd.ErrNoSpace) {
				// Writes fail until an operator acts; the error says how.
				s.log.Error("etcd is out of space and refuses writes", slog.Any("error", err))
				return
			}
			s.log.Warn("etcd store", slog.Any("error", err))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: open etcd store: %w", err)
	}
	s.storeName = "etcd " + strings.Join(s.cfg.Store.EtcdEndpoints, ",") + " " + s.cfg.Store.EtcdPrefix
	if s.cfg.Certs.CACert == "" {
		// Replicas must share one CA, or a certificate issued by one is
		// untrusted by the routers of another.
		s.log.Warn("etcd store with the development CA of this data directory; give every replica the same " +
			"--ca-cert and --ca-key")
	}
	return st, nil
}

// etcdTLS builds the client TLS configuration from the --etcd-* files; nil
// when none is given and the endpoints are plain http.
func (s *Server) etcdTLS() (*tls.Config, error) {
	c := s.cfg.Store
	if c.EtcdCA == "" && c.EtcdCert == "" {
		for _, ep := range c.EtcdEndpoints {
			if strings.HasPrefix(ep, "https://") {
				return &tls.Config{MinVersion: tls.VersionTLS12}, nil
			}
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.EtcdCA != "" {
		pem, err := os.ReadFile(c.EtcdCA)
		if err != nil {
			return nil, fmt.Errorf("server: --etcd-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("server: --etcd-ca holds no certificate")
		}
	}
	if c.EtcdCert != "" {
		pair, err := tls.LoadX509KeyPair(c.EtcdCert, c.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("server: --etcd-cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Package server assembles sessioncert-server: it opens the store, loads the
// CA, builds the session registry, the authenticators and the generated API
// with its handlers, and serves it over HTTPS with graceful shutdown.
package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/runtime/middleware"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/sessioncert/sessioncert/pkg/apidocs"
	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/httpx"
	"github.com/sessioncert/sessioncert/pkg/manage"
	"github.com/sessioncert/sessioncert/pkg/metrics"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
	"github.com/sessioncert/sessioncert/restapi"
	"github.com/sessioncert/sessioncert/restapi/operations"
)

// Deps are the parts of a server that tests replace: the clock, randomness,
// the logger and the password hashing cost. Zero values select the real
// ones.
type Deps struct {
	Now        func() time.Time
	Rand       io.Reader
	Logger     *slog.Logger
	HashParams auth.HashParams

	// JWKSClient fetches the key sets of external JWT signers; nil means a
	// client with the system's roots.
	JWKSClient *http.Client

	// AdminPassword is the password of the first admin; empty means the
	// SESSIONCERT_ADMIN_PASSWORD variable, or a generated one.
	AdminPassword string

	// Version describes the build, for the version operation and the
	// start-up log line.
	Version handlers.VersionInfo

	// WrapStore, when set, wraps the store once it is open, before anything
	// uses it: tests inject faults underneath the server with it. nil
	// leaves the store as it is.
	WrapStore func(store.Store) store.Store

	// WrapCASigner, when set, wraps the CA's signer once its key is loaded,
	// before the CA is built on it: tests stand in a faulty KMS with it.
	// nil leaves the signer as it is.
	WrapCASigner func(crypto.Signer) crypto.Signer
}

// Server is a configured sessioncert-server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	store    store.Store
	ca       *ca.CA
	registry *session.Registry
	handler  http.Handler
	tls      *tls.Config
	// routes finds the operation of a request answered before routing,
	// for its count.
	routes *middleware.Context

	metrics   *metrics.Metrics
	audit     *audit.Log
	observer  *observer
	storeName string
	docs      []byte

	started       time.Time
	sweepInterval time.Duration
	healthCache   healthCache

	cancel   context.CancelFunc
	bg       sync.WaitGroup
	handlers inflight
}

// New builds a server from cfg: it creates the data directory and the
// development PKI when needed, opens the store, creates the first admin on
// an empty store, and starts the background flusher and sweeper. Close
// releases everything.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.HashParams == (auth.HashParams{}) {
		deps.HashParams = auth.DefaultHashParams
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, started: deps.Now(),
		sweepInterval: cfg.Store.SweepInterval}
	if err := s.build(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}

	// The development PKI backs whatever the flags do not provide.
	var dev *ca.DevPKI
	if s.cfg.Certs.CACert == "" || s.cfg.Listen.TLSCertificate == "" {
		var err error
		dev, err = ca.EnsureDevPKI(filepath.Join(s.cfg.DataDir, "pki"), s.deps.Now(), s.deps.Rand)
		if err != nil {
			return fmt.Errorf("server: development pki: %w", err)
		}
		if dev.CreatedCA {
			s.log.Info("created development pki", slog.String("dir", filepath.Dir(dev.CACert)))
		}
	}

	if err := s.loadCA(dev); err != nil {
		return err
	}
	if err := s.loadTLS(dev); err != nil {
		return err
	}

	s.metrics = metrics.New()
	st, err := s.openStore()
	if err != nil {
		return err
	}
	if s.deps.WrapStore != nil {
		st = s.deps.WrapStore(st)
	}
	s.store = metrics.InstrumentStore(st, s.metrics)
	if err := s.openAudit(); err != nil {
		return err
	}
	s.observer = &observer{metrics: s.metrics, audit: s.audit, log: s.log}

	ctx := context.Background()
	if err := s.ensureAdmin(ctx); err != nil {
		return err
	}
	if err := s.RefreshLiveGauges(ctx); err != nil {
		return err
	}

	// Replicas on etcd see each other's activity and identity changes only
	// through the store; bolt has one writer, this process.
	var revalidate time.Duration
	if s.cfg.Store.Kind == "etcd" {
		revalidate = s.cfg.Store.EtcdRevalidate
	}
	s.registry, err = session.New(session.Config{
		Store:         s.store,
		Timeout:       s.cfg.SessionTimeout,
		FlushInterval: s.cfg.Store.FlushInterval,
		SweepInterval: s.cfg.Store.SweepInterval,
		Revalidate:    revalidate,
		ClockSkew:     clockSkew,
		Now:           s.deps.Now,
		Rand:          s.deps.Rand,
		Logger:        s.log,
		Observer:      s.observer,
	})
	if err != nil {
		return err
	}

	if err := s.buildHandler(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.registry.Run(ctx)
	}()
	if s.cfg.Store.Kind == "etcd" {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.refreshLiveGaugesEvery(ctx, metrics.LiveRefreshInterval)
		}()
	}
	return nil
}

// RefreshLiveGauges sets the live gauges to the store's counts of sessions
// and certificates. The server does it at start, so that the gauges keep
// counting what a previous run left, and in cluster mode every
// metrics.LiveRefreshInterval: replicas count only their own creations and
// removals, and the counts bring in those of the others, so that every
// replica reports the cluster's figures. It returns the store's error.
func (s *Server) RefreshLiveGauges(ctx context.Context) error {
	_, sessions, err := s.store.ListAPISessions(ctx, store.Page{Limit: 1})
	if err != nil {
		return fmt.Errorf("server: count sessions: %w", err)
	}
	certs, err := s.store.CountCertificates(ctx)
	if err != nil {
		return fmt.Errorf("server: count certificates: %w", err)
	}
	s.metrics.SetLive(sessions, certs)
	return nil
}

// refreshLiveGaugesEvery refreshes the live gauges every interval until ctx
// ends. A failed count leaves the gauges as they are until the next one.
func (s *Server) refreshLiveGaugesEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.RefreshLiveGauges(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("count sessions and certificates for the live gauges failed",
					slog.Any("error", err))
			}
		}
	}
}

// openStore opens the configured store.
func (s *Server) openStore() (store.Store, error) {
	if s.cfg.Store.Kind == "etcd" {
		return s.openEtcd()
	}
	st, err := bolt.Open(filepath.Join(s.cfg.DataDir, "sessioncert.db"), bolt.Options{
		EventHistory: s.cfg.Store.EventHistory,
	})
	if err != nil {
		return nil, fmt.Errorf("server: open store: %w", err)
	}
	s.storeName = "bolt " + st.Path()
	return st, nil
}

// openAudit opens the audit trail named by --audit-log.
func (s *Server) openAudit() error {
	path := s.cfg.Ops.AuditLog
	switch {
	case path == "none":
		path = ""
	case path != "" && path != "-" && !filepath.IsAbs(path):
		path = filepath.Join(s.cfg.DataDir, path)
	}
	a, err := audit.Open(path, s.deps.Now)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.audit = a
	return nil
}

func (s *Server) loadCA(dev *ca.DevPKI) error {
	certPath, keyPath := s.cfg.Certs.CACert, s.cfg.Certs.CAKey
	if certPath == "" {
		certPath, keyPath = dev.CACert, dev.CAKey
	}
	chain, signer, err := ca.LoadFiles(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("server: load ca: %w", err)
	}
	if s.deps.WrapCASigner != nil {
		signer = s.deps.WrapCASigner(signer)
	}
	td, err := spiffeid.TrustDomainFromString(s.cfg.TrustDomain)
	if err != nil {
		return fmt.Errorf("server: --trust-domain: %w", err)
	}
	s.ca, err = ca.New(ca.Config{
		Chain:       chain,
		Signer:      signer,
		TrustDomain: td,
		Lifetime:    s.cfg.Certs.Lifetime,
		Backdate:    s.cfg.Certs.Backdate,
		Now:         s.deps.Now,
		Rand:        s.deps.Rand,
	})
	if err != nil {
		return fmt.Errorf("server: ca %s: %w", certPath, err)
	}
	return nil
}

func (s *Server) loadTLS(dev *ca.DevPKI) error {
	certPath, keyPath := s.cfg.Listen.TLSCertificate, s.cfg.Listen.TLSKey
	if certPath == "" {
		certPath, keyPath = dev.ServerCert, dev.ServerKey
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("server: load tls certificate: %w", err)
	}
	s.tls = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		// Ask for a client certificate but do not require one: password and
		// ext-jwt logins come without. The handshake still proves that a
		// client holds the key of any certificate it sends; whether the
		// certificate is trusted is decided afterwards, per operation.
		ClientAuth: tls.RequestClientCert,
	}
	return nil
}

func (s *Server) buildHandler() error {
	spec, err := loads.Analyzed(restapi.SwaggerJSON, "")
	if err != nil {
		return fmt.Errorf("server: load embedded spec: %w", err)
	}
	api := operations.NewSessioncertAPI(spec)
	api.Logger = func(format string, args ...any) { s.log.Debug(fmt.Sprintf(format, args...)) }

	password, err := auth.NewPassword(auth.PasswordConfig{
		Store:      s.store,
		Params:     s.deps.HashParams,
		BySource:   auth.NewAttemptLimiter(s.cfg.Logins.FailureBurst, s.cfg.Logins.FailureEvery),
		ByUsername: auth.NewAttemptLimiter(s.cfg.Logins.FailureBurst, s.cfg.Logins.FailureEvery),
		Now:        s.deps.Now,
		Rand:       s.deps.Rand,
	})
	if err != nil {
		return err
	}
	h := handlers.New(handlers.Config{
		Registry: s.registry,
		Issuer: session.NewIssuer(session.IssuerConfig{
			Registry:  s.registry,
			Signer:    s.ca,
			Verifier:  s.ca,
			MaxLive:   s.cfg.Certs.MaxCertsPerSession,
			RateBurst: s.cfg.Certs.RateBurst,
			RateEvery: s.cfg.Certs.RateRefill,
		}),
		Manage: manage.New(manage.Config{
			Store:      s.store,
			Registry:   s.registry,
			HashParams: s.deps.HashParams,
			Now:        s.deps.Now,
			Rand:       s.deps.Rand,
			Observer:   s.observer,
		}),
		Password: password,
		Cert:     auth.NewCert(auth.CertConfig{Store: s.store, Now: s.deps.Now, Rand: s.deps.Rand}),
		ExtJWT: auth.NewExtJWT(auth.ExtJWTConfig{
			Store: s.store, HTTPClient: s.deps.JWKSClient, Now: s.deps.Now,
		}),
		Logins:   auth.NewAttemptLimiter(s.cfg.Logins.FailureBurst, s.cfg.Logins.FailureEvery),
		Recorder: s.observer,
		Health:   s.health,
		Version:  s.deps.Version,
		Logger:   s.log,
		Now:      s.deps.Now,
	})
	h.Register(api)
	if err := api.Validate(); err != nil {
		return fmt.Errorf("server: api: %w", err)
	}

	if s.docs, err = apidocs.Render(restapi.SwaggerJSON); err != nil {
		return err
	}

	mux := s.dispatch(handlers.SingleToken(api.Serve(func(next http.Handler) http.Handler {
		return nameOperation(handlers.ContentType(next))
	})))
	s.routes = api.Context()
	s.handler = httpx.Middleware(httpx.Config{
		Logger:    s.log,
		Unhandled: handlers.Unhandled,
		TooLarge:  handlers.TooLarge,
		Rand:      s.deps.Rand,
		Done:      s.countRequest,
	}, mux)
	return nil
}

// Handler returns the server's HTTP handler: the API with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig returns the listener's TLS configuration. Callers must not
// modify it.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

// CA returns the certificate authority.
func (s *Server) CA() *ca.CA { return s.ca }

// Store returns the store, for tests and tools that inspect it.
func (s *Server) Store() store.Store { return s.store }

// Registry returns the session registry.
func (s *Server) Registry() *session.Registry { return s.registry }

// Listen opens the configured TCP listener.
func (s *Server) Listen() (net.Listener, error) {
	addr := net.JoinHostPort(s.cfg.Listen.Host, strconv.Itoa(s.cfg.Listen.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	return ln, nil
}

// Serve serves HTTPS on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within the shutdown timeout and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handlers.track(s.handler),
		TLSConfig:         s.tls.Clone(),
		ReadTimeout:       s.cfg.Listen.ReadTimeout,
		ReadHeaderTimeout: s.cfg.Listen.ReadTimeout,
		WriteTimeout:      s.cfg.Listen.WriteTimeout,
		IdleTimeout:       s.cfg.Listen.IdleTimeout,
		MaxHeaderBytes:    s.cfg.Listen.MaxHeaderSize,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Every listener is open before the start-up line, and the API serves
	// only after it: a client that got a reply knows the line was written.
	errc := make(chan error, 2)
	metricsURL := "https://" + ln.Addr().String() + "/metrics"
	var metricsSrv *http.Server
	if addr := s.cfg.Ops.MetricsAddr; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("server: metrics listener: %w", err)
		}
		metricsURL = "http://" + mln.Addr().String() + "/metrics"
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- metricsSrv.Serve(mln) }()
	}

	if addr := s.cfg.Ops.PprofAddr; addr != "" {
		pln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = ln.Close()
			if metricsSrv != nil {
				_ = metricsSrv.Close()
			}
			return fmt.Errorf("server: pprof listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pprofSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = pprofSrv.Serve(pln) }()
		defer func() { _ = pprofSrv.Close() }()
		s.log.Warn("serving the profiler",
			slog.String("url", "http://"+pln.Addr().String()+"/debug/pprof/"))
	}

	s.log.Info("serving",
		slog.String("listen", ln.Addr().String()),
		slog.String("url", "https://"+ln.Addr().String()),
		slog.String("docs", "https://"+ln.Addr().String()+"/docs"),
		slog.String("metrics", metricsURL),
		slog.String("version", s.deps.Version.Version),
		slog.String("store", s.storeName),
		slog.String("ca", s.ca.Certificate().Subject.String()),
		slog.Time("caNotAfter", s.ca.NotAfter()))
	go func() { errc <- srv.ServeTLS(ln, "", "") }()

	select {
	case err := <-errc:
		_ = srv.Close()
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	// Stop accepting, release the routers' long polls, and give in-flight
	// requests the shutdown timeout to finish.
	s.log.Info("shutting down", slog.Duration("timeout", s.cfg.Listen.ShutdownTimeout))
	s.registry.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Listen.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Past the timeout, cut the connections left: their handlers' contexts
		// end, and Close waits for the handlers before it closes the store.
		s.log.Warn("shutdown timeout passed; closing the connections left")
		_ = srv.Close()
	}
	if metricsSrv != nil {
		if metricsSrv.Shutdown(sctx) != nil {
			_ = metricsSrv.Close()
		}
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

// Close waits for handlers still running (those whose connections the
// shutdown timeout cut, for up to cutHandlerGrace), stops the background
// work, writes pending session activity and closes the store and the audit
// trail.
func (s *Server) Close() error {
	// A handler that outlived its connection may still store a certificate
	// and audit it: the store and the audit trail must outlive it.
	gctx, cancel := context.WithTimeout(context.Background(), cutHandlerGrace)
	if n := s.handlers.wait(gctx); n > 0 {
		s.log.Error("closing the store under running handlers", slog.Int("handlers", n))
	}
	cancel()
	if s.cancel != nil {
		s.cancel()
		s.bg.Wait()
	}
	var errs []error
	if s.registry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.registry.Close(ctx); !errors.Is(err, store.ErrClosed) {
			errs = append(errs, err)
		}
		cancel()
	}
	if s.store != nil {
		if err := s.store.Close(); !errors.Is(err, store.ErrClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.audit.Close())
	return errors.Join(errs...)
}

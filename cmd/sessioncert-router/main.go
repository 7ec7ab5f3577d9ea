// Command sessioncert-router is the reference edge router of sessioncert:
// an HTTPS reverse proxy that admits a client only when its TLS client
// certificate belongs to the live API session named by the zt-session token
// it sends, and closes the client's connections when that session or
// certificate ends. Admission decisions come from pkg/gate, which asks the
// controller and follows its removal events.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/pkg/gate"
)

// options are the command line of sessioncert-router. Every flag may also
// come from the environment variable in its env tag. The help text and
// the allowed values are in flagHelp and flagChoices, as a struct tag
// cannot be wrapped and they would make its line too long.
type options struct {
	Listen         string `long:"listen" env:"SESSIONCERT_ROUTER_LISTEN" default:"127.0.0.1:1443"`
	TLSCertificate string `long:"tls-certificate" env:"SESSIONCERT_ROUTER_TLS_CERTIFICATE"`
	TLSKey         string `long:"tls-key" env:"SESSIONCERT_ROUTER_TLS_KEY"`
	ClientCA       string `long:"client-ca" env:"SESSIONCERT_ROUTER_CLIENT_CA"`

	Controller   string `long:"controller" env:"SESSIONCERT_ROUTER_CONTROLLER" default:"https://127.0.0.1:1280"`
	ControllerCA string `long:"controller-ca" env:"SESSIONCERT_ROUTER_CONTROLLER_CA"`
	Username     string `long:"username" env:"SESSIONCERT_ROUTER_USERNAME"`
	Password     string `long:"password" env:"SESSIONCERT_ROUTER_PASSWORD"`

	Upstream string `long:"upstream" env:"SESSIONCERT_ROUTER_UPSTREAM"`

	LogLevel     string        `long:"log-level" env:"SESSIONCERT_ROUTER_LOG_LEVEL" default:"info"`
	LogFormat    string        `long:"log-format" env:"SESSIONCERT_ROUTER_LOG_FORMAT" default:"text"`
	ShutdownWait time.Duration `long:"shutdown-timeout" env:"SESSIONCERT_ROUTER_SHUTDOWN_TIMEOUT" default:"15s"`
}

// flagHelp is the --help text of each flag, by long name.
var flagHelp = map[string]string{
	"listen":          "address the HTTPS proxy listens on",
	"tls-certificate": "the router's server certificate (PEM, chain allowed)",
	"tls-key":         "private key of --tls-certificate",
	"client-ca": "PEM bundle client certificates must chain to; default: the controller's CA " +
		"bundle, read from the controller at start",
	"controller": "base URL of the sessioncert controller",
	"controller-ca": "PEM bundle to trust the controller's TLS certificate; default: the " +
		"system roots",
	"username": "username of the router's identity (of type Router) at the controller",
	"password": "its password; prefer the environment variable, which other users cannot " +
		"see in the process list",
	"upstream":         "URL admitted requests are forwarded to",
	"log-level":        "least severe level logged",
	"log-format":       "log line format",
	"shutdown-timeout": "how long in-flight requests may finish after SIGTERM",
}

// flagChoices are the values allowed for the flags that take one of a few.
var flagChoices = map[string][]string{
	"log-level":  {"debug", "info", "warn", "error"},
	"log-format": {"text", "json"},
}

// check validates what the flags' types cannot, and returns the parsed
// URLs.
func (o *options) check() (controller, upstream *url.URL, err error) {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"--tls-certificate", o.TLSCertificate}, {"--tls-key", o.TLSKey},
		{"--username", o.Username}, {"--password", o.Password},
		{"--upstream", o.Upstream},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("missing %v (flags or SESSIONCERT_ROUTER_* variables)", missing)
	}
	if controller, err = parseBaseURL("--controller", o.Controller); err != nil {
		return nil, nil, err
	}
	if upstream, err = parseBaseURL("--upstream", o.Upstream); err != nil {
		return nil, nil, err
	}
	if controller.Scheme != "https" {
		return nil, nil, errors.New(
			"--controller must be an https URL: the router's password travels on it")
	}
	return controller, upstream, nil
}

func parseBaseURL(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want http(s)://host[:port][/path]", flag, s)
	}
	return u, nil
}

// newParser returns the parser of o's flags, with their help text and
// allowed values set.
func newParser(o *options) (*flags.Parser, error) {
	p := flags.NewParser(o, flags.Default)
	p.Name = "sessioncert-router"
	for name, help := range flagHelp {
		opt := p.FindOptionByLongName(name)
		if opt == nil {
			return nil, fmt.Errorf("help text for --%s, which is no flag", name)
		}
		opt.Description = help
	}
	for name, choices := range flagChoices {
		opt := p.FindOptionByLongName(name)
		if opt == nil {
			return nil, fmt.Errorf("choices for --%s, which is no flag", name)
		}
		opt.Choices = choices
	}
	return p, nil
}

// parseArgs reads the command line and the environment. It returns
// flags.ErrHelp, wrapped, after printing the help.
func parseArgs(args []string) (*options, error) {
	var o options
	p, err := newParser(&o)
	if err != nil {
		return nil, err
	}
	if _, err := p.ParseArgs(args); err != nil {
		return nil, err
	}
	return &o, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseArgs(args)
	if err != nil {
		var fe *flags.Error
		switch {
		case errors.As(err, &fe) && errors.Is(fe.Type, flags.ErrHelp):
			return 0
		case fe == nil:
			// go-flags printed its own errors; this one is not its.
			fmt.Fprintln(os.Stderr, "sessioncert-router:", err)
		}
		return 2
	}
	controller, upstream, err := o.check()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessioncert-router:", err)
		return 2
	}
	log := newLogger(o.LogLevel, o.LogFormat)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, o, controller, upstream, log); err != nil {
		log.Error("router failed", slog.Any("error", err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// serve runs the router until ctx ends or the gate stops for good.
func serve(ctx context.Context, o *options, controller, upstream *url.URL, log *slog.Logger) error {
	roots, err := loadPool(o.ControllerCA)
	if err != nil {
		return fmt.Errorf("--controller-ca: %w", err)
	}
	tlsCfg, err := serverTLSConfig(o.TLSCertificate, o.TLSKey, o.ClientCA)
	if err != nil {
		return err
	}
	g, err := gate.New(gate.Config{
		Client:   newControllerClient(controller, roots, nil),
		Username: o.Username,
		Password: o.Password,
		Logger:   log.With(slog.String("component", "gate")),
	})
	if err != nil {
		return err
	}
	// Listening early reports a taken port before the controller is asked
	// anything; clients wait in the listen queue until the gate is ready.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("starting", slog.String("controller", controller.Redacted()),
		slog.String("upstream", upstream.Redacted()))
	rt := &router{
		gate:         g,
		srv:          newServer(newProxy(g, upstream, log), tlsCfg, log),
		log:          log,
		shutdownWait: o.ShutdownWait,
	}
	return rt.run(ctx, ln)
}

// router is the gate and the HTTPS server in front of the upstream, run
// together by run.
type router struct {
	gate         *gate.Gate
	srv          *http.Server
	log          *slog.Logger
	shutdownWait time.Duration // for in-flight requests on shutdown
}

// run follows the controller's events and, once the gate is ready, serves
// ln until ctx ends or the gate stops for good. It closes ln.
func (rt *router) run(ctx context.Context, ln net.Listener) error {
	// The gate follows events for as long as the server serves; it stops
	// last, so that connections still open during the shutdown stay
	// under watch.
	gateCtx, stopGate := context.WithCancel(context.Background())
	defer stopGate()
	gateDone := make(chan error, 1)
	go func() { gateDone <- rt.gate.Run(gateCtx) }()

	// No client is accepted before the gate has its first cursor: a
	// connection admitted earlier would miss a removal made between its
	// admission and that cursor, and stay open.
	self := "https://" + ln.Addr().String()
	rt.log.Info("waiting for the controller's event stream", slog.String("url", self))
	select {
	case <-rt.gate.Ready():
	case <-ctx.Done():
		_ = ln.Close()
		stopGate()
		if err := <-gateDone; err != nil {
			return fmt.Errorf("following events: %w", err)
		}
		return nil
	case err := <-gateDone:
		_ = ln.Close()
		return fmt.Errorf("following events: %w", err)
	}
	if rt.srv.TLSConfig.ClientCAs == nil {
		if err := rt.loadClientCAs(ctx); err != nil {
			_ = ln.Close()
			stopGate()
			if gerr := <-gateDone; gerr != nil {
				err = errors.Join(err, fmt.Errorf("following events: %w", gerr))
			}
			if ctx.Err() != nil {
				return nil // stopped while waiting for the controller
			}
			return err
		}
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- rt.srv.ServeTLS(ln, "", "") }()
	rt.log.Info("serving", slog.String("url", self))

	var failure error
	gateStopped := false
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		failure = fmt.Errorf("serve: %w", err)
	case err := <-gateDone:
		// Without the gate nothing would close the connections of removed
		// sessions: stop rather than serve blind.
		gateStopped, failure = true, fmt.Errorf("following events: %w", err)
	}

	rt.log.Info("shutting down", slog.Duration("timeout", rt.shutdownWait))
	sctx, cancel := context.WithTimeout(context.Background(), rt.shutdownWait)
	defer cancel()
	if err := rt.srv.Shutdown(sctx); err != nil {
		// Streams still open after the timeout are cut.
		_ = rt.srv.Close()
	}
	stopGate()
	if !gateStopped {
		if err := <-gateDone; err != nil && failure == nil {
			failure = fmt.Errorf("following events: %w", err)
		}
	}
	return failure
}

func newLogger(level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/client"
)

// globalOptions are the options of every command. Their help is in
// optionHelp, as for every command's options: a struct tag must fit on one
// line, and help often does not.
type globalOptions struct {
	Controller string        `long:"controller" short:"c" env:"SESSIONCERT_CONTROLLER" value-name:"URL"`
	CA         string        `long:"ca" env:"SESSIONCERT_CA" value-name:"FILE"`
	JSON       bool          `long:"json"`
	ConfigDir  string        `long:"config-dir" env:"SESSIONCERT_CONFIG_DIR" value-name:"DIR"`
	Timeout    time.Duration `long:"timeout" env:"SESSIONCERT_TIMEOUT" default:"30s" value-name:"DURATION"`
}

// defaultController is the controller of a development server on this
// machine.
const defaultController = "https://127.0.0.1:1280"

func (*globalOptions) optionHelp() map[string]string {
	return map[string]string{
		"controller": "controller to talk to (default: " + defaultController + ")",
		"ca": "PEM bundle of the CAs that sign the controller's TLS certificate " +
			"(default: the one given at login, else the system roots)",
		"json":       "print the API's JSON data instead of a table",
		"config-dir": "where the session is kept (default: <user config dir>/sessioncert)",
		"timeout":    "time limit of each command's requests",
	}
}

// app is what every command shares: the options, the output and, built once
// the options are parsed, the client of the controller.
type app struct {
	opts globalOptions
	io   streams

	// ctx is the run's context. go-flags calls a command's Execute with its
	// arguments only, so the command finds the context here.
	ctx context.Context

	controller *url.URL
	roots      *x509.CertPool // nil: the system roots
	caFile     string         // the bundle roots came from, if any
	api        *client.Sessioncert
}

// run parses args, runs the command they name and returns the exit status.
func run(ctx context.Context, args []string, std streams) int {
	a := &app{io: std, ctx: ctx}
	p, err := a.parser()
	if err != nil {
		return a.fail(err)
	}

	// Parse errors and command errors end differently, so the command runs
	// here and its error is kept apart from the parser's.
	var cmdErr error
	p.CommandHandler = func(cmd flags.Commander, rest []string) error {
		if cmd == nil {
			return nil
		}
		if len(rest) > 0 {
			cmdErr = usagef("unexpected argument %q", rest[0])
			return nil
		}
		cmdErr = a.setUp()
		if cmdErr == nil {
			cmdErr = cmd.Execute(nil)
		}
		return nil
	}
	if _, err := p.ParseArgs(args); err != nil {
		var fe *flags.Error
		if errors.As(err, &fe) && fe.Type == flags.ErrHelp {
			_, _ = fmt.Fprint(a.io.out, fe.Message)
			return exitOK
		}
		return a.fail(&usageError{msg: err.Error() + " (see " + helpCommand(p) + ")"})
	}
	if cmdErr != nil {
		return a.fail(cmdErr)
	}
	return exitOK
}

// parser returns the parser of the whole command line, writing options to
// a's fields.
func (a *app) parser() (*flags.Parser, error) {
	// AllowBoolValues lets update commands say --admin=false.
	p := flags.NewNamedParser("sessioncert",
		flags.HelpFlag|flags.PassDoubleDash|flags.AllowBoolValues)
	p.ShortDescription = "command-line client of a sessioncert controller"
	p.LongDescription = "Log in to a sessioncert controller, obtain API Session Certificates for " +
		"keys made on this machine, and administer identities, authenticators, external JWT " +
		"signers and API sessions.\n\nExit status: 0 done, 1 refused by the controller or not " +
		"logged in, 2 usage error, 3 could not complete (network, TLS, files)."
	global, err := p.AddGroup("Global Options", "", &a.opts)
	if err != nil {
		return nil, err
	}
	if err := setHelp(global.Options(), a.opts.optionHelp()); err != nil {
		return nil, err
	}
	if err := addCommands(p.Command, a.commands()); err != nil {
		return nil, err
	}
	return p, nil
}

// helpCommand names the help of the deepest command the parser got to.
func helpCommand(p *flags.Parser) string {
	words := []string{p.Name}
	for c := p.Active; c != nil; c = c.Active {
		words = append(words, c.Name)
	}
	return strings.Join(append(words, "--help"), " ")
}

// command is one node of the command tree.
type command struct {
	name, short, long string
	data              any // an options struct; a flags.Commander unless it has subs
	subs              []command
}

// commands is the whole command tree.
func (a *app) commands() []command {
	return []command{
		{name: "login", short: "log in and keep the session token", data: &loginCmd{app: a},
			long: "Log in with a password (default), a client certificate (--method cert) or " +
				"an external JWT (--method ext-jwt). The password comes from --password, " +
				"--password-file, SESSIONCERT_PASSWORD or, on a terminal, a prompt; the " +
				"JWT likewise from --jwt, --jwt-file or SESSIONCERT_JWT."},
		{name: "logout", short: "end the session and forget its token", data: &logoutCmd{app: a}},
		{name: "whoami", short: "show the current session", data: &whoamiCmd{app: a}},
		{name: "version", short: "show the controller's version", data: &versionCmd{app: a}},
		{name: "cert", short: "certificates of the current session", data: &struct{}{},
			subs: a.certCommands()},
		{name: "identity", short: "manage identities (admin)", data: &struct{}{},
			subs: a.identityCommands()},
		{name: "authenticator", short: "manage authenticators (admin)", data: &struct{}{},
			subs: a.authenticatorCommands()},
		{name: "signer", short: "manage external JWT signers (admin)", data: &struct{}{},
			subs: a.signerCommands()},
		{name: "session", short: "manage API sessions (admin)", data: &struct{}{},
			subs: a.sessionCommands()},
	}
}

func addCommands(parent *flags.Command, cmds []command) error {
	for _, c := range cmds {
		long := c.long
		if long == "" {
			long = strings.ToUpper(c.short[:1]) + c.short[1:] + "."
		}
		added, err := parent.AddCommand(c.name, c.short, long, c.data)
		if err != nil {
			return err
		}
		if h, ok := c.data.(helper); ok {
			if err := setHelp(added.Options(), h.optionHelp()); err != nil {
				return fmt.Errorf("command %s: %w", c.name, err)
			}
		}
		if err := addCommands(added, c.subs); err != nil {
			return err
		}
	}
	return nil
}

// helper is an options struct that gives its options' help by long name.
type helper interface {
	optionHelp() map[string]string
}

// setHelp sets the description of each option in help. Naming an option
// that does not exist is an error, so that help cannot drift from the
// options it describes.
func setHelp(opts []*flags.Option, help map[string]string) error {
	byName := make(map[string]*flags.Option, len(opts))
	for _, o := range opts {
		byName[o.LongName] = o
	}
	for name, text := range help {
		o, ok := byName[name]
		if !ok {
			return fmt.Errorf("help for the unknown option --%s", name)
		}
		o.Description = text
	}
	return nil
}

// setUp checks the global options and builds the client. It makes no
// request.
func (a *app) setUp() error {
	if a.opts.Controller == "" {
		a.opts.Controller = defaultController
	}
	u, err := parseController(a.opts.Controller)
	if err != nil {
		return err
	}
	a.controller = u
	if a.opts.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	if a.opts.ConfigDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("find the configuration directory (use --config-dir): %w", err)
		}
		a.opts.ConfigDir = filepath.Join(dir, "sessioncert")
	}

	// Without --ca, trust what the login to this controller was told to.
	a.caFile = a.opts.CA
	if a.caFile == "" {
		if saved, err := a.loadSession(); err == nil && saved.Controller == a.controllerURL() {
			a.caFile = saved.CA
		}
	}
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return fmt.Errorf("read the ca bundle: %w", err)
		}
		a.roots = x509.NewCertPool()
		if !a.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("the ca bundle %s holds no PEM certificate", a.caFile)
		}
	}

	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return errors.New("the default http transport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: a.roots}
	basePath := a.controller.Path
	if basePath == "" {
		basePath = client.DefaultBasePath
	}
	a.api = client.New(httptransport.NewWithClient(a.controller.Host, basePath, []string{"https"},
		&http.Client{Transport: tr}), strfmt.Default)
	return nil
}

// parseController checks a --controller URL: https, a host, nothing after
// the path.
func parseController(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, usagef("--controller %q is not a URL such as https://127.0.0.1:1280", raw)
	}
	if u.Scheme != "https" {
		return nil, usagef("--controller %q must use https: session tokens are secrets", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, usagef("--controller %q must have no user, query or fragment", raw)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// controllerURL is the controller's URL in one canonical spelling, the key
// that ties a saved session to its controller.
func (a *app) controllerURL() string {
	return a.controller.Scheme + "://" + a.controller.Host + a.controller.Path
}

// authed returns the auth writer of the saved session, or a notLoggedIn
// error.
func (a *app) authed() (runtime.ClientAuthInfoWriter, error) {
	saved, err := a.currentSession()
	if err != nil {
		return nil, err
	}
	return sessionAuth(saved), nil
}

func sessionAuth(s *savedSession) runtime.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", s.Token)
}

// context returns the context of one command's requests, bounded by
// --timeout.
func (a *app) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.opts.Timeout)
}

package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

const (
	userEnv     = "SESSIONCERT_ROUTER_USERNAME"
	passwordEnv = "SESSIONCERT_ROUTER_PASSWORD"
)

func TestParseArgs(t *testing.T) {
	required := []string{
		"--tls-certificate", "c.pem", "--tls-key", "k.pem", "--client-ca", "ca.pem",
		"--upstream", "http://127.0.0.1:8080",
	}
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(*options) bool
		fail  string // part of check's error; "" when the options are valid
	}{
		{"defaults, credentials from the environment", required,
			map[string]string{userEnv: "edge1", passwordEnv: "secret"},
			func(o *options) bool {
				return o.Listen == "127.0.0.1:1443" && o.Controller == "https://127.0.0.1:1280" &&
					o.Username == "edge1" && o.Password == "secret" && o.LogLevel == "info"
			}, ""},
		{"flags win over the environment",
			append(required, "--username", "flag-user", "--password", "p"),
			map[string]string{userEnv: "env-user"},
			func(o *options) bool { return o.Username == "flag-user" }, ""},
		{"no credentials", required, nil, nil, "--username --password"},
		{"no upstream", []string{"--tls-certificate", "c", "--tls-key", "k", "--client-ca", "ca",
			"--username", "u", "--password", "p"}, nil, nil, "--upstream"},
		{"plain http controller", append(required, "--username", "u", "--password", "p",
			"--controller", "http://127.0.0.1:1280"), nil, nil, "https"},
		{"upstream without a host",
			append(required[:6:6], "--upstream", "/relative", "--username", "u", "--password", "p"),
			nil, nil, "--upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{userEnv, passwordEnv} {
				t.Setenv(name, tc.env[name])
			}
			o, err := parseArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = o.check()
			switch {
			case tc.fail == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Fatalf("check: %v, want an error about %s", err, tc.fail)
			case tc.check != nil && !tc.check(o):
				t.Errorf("options = %+v", o)
			}
		})
	}
}

// TestFlagHelp checks that --help describes every flag with its
// environment variable, and that the flags with a fixed set of values
// refuse others, from the command line and from the environment alike.
func TestFlagHelp(t *testing.T) {
	var o options
	p, err := newParser(&o)
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	p.WriteHelp(&help)
	// The help wraps descriptions; compare them with the breaks undone.
	text := strings.Join(strings.Fields(help.String()), " ")
	opts := routerFlags(p.Group)
	for _, opt := range opts {
		t.Run(opt.LongName, func(t *testing.T) {
			env := opt.EnvKeyWithNamespace()
			want := "SESSIONCERT_ROUTER_" +
				strings.ToUpper(strings.ReplaceAll(opt.LongName, "-", "_"))
			if env != want {
				t.Errorf("environment variable %q, want %q", env, want)
			}
			if opt.Description == "" || !strings.Contains(text, opt.Description) ||
				!strings.Contains(text, "[$"+env+"]") {
				t.Errorf("--help does not show %q with [$%s]:\n%s", opt.Description, env, help.String())
			}
		})
	}
	if n := len(opts); n != len(flagHelp) {
		t.Errorf("%d flags, %d help texts", n, len(flagHelp))
	}

	for _, tc := range []struct {
		name string
		args []string
		env  string // value of SESSIONCERT_ROUTER_LOG_LEVEL
	}{
		{"flag", []string{"--log-level", "verbose"}, ""},
		{"environment", nil, "verbose"},
	} {
		t.Run("log level not a choice from the "+tc.name, func(t *testing.T) {
			t.Setenv("SESSIONCERT_ROUTER_LOG_LEVEL", tc.env)
			var o options
			p, err := newParser(&o)
			if err != nil {
				t.Fatal(err)
			}
			p.Options = flags.None // keep the error off the test's output
			_, err = p.ParseArgs(tc.args)
			var fe *flags.Error
			if !errors.As(err, &fe) || !errors.Is(fe.Type, flags.ErrInvalidChoice) {
				t.Errorf("parse: %v, want an invalid choice", err)
			}
		})
	}
}

// routerFlags returns the options of g and its subgroups but --help.
func routerFlags(g *flags.Group) []*flags.Option {
	var out []*flags.Option
	for _, opt := range g.Options() {
		if opt.LongName != "help" {
			out = append(out, opt)
		}
	}
	for _, sub := range g.Groups() {
		out = append(out, routerFlags(sub)...)
	}
	return out
}

// TestServe runs the router as main does: with a Router identity it serves
// until its context ends; with a User identity it stops and says why.
func TestServe(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "bob", "User", "bob-password")
	pki := filepath.Join(e.DataDir, "pki")
	for _, tc := range []struct {
		name, username, password string
		want                     error
	}{
		{"router identity", routerName, routerPassword, nil},
		{"user identity", "bob", "bob-password", gate.ErrNotRouter},
		{"wrong password", routerName, "wrong", gate.ErrLoginRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseArgs([]string{
				"--listen", "127.0.0.1:0", "--controller", e.URL,
				"--controller-ca", filepath.Join(pki, "ca-bundle.pem"),
				"--tls-certificate", filepath.Join(pki, "server.pem"),
				"--tls-key", filepath.Join(pki, "server.key"),
				"--client-ca", filepath.Join(pki, "ca-bundle.pem"),
				"--upstream", "http://127.0.0.1:1",
				"--username", tc.username, "--password", tc.password, "--shutdown-timeout", "1s",
			})
			if err != nil {
				t.Fatal(err)
			}
			controller, upstream, err := o.check()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = serve(ctx, o, controller, upstream, testLogger(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("serve: %v, want %v", err, tc.want)
			}
			if err != nil {
				t.Logf("serve: %v", err)
			}
		})
	}
}

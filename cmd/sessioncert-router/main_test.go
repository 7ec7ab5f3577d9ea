package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

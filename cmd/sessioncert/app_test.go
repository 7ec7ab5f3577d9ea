package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// inProcess runs the CLI's run function in the test process, with the
// environment of a fresh user of server e: commands can be tested without a
// build, and a fake terminal prompt can answer.
type inProcess struct {
	t      *testing.T
	prompt func(label string) (string, error)
}

func newInProcess(t *testing.T, e *servertest.Env) *inProcess {
	t.Helper()
	for _, k := range []string{"SESSIONCERT_PASSWORD", "SESSIONCERT_NEW_PASSWORD",
		"SESSIONCERT_USERNAME", "SESSIONCERT_JWT", "SESSIONCERT_TIMEOUT"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SESSIONCERT_CONTROLLER", e.URL)
	t.Setenv("SESSIONCERT_CA", filepath.Join(e.DataDir, "pki", "ca-bundle.pem"))
	t.Setenv("SESSIONCERT_CONFIG_DIR", filepath.Join(t.TempDir(), "config"))
	t.Setenv("HOME", t.TempDir())
	return &inProcess{t: t}
}

func (p *inProcess) run(args ...string) result {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, streams{out: &out, err: &errOut, prompt: p.prompt})
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// TestAdminCommands runs the administration commands in order against one
// server. Arguments may name an id captured by an earlier step, as {name}.
func TestAdminCommands(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	p := newInProcess(t, e)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "carol.pem")
	writeClientCert(t, "carol", certFile, filepath.Join(dir, "carol-key.pem"))

	steps := []struct {
		name     string
		args     []string
		capture  string // run with --json and keep the data's id under this name
		wantCode int
		wantOut  []string // in stdout, in order
		// wantLines are patterns of whole lines of stdout, in any order.
		wantLines []string
		wantErr   string // the start of stderr
	}{
		{name: "login", args: []string{"login", "-u", "admin", "-p", servertest.AdminPassword},
			capture: "session"},
		{name: "identity create", capture: "carol",
			args: []string{"identity", "create", "carol", "--type", "Router",
				"--external-id", "c-1"}},
		{name: "identity show", args: []string{"identity", "show", "{carol}"},
			wantOut: []string{"Name:", "carol", "Type:", "Router", "Admin:", "no", "c-1"}},
		{name: "identity update", args: []string{"identity", "update", "{carol}", "--type", "User",
			"--admin", "--external-id", ""}, wantOut: []string{"Updated identity {carol}."}},
		{name: "identity updated", args: []string{"--json", "identity", "show", "{carol}"},
			wantOut: []string{`"isAdmin": true`, `"type": "User"`}},
		{name: "identity update without a change", args: []string{"identity", "update", "{carol}"},
			wantCode: exitUsage, wantErr: "error: nothing to change"},
		{name: "identity list", args: []string{"identity", "list", "--limit", "1"},
			wantOut: []string{"ID", "NAME", "TYPE", "ADMIN"},
			wantErr: "showing 1-1 of 2; see more with --offset 1"},

		{name: "updb authenticator create", capture: "updb", args: []string{"authenticator",
			"create", "--identity", "{carol}", "--username", "carol", "--password", "password-1"}},
		{name: "authenticator show", args: []string{"authenticator", "show", "{updb}"},
			wantOut: []string{"Method:", "updb", "Identity ID:", "{carol}", "Username:", "carol"}},
		{name: "set-password", args: []string{"authenticator", "set-password", "{updb}",
			"--password", "password-2"},
			wantOut: []string{"Set the password of authenticator {updb}."}},
		{name: "cert authenticator create", capture: "cert", args: []string{"authenticator",
			"create", "--identity", "{carol}", "--method", "cert", "--cert-file", certFile}},
		{name: "cert authenticator with a username", args: []string{"authenticator", "create",
			"--identity", "{carol}", "--method", "cert", "--cert-file", certFile,
			"--username", "x"}, wantCode: exitUsage,
			wantErr: "error: --method cert takes --cert-file, and no --username"},
		{name: "authenticator list", args: []string{"authenticator", "list"},
			wantLines: []string{`{updb}\s+updb\s+{carol}\s+carol\s+-`,
				`{cert}\s+cert\s+{carol}\s+-\s+[0-9a-f]{40}`}},
		{name: "authenticator delete", args: []string{"authenticator", "delete", "{cert}"},
			wantOut: []string{"Deleted authenticator {cert}."}},
		{name: "deleted authenticator", args: []string{"authenticator", "show", "{cert}"},
			wantCode: exitRefused, wantErr: "error: NOT_FOUND: the entity was not found\n"},

		{name: "signer create", capture: "signer", args: []string{"signer", "create", "idp",
			"--issuer", "https://idp.example", "--audience", "sessioncert",
			"--jwks-endpoint", "https://idp.example/jwks"}},
		{name: "signer without a key", args: []string{"signer", "create", "idp2",
			"--issuer", "https://idp2.example", "--audience", "sessioncert"},
			wantCode: exitUsage,
			wantErr:  "error: give exactly one of --jwks-endpoint and --cert-file"},
		{name: "signer update", args: []string{"signer", "update", "{signer}", "--enabled=false",
			"--claims-property", "email"},
			wantOut: []string{"Updated external JWT signer {signer}."}},
		{name: "signer show", args: []string{"signer", "show", "{signer}"},
			wantOut: []string{"Issuer:", "https://idp.example", "Claims property:", "email",
				"Enabled:", "no"}},
		{name: "signer list", args: []string{"signer", "list"},
			wantLines: []string{`{signer}\s+idp\s+https://idp\.example\s+sessioncert\s+no`}},
		{name: "signer delete", args: []string{"signer", "delete", "{signer}"},
			wantOut: []string{"Deleted external JWT signer {signer}."}},

		{name: "session list", args: []string{"session", "list"},
			wantLines: []string{`{session}\s+admin\s+127\.0\.0\.1\s+\S+Z\s+\S+Z`}},
		{name: "session show", args: []string{"session", "show", "{session}"},
			wantOut: []string{"ID:", "{session}", "Identity:", "admin", "Idle timeout:", "30m0s"}},
		{name: "version", args: []string{"version"}, wantOut: []string{"Version:", "APIs:"}},
		{name: "identity delete", args: []string{"identity", "delete", "{carol}"},
			wantOut: []string{"Deleted identity {carol}."}},
		{name: "session delete", args: []string{"session", "delete", "{session}"},
			wantOut: []string{"Deleted API session {session}."}},
		{name: "whoami after the session was deleted", args: []string{"whoami"},
			wantCode: exitRefused,
			wantErr: "error: UNAUTHORIZED: the session token is invalid " +
				"(run sessioncert login)\n"},
		{name: "logout of an ended session", args: []string{"logout"},
			wantOut: []string{"had already ended; forgot its token."}},
		{name: "logout again", args: []string{"logout"},
			wantOut: []string{"Not logged in to " + e.URL + "."}},
	}
	ids := map[string]string{}
	expand := func(s string) string {
		for k, v := range ids {
			s = strings.ReplaceAll(s, "{"+k+"}", v)
		}
		return s
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			args := make([]string, 0, len(st.args)+1)
			if st.capture != "" {
				args = append(args, "--json")
			}
			for _, a := range st.args {
				args = append(args, expand(a))
			}

			res := p.run(args...)

			if res.code != st.wantCode {
				t.Fatalf("sessioncert %s: %s\nwant exit %d",
					strings.Join(args, " "), res, st.wantCode)
			}
			quiet := st.wantErr == ""
			if !strings.HasPrefix(res.stderr, st.wantErr) || quiet != (res.stderr == "") {
				t.Errorf("stderr %q, want it to start %q", res.stderr, st.wantErr)
			}
			rest := res.stdout
			for _, w := range st.wantOut {
				i := strings.Index(rest, expand(w))
				if i < 0 {
					t.Errorf("stdout lacks %q after the earlier parts:\n%s", expand(w), res.stdout)
					break
				}
				rest = rest[i+len(expand(w)):]
			}
			for _, l := range st.wantLines {
				re := regexp.MustCompile(`(?m)^` + expand(l) + `\s*$`)
				if !re.MatchString(res.stdout) {
					t.Errorf("no line of stdout matches %s:\n%s", re, res.stdout)
				}
			}
			if st.capture != "" {
				var data struct{ ID string }
				if err := json.Unmarshal([]byte(res.stdout), &data); err != nil || data.ID == "" {
					t.Fatalf("no id in the JSON output (%v):\n%s", err, res.stdout)
				}
				ids[st.capture] = data.ID
			}
		})
		if !ok {
			break // later steps depend on this one
		}
	}
}

// TestPasswordPrompt checks that a password comes from the terminal when no
// flag, variable or file gives it, and that a new password is asked twice.
func TestPasswordPrompt(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name     string
		loggedIn bool // log in as admin first
		args     []string
		answers  []string
		wantCode int
		wantErr  string
	}{
		{"login", false, []string{"login", "-u", "admin"}, []string{servertest.AdminPassword},
			exitOK, ""},
		{"wrong password", false, []string{"login", "-u", "admin"}, []string{"nope"},
			exitRefused, "error: INVALID_AUTH: "},
		{"empty password", false, []string{"login", "-u", "admin"}, []string{""}, exitUsage,
			"error: the password is empty"},
		{"new passwords differ", true, []string{"authenticator", "set-password", "some-id"},
			[]string{"one", "two"}, exitUsage, "error: the two new passwords differ"},
		// Asking twice for a password that cannot be used is a waste of the
		// user's typing.
		{"new password when not logged in", false,
			[]string{"authenticator", "set-password", "some-id"}, nil, exitRefused,
			"error: not logged in"},
		{"updb authenticator when not logged in", false,
			[]string{"authenticator", "create", "--identity", "x", "--username", "u"}, nil,
			exitRefused, "error: not logged in"},
		{"prompt fails", false, []string{"login", "-u", "admin"}, nil, exitFailed,
			"error: no terminal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newInProcess(t, e)
			if tt.loggedIn {
				res := p.run("login", "-u", "admin", "-p", servertest.AdminPassword)
				if res.code != 0 {
					t.Fatal(res)
				}
			}
			answers := tt.answers
			p.prompt = func(string) (string, error) {
				if len(answers) == 0 {
					return "", errors.New("no terminal")
				}
				a := answers[0]
				answers = answers[1:]
				return a, nil
			}
			res := p.run(tt.args...)
			if res.code != tt.wantCode || !strings.HasPrefix(res.stderr, tt.wantErr) {
				t.Errorf("got %s\nwant exit %d and stderr starting %q",
					res, tt.wantCode, tt.wantErr)
			}
			if len(answers) != 0 {
				t.Errorf("%d answers left unread", len(answers))
			}
		})
	}
}

// TestCertCreateKeyTypes creates a certificate for each key type and checks
// the files: a key that pairs with the chain, mode 0600, and a refusal to
// overwrite without --force.
func TestCertCreateKeyTypes(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	p := newInProcess(t, e)
	if res := p.run("login", "-u", "admin", "-p", servertest.AdminPassword); res.code != 0 {
		t.Fatal(res)
	}
	out := t.TempDir()
	for _, kt := range []string{"p256", "p384", "ed25519", "rsa2048", "rsa4096"} {
		t.Run(kt, func(t *testing.T) {
			res := p.run("cert", "create", "--key-type", kt, "-o", out, "--name", kt)
			if res.code != 0 {
				t.Fatal(res)
			}
			key, chain := filepath.Join(out, kt+"-key.pem"), filepath.Join(out, kt+"-chain.pem")
			wantMode(t, key, 0o600)
			keyPEM, err := os.ReadFile(key)
			if err != nil {
				t.Fatal(err)
			}
			chainPEM, err := os.ReadFile(chain)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(chainPEM, keyPEM); err != nil {
				t.Errorf("key and chain do not pair: %v", err)
			}

			res = p.run("cert", "create", "--key-type", kt, "-o", out, "--name", kt)
			if res.code != exitFailed || !strings.Contains(res.stderr, "exists (use --force") {
				t.Errorf("second create without --force: %s", res)
			}
			if res := p.run("cert", "create", "-o", out, "--name", kt, "--force"); res.code != 0 {
				t.Errorf("create with --force: %s", res)
			}
		})
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// commandPaths returns the words that name every runnable command, such as
// ["cert", "create"].
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	p, err := (&app{io: streams{out: io.Discard, err: io.Discard}}).parser()
	if err != nil {
		t.Fatal(err)
	}
	var paths [][]string
	var walk func(prefix []string, c *flags.Command)
	walk = func(prefix []string, c *flags.Command) {
		for _, sub := range c.Commands() {
			path := append(append([]string{}, prefix...), sub.Name)
			if len(sub.Commands()) == 0 {
				paths = append(paths, path)
			}
			walk(path, sub)
		}
	}
	walk(nil, p.Command)
	return paths
}

// TestHelp reads the --help of every command as a user at an 80-column
// terminal would: every option explained, and no word broken to fit.
func TestHelp(t *testing.T) {
	// go-flags breaks a word too long for the help column with a hyphen and
	// a blank line.
	broken := regexp.MustCompile(`\S-\n\s*\n`)
	option := regexp.MustCompile(`^\s+(-\w, )?--[\w-]+(=\S*)?$`)
	for _, path := range commandPaths(t) {
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), append(path, "--help"),
				streams{out: &out, err: &errOut})
			help := out.String()
			if code != exitOK || errOut.Len() != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
			if broken.MatchString(help) {
				t.Errorf("a word is broken across lines:\n%s", help)
			}
			for _, line := range strings.Split(help, "\n") {
				if len(line) > 80 {
					t.Errorf("line wider than 80 columns: %q", line)
				}
				if option.MatchString(line) && !strings.Contains(line, "--help") {
					t.Errorf("option without help: %q", line)
				}
			}
		})
	}
}

// TestSecretSources checks where login takes the password from: the flag,
// then the file, then the environment, and that the environment's value
// never conflicts with a flag given on the command line.
func TestSecretSources(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	right := passwordFile(t, servertest.AdminPassword)
	wrong := passwordFile(t, "wrong-password")
	tests := []struct {
		name     string
		env      string // SESSIONCERT_PASSWORD
		args     []string
		wantCode int
		wantErr  string
	}{
		{"environment", servertest.AdminPassword, nil, exitOK, ""},
		{"file over environment", "wrong-password", []string{"--password-file", right},
			exitOK, ""},
		{"flag over environment", "wrong-password", []string{"-p", servertest.AdminPassword},
			exitOK, ""},
		{"the file is used", servertest.AdminPassword, []string{"--password-file", wrong},
			exitRefused, "error: INVALID_AUTH: "},
		{"flag and file", "", []string{"-p", servertest.AdminPassword, "--password-file", right},
			exitUsage, "error: give --password or --password-file, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newInProcess(t, e)
			if tt.env != "" {
				t.Setenv(envPassword, tt.env)
			}

			res := p.run(append([]string{"login", "-u", "admin"}, tt.args...)...)

			if res.code != tt.wantCode || !strings.HasPrefix(res.stderr, tt.wantErr) {
				t.Errorf("got %s\nwant exit %d and stderr starting %q",
					res, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestControlCharacters creates an identity whose name carries terminal
// escape sequences: tables, details and messages show it without them.
func TestControlCharacters(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	p := newInProcess(t, e)
	if res := p.run("login", "-u", "admin", "-p", servertest.AdminPassword); res.code != 0 {
		t.Fatal(res)
	}
	const name = "mallory\x1b[2J\x1b]0;owned\x07\u009b31m"
	res := p.run("--json", "identity", "create", name)
	if res.code != 0 {
		t.Fatal(res)
	}
	id := regexp.MustCompile(`"id": "([^"]+)"`).FindStringSubmatch(res.stdout)
	if id == nil {
		t.Fatalf("no id in %q", res.stdout)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"table", []string{"identity", "list"}},
		{"detail", []string{"identity", "show", id[1]}},
		{"error", []string{"identity", "show", "no-such-id\x1b[31m"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := p.run(tt.args...)
			for _, out := range []string{res.stdout, res.stderr} {
				if strings.ContainsAny(out, "\x1b\x07\u009b") {
					t.Errorf("output holds control characters: %q", out)
				}
			}
		})
	}
	if res := p.run("identity", "list"); !strings.Contains(res.stdout, "mallory\uFFFD[2J") {
		t.Errorf("the name is not shown with its escapes replaced:\n%s", res.stdout)
	}
}

// TestNotAController points the CLI at an HTTPS server that answers every
// request 200 without the data a controller sends: each command fails with
// one line and exit status 3, rather than crashing or claiming a refusal.
func TestNotAController(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		lists := []string{"certificates", "identities", "api-sessions"}
		if r.Method == http.MethodGet && slices.Contains(lists, path.Base(r.URL.Path)) {
			_, _ = io.WriteString(w, `{"data":[null],"meta":{}}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw, 0o644)
	t.Setenv("SESSIONCERT_CONTROLLER", srv.URL)
	t.Setenv("SESSIONCERT_CA", caFile)
	t.Setenv("SESSIONCERT_CONFIG_DIR", filepath.Join(dir, "config"))
	a := &app{opts: globalOptions{ConfigDir: filepath.Join(dir, "config")}}
	if err := a.saveSession(&savedSession{Controller: srv.URL, Token: "t"}); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"version"},
		{"whoami"},
		{"cert", "create", "-o", t.TempDir()},
		{"cert", "show", "x"},
		{"cert", "list"},
		{"identity", "create", "x"},
		{"identity", "show", "x"},
		{"identity", "list"},
		{"session", "list"},
		{"login", "-u", "a", "-p", "b"},
	} {
		t.Run(strings.Join(args[:min(2, len(args))], " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), args, streams{out: &out, err: &errOut})
			if code != exitFailed || strings.Count(errOut.String(), "\n") != 1 ||
				!strings.HasPrefix(errOut.String(), "error: ") {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d and one error line",
					code, errOut.String(), out.String(), exitFailed)
			}
		})
	}
}

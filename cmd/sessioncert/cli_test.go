package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// The CLI as users run it: built once per test binary, into a directory
// TestMain removes. Building once keeps the link, the slow part, out of each
// test.
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the path of the built CLI.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "sessioncert-cli-test-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", buildDir, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "sessioncert")
}

// cli runs the built binary for one user: its own configuration directory
// and home, the test server as controller, nothing from the caller's
// environment but PATH.
type cli struct {
	t         *testing.T
	bin       string
	configDir string
	env       []string
}

func newCLI(t *testing.T, e *servertest.Env) *cli {
	t.Helper()
	home := t.TempDir()
	c := &cli{t: t, bin: binary(t), configDir: filepath.Join(home, "config")}
	c.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"SESSIONCERT_CONFIG_DIR=" + c.configDir,
		"SESSIONCERT_CONTROLLER=" + e.URL,
		"SESSIONCERT_CA=" + filepath.Join(e.DataDir, "pki", "ca-bundle.pem"),
	}
	return c
}

// with returns a copy of c with more environment variables, which override.
func (c *cli) with(env ...string) *cli {
	cp := *c
	cp.env = append(append([]string{}, c.env...), env...)
	return &cp
}

// result is what one run printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		c.t.Fatalf("run sessioncert %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok runs the CLI and fails the test unless it exits 0.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	res := c.run(args...)
	if res.code != 0 {
		c.t.Fatalf("sessioncert %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// okJSON runs the CLI with --json and decodes its output into v.
func (c *cli) okJSON(v any, args ...string) {
	c.t.Helper()
	res := c.ok(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		c.t.Fatalf("sessioncert --json %s: output is not JSON: %v\n%s",
			strings.Join(args, " "), err, res.stdout)
	}
}

// passwordFile writes a password file for the CLI to read.
func passwordFile(t *testing.T, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

// TestCLIRoundTrip walks a user's day: login, whoami, cert create, the
// chain checked by openssl, cert list, show and delete, logout.
func TestCLIRoundTrip(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := newCLI(t, e)

	res := c.ok("login", "--username", "admin", "--password-file",
		passwordFile(t, servertest.AdminPassword))
	if !strings.Contains(res.stdout, "admin") || strings.Contains(res.stdout, "token") {
		t.Errorf("login output:\n%s", res.stdout)
	}
	tokenFile := filepath.Join(c.configDir, sessionFileName)
	wantMode(t, tokenFile, 0o600)
	wantMode(t, c.configDir, 0o700)

	res = c.ok("whoami")
	if !regexp.MustCompile(`(?m)^Identity:\s+admin$`).MatchString(res.stdout) {
		t.Errorf("whoami output:\n%s", res.stdout)
	}
	// Without --ca, later commands trust the bundle the login trusted.
	c.with("SESSIONCERT_CA=").ok("whoami")

	out := t.TempDir()
	res = c.ok("cert", "create", "--out-dir", out, "--name", "alice")
	m := regexp.MustCompile(`(?m)^ID:\s+(\S+)$`).FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("cert create printed no id:\n%s", res.stdout)
	}
	id := m[1]
	for _, want := range []string{"Valid from:", "Valid to:", "alice-key.pem (p256)"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("cert create output lacks %q:\n%s", want, res.stdout)
		}
	}
	key, chain, cas := filepath.Join(out, "alice-key.pem"), filepath.Join(out, "alice-chain.pem"),
		filepath.Join(out, "alice-cas.pem")
	wantMode(t, key, 0o600)

	t.Run("openssl verifies the chain", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl is not installed; the chain is not checked by a second implementation")
		}
		verify, err := exec.Command(openssl, "verify", "-purpose", "sslclient",
			"-CAfile", cas, "-untrusted", chain, chain).CombinedOutput()
		if err != nil || !strings.Contains(string(verify), "OK") {
			t.Errorf("openssl verify: %v\n%s", err, verify)
		}
	})

	if res := c.ok("cert", "list"); !strings.Contains(res.stdout, id) {
		t.Errorf("cert list does not show %s:\n%s", id, res.stdout)
	}
	var listed []map[string]any
	c.okJSON(&listed, "cert", "list")
	if len(listed) != 1 || listed[0]["id"] != id {
		t.Errorf("cert list --json = %v, want the one certificate %s", listed, id)
	}
	var shown map[string]any
	c.okJSON(&shown, "cert", "show", id)
	if shown["id"] != id || shown["fingerprint"] == "" {
		t.Errorf("cert show --json = %v", shown)
	}

	c.ok("cert", "delete", id)
	if res := c.ok("cert", "list"); strings.Contains(res.stdout, id) {
		t.Errorf("cert list still shows the deleted %s:\n%s", id, res.stdout)
	}

	c.ok("logout")
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after logout: %v", err)
	}
	res = c.run("whoami")
	if res.code != exitRefused || !strings.HasPrefix(res.stderr, "error: not logged in to "+e.URL) {
		t.Errorf("whoami after logout: %s", res)
	}
}

// TestCLIAdmin has the admin create a user who logs in from a second
// configuration, then deletes the identity: the user's session ends with it.
func TestCLIAdmin(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := newCLI(t, e)
	admin.ok("login", "-u", "admin", "--password-file", passwordFile(t, servertest.AdminPassword))

	var created struct{ ID string }
	admin.okJSON(&created, "identity", "create", "bob")
	if created.ID == "" {
		t.Fatal("identity create --json printed no id")
	}
	admin.ok("authenticator", "create", "--identity", created.ID, "--username", "bob",
		"--password-file", passwordFile(t, "bob-password"))
	if res := admin.ok("identity", "list"); !regexp.MustCompile(
		`(?m)^` + created.ID + `\s+bob\s+User\s+no\s+-\s*$`).MatchString(res.stdout) {
		t.Errorf("identity list:\n%s", res.stdout)
	}

	bob := newCLI(t, e).with("SESSIONCERT_PASSWORD=bob-password")
	bob.ok("login", "--username", "bob")
	if res := bob.ok("whoami"); !strings.Contains(res.stdout, created.ID) {
		t.Errorf("bob's whoami:\n%s", res.stdout)
	}

	admin.ok("identity", "delete", created.ID)
	res := bob.run("whoami")
	want := "error: UNAUTHORIZED: the session token is invalid (run sessioncert login)\n"
	if res.code != exitRefused || res.stderr != want || res.stdout != "" {
		t.Errorf("bob's whoami after his identity was deleted: %s\nwant exit %d and %q",
			res, exitRefused, want)
	}
}

// TestCLIErrors checks the one-line error and the exit status of failures
// of each kind.
func TestCLIErrors(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := newCLI(t, e)
	loggedIn := newCLI(t, e)
	adminPassword := passwordFile(t, servertest.AdminPassword)
	loggedIn.ok("login", "-u", "admin", "--password-file", adminPassword)
	wrong := passwordFile(t, "wrong-password")

	tests := []struct {
		name     string
		cli      *cli
		args     []string
		wantCode int
		want     string // the start of stderr
	}{
		{"wrong password", c, []string{"login", "-u", "admin", "--password-file", wrong},
			exitRefused, "error: INVALID_AUTH: "},
		{"unknown user", c, []string{"login", "-u", "nobody", "--password-file", wrong},
			exitRefused, "error: INVALID_AUTH: "},
		{"not logged in", c, []string{"cert", "list"},
			exitRefused, "error: not logged in to " + e.URL + " (run sessioncert login)"},
		{"unknown certificate", loggedIn, []string{"cert", "show", "no-such-id"},
			exitRefused, "error: NOT_FOUND: "},
		{"unknown command", c, []string{"certs"}, exitUsage, "error: Unknown command `certs'"},
		{"missing id", loggedIn, []string{"identity", "show"}, exitUsage,
			"error: the required argument `id` was not provided " +
				"(see sessioncert identity show --help)"},
		{"extra argument", loggedIn, []string{"whoami", "extra"}, exitUsage,
			`error: unexpected argument "extra"`},
		{"no password and no terminal", c, []string{"login", "-u", "admin"}, exitUsage,
			"error: no password: use --password, --password-file, $SESSIONCERT_PASSWORD or a " +
				"terminal"},
		{"password and password file", c, []string{"login", "-u", "admin", "-p", "x",
			"--password-file", wrong}, exitUsage,
			"error: give --password or --password-file, not both"},
		{"cert login without a certificate", c, []string{"login", "--method", "cert"}, exitUsage,
			"error: --method cert needs --cert and --key"},
		{"bad key type", loggedIn, []string{"cert", "create", "--key-type", "dsa"}, exitUsage,
			`error: --key-type "dsa" is not one of p256, p384, ed25519, rsa2048, rsa4096`},
		{"bad login method", c, []string{"login", "--method", "otp"}, exitUsage,
			"error: Invalid value `otp' for option `--method'"},
		{"limit out of range", loggedIn, []string{"identity", "list", "--limit", "501"}, exitUsage,
			"error: --limit 501 is not between 1 and 500"},
		{"plain http", c.with("SESSIONCERT_CONTROLLER=http://" + e.Host), []string{"version"},
			exitUsage, "error: --controller \"http://" + e.Host + "\" must use https"},
		{"untrusted controller", c.with("SESSIONCERT_CA="), []string{"version"}, exitFailed,
			"error: the controller's TLS certificate is not signed by a trusted CA (pass its CA " +
				"bundle with --ca or SESSIONCERT_CA)"},
		{"unreachable controller", c.with("SESSIONCERT_CONTROLLER=https://127.0.0.1:1"),
			[]string{"version"}, exitFailed, "error: cannot reach the controller: "},
		{"saved session of another controller",
			loggedIn.with("SESSIONCERT_CONTROLLER=https://localhost:1"), []string{"whoami"},
			exitRefused,
			"error: not logged in to https://localhost:1: the saved session is for " + e.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.cli.run(tt.args...)
			if res.code != tt.wantCode || !strings.HasPrefix(res.stderr, tt.want) {
				t.Errorf("got %s\nwant exit %d and stderr starting %q", res, tt.wantCode, tt.want)
			}
			if strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", res.stderr)
			}
		})
	}
}

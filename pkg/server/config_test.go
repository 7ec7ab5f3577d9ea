package server_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/sessioncert/sessioncert/pkg/server"
)

// parse runs the server's command line over args with a config file, as
// cmd/sessioncert-server does.
func parse(t *testing.T, file string, args ...string) (server.Config, error) {
	t.Helper()
	var c server.Config
	p, err := server.NewParser(&c, flags.None)
	if err != nil {
		t.Fatal(err)
	}
	var more struct {
		Config string `long:"config"`
	}
	if _, err := p.AddGroup("Other", "", &more); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		if err := server.ApplyConfigFile(p, file); err != nil {
			return c, err
		}
	}
	_, err = p.ParseArgs(args)
	return c, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: flag > environment > file > default, for YAML and
// INI files alike.
func TestConfigPrecedence(t *testing.T) {
	files := map[string]string{
		"yaml": writeFile(t, "c.yaml", "session-timeout: 45m\ncert-lifetime: 2h\nlog-level: debug\nport: 1999\n"),
		"ini": writeFile(t, "c.ini", "[server]\nsession-timeout = 45m\ncert-lifetime = 2h\n"+
			"log-level = debug\nport = 1999\n"),
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			t.Setenv("SESSIONCERT_CERT_LIFETIME", "3h")
			t.Setenv("SESSIONCERT_LOG_LEVEL", "warn")
			c, err := parse(t, file, "--log-level", "error")
			if err != nil {
				t.Fatal(err)
			}
			for _, check := range []struct {
				what      string
				got, want any
			}{
				{"session-timeout from the file", c.SessionTimeout, 45 * time.Minute},
				{"cert-lifetime from the environment over the file", c.Certs.Lifetime, 3 * time.Hour},
				{"log-level from the flag over environment and file", c.Log.Level, "error"},
				{"port from the file", c.Listen.Port, 1999},
				{"max-certs-per-session default", c.Certs.MaxCertsPerSession, 64},
			} {
				if check.got != check.want {
					t.Errorf("%s: %v, want %v", check.what, check.got, check.want)
				}
			}
		})
	}
}

// TestConfigFileUnknownKey refuses a file with a key that names no flag,
// and says which key.
func TestConfigFileUnknownKey(t *testing.T) {
	for name, content := range map[string]string{
		"c.yaml": "session-timeout: 45m\nsesion-timeout: 1h\n",
		"c.ini":  "session-timeout = 45m\nsesion-timeout = 1h\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, writeFile(t, name, content))
			if err == nil || !strings.Contains(err.Error(), `"sesion-timeout"`) {
				t.Errorf("err = %v, want an error naming sesion-timeout", err)
			}
		})
	}
	if _, err := parse(t, writeFile(t, "bad.yaml", "log:\n  level: debug\n")); err == nil {
		t.Error("a nested YAML mapping was accepted")
	}
}

// TestConfigFileSeveralValues gives several etcd endpoints in a file, as a
// YAML list or a repeated INI key, and keeps the precedence flag >
// environment > file for them; an option of one value refuses a list.
func TestConfigFileSeveralValues(t *testing.T) {
	yamlFile := writeFile(t, "c.yaml", "etcd-endpoints:\n  - https://e1:2379\n  - https://e2:2379\n")
	iniFile := writeFile(t, "c.ini", "etcd-endpoints = https://e1:2379\netcd-endpoints = https://e2:2379\n")
	fromFile := []string{"https://e1:2379", "https://e2:2379"}
	for _, tc := range []struct {
		name string
		file string
		env  string
		args []string
		want []string
	}{
		{"yaml list", yamlFile, "", nil, fromFile},
		{"repeated ini key", iniFile, "", nil, fromFile},
		{"environment over yaml", yamlFile, "https://v1:2379,https://v2:2379", nil,
			[]string{"https://v1:2379", "https://v2:2379"}},
		{"environment over ini", iniFile, "https://v1:2379", nil, []string{"https://v1:2379"}},
		{"flag over environment and file", yamlFile, "https://v1:2379",
			[]string{"--etcd-endpoints", "https://f1:2379"}, []string{"https://f1:2379"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SESSIONCERT_ETCD_ENDPOINTS", tc.env)
			}
			c, err := parse(t, tc.file, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.Store.EtcdEndpoints, " ") != strings.Join(tc.want, " ") {
				t.Errorf("etcd endpoints %q, want %q", c.Store.EtcdEndpoints, tc.want)
			}
		})
	}

	for name, content := range map[string]string{
		"list.yaml":     "session-timeout:\n  - 45m\n  - 1h\n",
		"repeated.ini":  "session-timeout = 45m\nsession-timeout = 1h\n",
		"nested.yaml":   "etcd-endpoints:\n  - [https://e1:2379]\n",
		"mapping.yaml":  "etcd-endpoints:\n  a: https://e1:2379\n",
		"listnull.yaml": "etcd-endpoints:\n  -\n",
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := parse(t, writeFile(t, name, content)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestHelpDescribesEveryFlag writes --help and finds, for every setting,
// its help text, its group's heading and its environment variable.
func TestHelpDescribesEveryFlag(t *testing.T) {
	var c server.Config
	p, err := server.NewParser(&c, flags.None)
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	p.WriteHelp(&help)
	// go-flags wraps help text; compare with the line breaks taken out.
	flat := strings.Join(strings.Fields(help.String()), " ")
	groups := map[string]bool{}
	var walk func(g *flags.Group)
	walk = func(g *flags.Group) {
		for _, o := range g.Options() {
			t.Run(o.LongNameWithNamespace(), func(t *testing.T) {
				if o.Description == "" {
					t.Error("no help text")
				}
				if !strings.Contains(flat, strings.Join(strings.Fields(o.Description), " ")) {
					t.Error("help text missing from --help")
				}
				env := o.EnvKeyWithNamespace()
				if !strings.HasPrefix(env, server.EnvPrefix) || !strings.Contains(flat, "[$"+env+"]") {
					t.Errorf("environment variable %q missing from --help", env)
				}
			})
		}
		for _, sub := range g.Groups() {
			groups[sub.ShortDescription] = true
			walk(sub)
		}
	}
	walk(p.Group)
	for _, g := range []string{"Logging", "Listener", "Certificates", "Store", "Logins", "Operations"} {
		if !groups[g] || !strings.Contains(help.String(), "\n"+g+":\n") {
			t.Errorf("group %s is not a heading of --help", g)
		}
	}
}

package ca

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// devFiles returns every path of p with its wanted mode.
func devFiles(p *DevPKI) map[string]fs.FileMode {
	return map[string]fs.FileMode{
		p.RootCert:   0o644,
		p.CACert:     0o644,
		p.CAKey:      0o600,
		p.ServerCert: 0o644,
		p.ServerKey:  0o600,
		p.Bundle:     0o644,
	}
}

// snapshot maps the name of every file in dir to the fingerprint of its
// content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = Fingerprint(data)
	}
	return out
}

func mustEnsure(t *testing.T, dir string, now time.Time) *DevPKI {
	t.Helper()
	p, err := EnsureDevPKI(dir, now, nil)
	if err != nil {
		t.Fatalf("EnsureDevPKI: %v", err)
	}
	return p
}

func TestEnsureDevPKIFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := mustEnsure(t, dir, testNow)
	if !p.CreatedCA || !p.IssuedServer {
		t.Errorf("first start: CreatedCA %v, IssuedServer %v; want both", p.CreatedCA,
			p.IssuedServer)
	}

	// Files and modes, and nothing else left behind.
	for path, mode := range devFiles(p) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if got := st.Mode().Perm(); got != mode {
			t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, mode)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(devFiles(p)) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want the six files only", names)
	}

	// The CA files load into a CA whose bundle is the root.
	chain, key, err := LoadFiles(p.CACert, p.CAKey)
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	ca, err := New(Config{Chain: chain, Signer: key, TrustDomain: testTD,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	root := readCerts(t, p.RootCert)
	if len(root) != 1 || !isSelfSigned(root[0]) || !chain[1].Equal(root[0]) {
		t.Fatalf("ca-root.pem is not the self-signed root of the chain")
	}
	if bundle := readCerts(t, p.Bundle); len(bundle) != 1 || !bundle[0].Equal(root[0]) {
		t.Errorf("ca-bundle.pem is not the root")
	}
	wantWindow := map[*x509.Certificate][2]time.Time{
		root[0]:  {testNow.Add(-time.Hour), testNow.AddDate(10, 0, 0)},
		chain[0]: {testNow.Add(-time.Hour), testNow.AddDate(5, 0, 0)},
	}
	for c, w := range wantWindow {
		if !c.NotBefore.Equal(w[0]) || !c.NotAfter.Equal(w[1]) || !c.IsCA {
			t.Errorf("%s: valid %v to %v, ca %v; want %v to %v, ca", c.Subject, c.NotBefore,
				c.NotAfter, c.IsCA, w[0], w[1])
		}
	}
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	if _, err := ca.Sign(testRequest(csr)); err != nil {
		t.Errorf("Sign with the dev CA: %v", err)
	}

	// The server certificate: names, usage, chain to the root, key.
	server := readCerts(t, p.ServerCert)
	if len(server) != 2 || !server[1].Equal(chain[0]) {
		t.Fatalf("server.pem holds %d certificates, want leaf then intermediate", len(server))
	}
	leaf := server[0]
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 2 ||
		!leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) ||
		!leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("server names = %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !leaf.NotAfter.Equal(testNow.AddDate(1, 0, 0)) || leaf.IsCA {
		t.Errorf("server valid until %v, ca %v", leaf.NotAfter, leaf.IsCA)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:       host,
			Roots:         ca.Roots(),
			Intermediates: ca.Intermediates(),
			CurrentTime:   testNow,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	_, serverKey, err := LoadFiles(p.ServerCert, p.ServerKey)
	if err != nil || !publicKeysEqual(serverKey.Public(), leaf.PublicKey) {
		t.Errorf("server.key does not load or does not match: %v", err)
	}
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parsePEMCerts(t, string(data))
}

func TestEnsureDevPKILaterStarts(t *testing.T) {
	serverNotAfter := testNow.AddDate(1, 0, 0)
	tests := []struct {
		name        string
		prepare     func(t *testing.T, p *DevPKI)
		now         time.Time
		wantServer  bool     // server certificate issued again
		wantChanged []string // files that change
	}{
		{
			name: "nothing to do",
			now:  testNow.Add(time.Hour),
		},
		{
			name:        "server expires in 31 days: kept",
			now:         serverNotAfter.Add(-31 * 24 * time.Hour),
			wantChanged: nil,
		},
		{
			name:        "server expires in 29 days: renewed",
			now:         serverNotAfter.Add(-29 * 24 * time.Hour),
			wantServer:  true,
			wantChanged: []string{"server.key", "server.pem"},
		},
		{
			name:        "server expired",
			now:         serverNotAfter.Add(time.Hour),
			wantServer:  true,
			wantChanged: []string{"server.key", "server.pem"},
		},
		{
			name:        "server key missing",
			prepare:     func(t *testing.T, p *DevPKI) { remove(t, p.ServerKey) },
			now:         testNow,
			wantServer:  true,
			wantChanged: []string{"server.key", "server.pem"},
		},
		{
			name: "server key of another certificate",
			prepare: func(t *testing.T, p *DevPKI) {
				writeFile(t, p.ServerKey, keyBlock(t, testKey(t, "P-256", "other"), "PKCS8"))
			},
			now:         testNow,
			wantServer:  true,
			wantChanged: []string{"server.key", "server.pem"},
		},
		{
			name: "server certificate garbled",
			prepare: func(t *testing.T, p *DevPKI) {
				writeFile(t, p.ServerCert, []byte("junk"))
			},
			now:         testNow,
			wantServer:  true,
			wantChanged: []string{"server.key", "server.pem"},
		},
		{
			name:    "bundle and root copies missing",
			prepare: func(t *testing.T, p *DevPKI) { remove(t, p.Bundle); remove(t, p.RootCert) },
			now:     testNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first := mustEnsure(t, dir, testNow)
			before := snapshot(t, dir)
			if tt.prepare != nil {
				tt.prepare(t, first)
			}

			p := mustEnsure(t, dir, tt.now)
			if p.CreatedCA || p.IssuedServer != tt.wantServer {
				t.Errorf("CreatedCA %v, IssuedServer %v; want false, %v", p.CreatedCA,
					p.IssuedServer, tt.wantServer)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) {
				t.Errorf("directory holds %d files, want %d", len(after), len(before))
			}
			var changed []string
			for name, fp := range before {
				if after[name] != fp {
					changed = append(changed, name)
				}
			}
			slices.Sort(changed)
			if !slices.Equal(changed, tt.wantChanged) {
				t.Errorf("changed files = %v, want %v", changed, tt.wantChanged)
			}
			if tt.wantServer {
				leaf := readCerts(t, p.ServerCert)[0]
				if !leaf.NotAfter.Equal(tt.now.AddDate(1, 0, 0)) {
					t.Errorf("renewed server valid until %v", leaf.NotAfter)
				}
			}
		})
	}
}

func TestEnsureDevPKIRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, p *DevPKI)
		now     time.Time
		want    error
	}{
		{
			name:    "ca missing, server present",
			prepare: func(t *testing.T, p *DevPKI) { remove(t, p.CACert) },
			now:     testNow,
			want:    ErrDevPKIIncomplete,
		},
		{
			name:    "ca key missing",
			prepare: func(t *testing.T, p *DevPKI) { remove(t, p.CAKey) },
			now:     testNow,
			want:    ErrDevPKIIncomplete,
		},
		{
			name: "ca file without the root",
			prepare: func(t *testing.T, p *DevPKI) {
				certs := readCerts(t, p.CACert)
				writeFile(t, p.CACert, []byte(pemOf(certs[0])))
			},
			now:  testNow,
			want: ErrDevPKIIncomplete,
		},
		{
			name: "ca key replaced",
			prepare: func(t *testing.T, p *DevPKI) {
				writeFile(t, p.CAKey, keyBlock(t, testKey(t, "P-256", "other"), "PKCS8"))
			},
			now:  testNow,
			want: ErrKeyMismatch,
		},
		{
			name: "intermediate expired",
			now:  testNow.AddDate(5, 0, 1),
			want: ErrCAExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first := mustEnsure(t, dir, testNow)
			if tt.prepare != nil {
				tt.prepare(t, first)
			}
			before := snapshot(t, dir)

			p, err := EnsureDevPKI(dir, tt.now, nil)
			if !errors.Is(err, tt.want) || p != nil {
				t.Fatalf("EnsureDevPKI error = %v, want %v", err, tt.want)
			}
			if !maps.Equal(snapshot(t, dir), before) {
				t.Errorf("a refused start changed the directory")
			}
		})
	}
}

func TestEnsureDevPKIInterruptedFirstStart(t *testing.T) {
	// A first start cut after the key and the root were written, before the
	// intermediate certificate: the next start begins again.
	dir := t.TempDir()
	first := mustEnsure(t, dir, testNow)
	for _, path := range []string{first.CACert, first.ServerCert, first.ServerKey} {
		remove(t, path)
	}
	stale := snapshot(t, dir)

	p := mustEnsure(t, dir, testNow)
	if !p.CreatedCA || !p.IssuedServer {
		t.Errorf("CreatedCA %v, IssuedServer %v; want both", p.CreatedCA, p.IssuedServer)
	}
	fresh := snapshot(t, dir)
	for _, name := range []string{devCAKey, devRootCert, devBundle} {
		if fresh[name] == stale[name] {
			t.Errorf("stale %s was kept", name)
		}
	}
	if len(fresh) != 6 {
		t.Errorf("directory holds %d files, want 6", len(fresh))
	}
}

func TestEnsureDevPKIArguments(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		now  time.Time
	}{
		{"no directory", "", testNow},
		{"zero time", t.TempDir(), time.Time{}},
		{"directory is a file", filepath.Join(writeTemp(t), "sub"), testNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := EnsureDevPKI(tt.dir, tt.now, nil)
			if err == nil || p != nil || !strings.HasPrefix(err.Error(), "ca: ") {
				t.Errorf("EnsureDevPKI = %v, %v; want a ca error", p, err)
			}
		})
	}
}

func writeTemp(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	writeFile(t, path, []byte("x"))
	return path
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

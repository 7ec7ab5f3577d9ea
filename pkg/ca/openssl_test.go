package ca

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// requireOpenSSL skips the test when the openssl command is missing: these
// tests check interoperability with it and have nothing to run without it.
func requireOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not on PATH: skipping the tests against openssl-made CSRs " +
			"and openssl verify")
	}
}

// openssl runs the openssl command in dir and returns its combined output.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// opensslCSR makes a key and a CSR with openssl req and returns the CSR's PEM.
func opensslCSR(t *testing.T, dir string, newkey []string, extra ...string) []byte {
	t.Helper()
	args := append([]string{"req", "-new", "-nodes", "-keyout", "client.key",
		"-out", "client.csr"}, newkey...)
	args = append(args, extra...)
	openssl(t, dir, args...)
	data, err := os.ReadFile(filepath.Join(dir, "client.csr"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// opensslVerify checks with openssl verify, at testNow, that the leaf of
// issued chains to the CA's bundle as a TLS client certificate.
func opensslVerify(t *testing.T, dir string, ca *CA, issued *Issued) {
	t.Helper()
	leafPEM := strings.TrimSuffix(issued.ChainPEM, ca.ChainPEM())
	files := map[string]string{
		"leaf.pem":   leafPEM,
		"chain.pem":  ca.ChainPEM(),
		"bundle.pem": ca.BundlePEM(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := openssl(t, dir, "verify",
		"-attime", strconv.FormatInt(testNow.Unix(), 10),
		"-purpose", "sslclient",
		"-CAfile", "bundle.pem",
		"-untrusted", "chain.pem",
		"leaf.pem")
	if strings.TrimSpace(out) != "leaf.pem: OK" {
		t.Errorf("openssl verify: %s", out)
	}
}

var opensslKeys = []struct {
	name   string
	newkey []string
}{
	{"P-256", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}},
	{"P-384", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"}},
	{"RSA-2048", []string{"-newkey", "rsa:2048"}},
	{"Ed25519", []string{"-newkey", "ed25519"}},
}

func TestOpenSSLCSRsIssueAndVerify(t *testing.T) {
	requireOpenSSL(t)
	ca, _ := newTestCA(t, nil)
	for _, k := range opensslKeys {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			csr := mustParseCSR(t, opensslCSR(t, dir, k.newkey, "-subj", "/CN=ignored"))
			if got := KeyType(csr.PublicKey); got != k.name {
				t.Fatalf("KeyType = %s, want %s", got, k.name)
			}

			issued, err := ca.Sign(testRequest(csr))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			checkLeaf(t, ca, issued, csr.PublicKey)
			opensslVerify(t, dir, ca, issued)
		})
	}
}

func TestOpenSSLCSRExtrasIgnored(t *testing.T) {
	requireOpenSSL(t)
	ca, _ := newTestCA(t, nil)
	dir := t.TempDir()
	data := opensslCSR(t, dir, opensslKeys[0].newkey,
		"-subj", "/CN=admin/O=Evil Org/OU=Unit/C=US/emailAddress=evil@example.com",
		"-addext", "subjectAltName=DNS:evil.example.com,IP:10.0.0.1,email:evil@example.com,"+
			"URI:spiffe://example.org/identity/admin",
		"-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,digitalSignature",
		"-addext", "extendedKeyUsage=serverAuth,codeSigning",
		"-addext", "1.3.6.1.4.1.55555.1=ASN1:UTF8String:custom")
	csr := mustParseCSR(t, data)

	// The CSR does ask for all of it; otherwise this test would prove nothing.
	if len(csr.DNSNames) != 1 || len(csr.IPAddresses) != 1 || len(csr.EmailAddresses) != 1 ||
		len(csr.URIs) != 1 || len(csr.Subject.Organization) != 1 || len(csr.Extensions) != 5 {
		t.Fatalf("openssl csr lacks the requested extras: %d extensions", len(csr.Extensions))
	}

	issued, err := ca.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	checkLeaf(t, ca, issued, csr.PublicKey)
	opensslVerify(t, dir, ca, issued)
}

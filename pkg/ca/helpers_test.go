package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// testNow is the clock of every test that does not move it. Whole seconds,
// so that certificate times compare exactly.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testTD = spiffeid.RequireTrustDomainFromString("example.org")

// fakeClock is a clock tests can move while a CA holds it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// countingReader yields 1, 2, 3, ... (mod 256), so serial numbers drawn
// from it are known in advance.
type countingReader struct {
	mu sync.Mutex
	n  byte
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

// zeroReader yields only zeros, as a broken random source would.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

// testKey returns a key of the given kind ("P-224", "P-256", "P-384",
// "P-521", "RSA-<bits>", "Ed25519"), generated once per test binary under a
// name, since RSA generation is slow. Distinct names give distinct keys.
func testKey(tb testing.TB, kind, name string) crypto.Signer {
	tb.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[kind+"/"+name]; ok {
		return k
	}

	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "P-224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "P-521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "RSA-1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: a key to refuse
	case "RSA-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("testKey: unknown kind %q", kind)
	}
	if err != nil {
		tb.Fatalf("generate %s key: %v", kind, err)
	}
	keyCache[kind+"/"+name] = k
	return k
}

var serialCounter struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serialCounter.Lock()
	defer serialCounter.Unlock()
	serialCounter.n++
	return big.NewInt(serialCounter.n)
}

// mustCert signs tmpl with parentKey under parent (self-signed when parent
// is nil) and returns the parsed certificate.
func mustCert(
	tb testing.TB,
	tmpl, parent *x509.Certificate,
	pub crypto.PublicKey,
	parentKey crypto.Signer,
) *x509.Certificate {
	tb.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = nextSerial()
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		tb.Fatalf("create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parse certificate: %v", err)
	}
	return c
}

// caTemplate returns a CA certificate template valid from notBefore to
// notAfter.
func caTemplate(cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// testPKI is a root and an intermediate; the intermediate signs.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
}

// chain returns the chain as Config.Chain wants it.
func (p *testPKI) chain() []*x509.Certificate { return []*x509.Certificate{p.inter, p.root} }

// newTestPKI builds a P-256 root valid around now for ten years and an
// intermediate of the given key kind valid for five.
func newTestPKI(tb testing.TB, now time.Time, interKind string) *testPKI {
	tb.Helper()
	return newTestPKIWindow(tb, interKind, now.Add(-time.Hour), now.AddDate(5, 0, 0))
}

// newTestPKIWindow is newTestPKI with the intermediate's validity given.
func newTestPKIWindow(tb testing.TB, interKind string, notBefore, notAfter time.Time) *testPKI {
	tb.Helper()
	return newNamedPKI(tb, "test", interKind, notBefore, notAfter)
}

// newNamedPKI builds a PKI whose keys are shared only with PKIs of the same
// name, so that PKIs of different names do not trust each other.
func newNamedPKI(
	tb testing.TB,
	name, interKind string,
	notBefore, notAfter time.Time,
) *testPKI {
	tb.Helper()
	rootKey := testKey(tb, "P-256", name+" root")
	root := mustCert(tb, caTemplate(name+" root", notBefore.AddDate(-1, 0, 0),
		notAfter.AddDate(5, 0, 0)), nil, rootKey.Public(), rootKey)
	interKey := testKey(tb, interKind, name+" intermediate")
	inter := mustCert(tb, caTemplate(name+" intermediate", notBefore, notAfter), root,
		interKey.Public(), rootKey)
	return &testPKI{root: root, inter: inter, rootKey: rootKey, interKey: interKey}
}

// newTestCA returns a CA over a fresh testPKI at testNow; edit may change the
// config before New.
func newTestCA(tb testing.TB, edit func(*Config)) (*CA, *testPKI) {
	tb.Helper()
	pki := newTestPKI(tb, testNow, "P-256")
	cfg := Config{
		Chain:       pki.chain(),
		Signer:      pki.interKey,
		TrustDomain: testTD,
		Now:         func() time.Time { return testNow },
	}
	if edit != nil {
		edit(&cfg)
	}
	ca, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return ca, pki
}

// makeCSR returns the PEM of a CSR for key; tmpl may be nil.
func makeCSR(tb testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	tb.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "client"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		tb.Fatalf("create csr: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// mustParseCSR parses a CSR that the test expects to be accepted.
func mustParseCSR(tb testing.TB, pemBytes []byte) *x509.CertificateRequest {
	tb.Helper()
	csr, err := ParseCSR(pemBytes)
	if err != nil {
		tb.Fatalf("ParseCSR: %v", err)
	}
	return csr
}

// parsePEMCerts parses every certificate of a PEM string.
func parsePEMCerts(tb testing.TB, s string) []*x509.Certificate {
	tb.Helper()
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			tb.Fatalf("parse certificate: %v", err)
		}
		out = append(out, c)
	}
	return out
}

// pemOf is the PEM of the given certificates, in order.
func pemOf(certs ...*x509.Certificate) string {
	var s string
	for _, c := range certs {
		s += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return s
}

func testRequest(csr *x509.CertificateRequest) SignRequest {
	return SignRequest{
		CSR:           csr,
		IdentityID:    "id-1",
		APISessionID:  "sess-1",
		CertificateID: "cert-1",
	}
}

// testSPIFFEID is the id of testRequest in testTD.
const testSPIFFEID = "spiffe://example.org" +
	"/identity/id-1/apiSession/sess-1/apiSessionCertificate/cert-1"

package ca

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestNewErrors(t *testing.T) {
	pki := newTestPKI(t, testNow, "P-256")
	otherKey := testKey(t, "P-256", "other")

	// A leaf, and CAs that are wrong in one way each, all under pki.root.
	leafKey := testKey(t, "P-256", "leaf")
	leaf := mustCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "leaf"},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}, pki.root, leafKey.Public(), pki.rootKey)
	noCertSignTmpl := caTemplate("no cert sign", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0))
	noCertSignTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	noCertSign := mustCert(t, noCertSignTmpl, pki.root, leafKey.Public(), pki.rootKey)
	serverOnlyTmpl := caTemplate("server only", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0))
	serverOnlyTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverOnly := mustCert(t, serverOnlyTmpl, pki.root, leafKey.Public(), pki.rootKey)
	otherRoot := mustCert(t, caTemplate("other root", testNow.Add(-time.Hour),
		testNow.AddDate(1, 0, 0)), nil, otherKey.Public(), otherKey)
	weakKey := testKey(t, "RSA-1024", "ca")
	weakCA := mustCert(t, caTemplate("weak", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0)),
		pki.root, weakKey.Public(), pki.rootKey)

	valid := func(edit func(*Config)) Config {
		cfg := Config{
			Chain:       pki.chain(),
			Signer:      pki.interKey,
			TrustDomain: testTD,
			Now:         func() time.Time { return testNow },
		}
		edit(&cfg)
		return cfg
	}
	at := func(now time.Time) func(*Config) {
		return func(c *Config) { c.Now = func() time.Time { return now } }
	}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no chain", valid(func(c *Config) { c.Chain = nil }), ErrNoCertificate},
		{"nil certificate", valid(func(c *Config) {
			c.Chain = []*x509.Certificate{pki.inter, nil}
		}), ErrInvalidConfig},
		{"no signer", valid(func(c *Config) { c.Signer = nil }), ErrNoSigner},
		{"no trust domain", valid(func(c *Config) { c.TrustDomain = spiffeid.TrustDomain{} }),
			ErrNoTrustDomain},
		{"negative lifetime", valid(func(c *Config) { c.Lifetime = -time.Hour }), ErrInvalidConfig},
		{"negative backdate", valid(func(c *Config) { c.Backdate = -time.Second }),
			ErrInvalidConfig},
		{"key mismatch", valid(func(c *Config) { c.Signer = otherKey }), ErrKeyMismatch},
		{"root key for intermediate", valid(func(c *Config) { c.Signer = pki.rootKey }),
			ErrKeyMismatch},
		{"not a ca", valid(func(c *Config) {
			c.Chain, c.Signer = []*x509.Certificate{leaf, pki.root}, leafKey
		}), ErrNotCA},
		{"no cert sign usage", valid(func(c *Config) {
			c.Chain, c.Signer = []*x509.Certificate{noCertSign, pki.root}, leafKey
		}), ErrNotCA},
		{"weak ca key", valid(func(c *Config) {
			c.Chain, c.Signer = []*x509.Certificate{weakCA, pki.root}, weakKey
		}), ErrUnsupportedKey},
		{"expired", valid(at(pki.inter.NotAfter.Add(time.Second))), ErrCAExpired},
		{"not yet valid", valid(at(pki.inter.NotBefore.Add(-time.Second))), ErrCANotYetValid},
		{"root first", valid(func(c *Config) {
			c.Chain, c.Signer = []*x509.Certificate{pki.root, pki.inter}, pki.rootKey
		}), ErrBadChain},
		{"foreign root", valid(func(c *Config) {
			c.Chain = []*x509.Certificate{pki.inter, otherRoot}
		}), ErrBadChain},
		{"server auth only", valid(func(c *Config) {
			c.Chain, c.Signer = []*x509.Certificate{serverOnly, pki.root}, leafKey
		}), ErrBadChain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := New(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New error = %v, want %v", err, tt.want)
			}
			if ca != nil {
				t.Errorf("New returned a CA with an error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "ca: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
		})
	}
}

func TestChainAndBundle(t *testing.T) {
	pki := newTestPKI(t, testNow, "P-256")

	// A three-level chain: issuing CA under pki.inter under pki.root.
	issuingKey := testKey(t, "P-384", "issuing")
	issuing := mustCert(t, caTemplate("issuing", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0)),
		pki.inter, issuingKey.Public(), pki.interKey)

	tests := []struct {
		name       string
		chain      []*x509.Certificate
		signer     crypto.Signer
		wantChain  string
		wantBundle string
		wantRoot   *x509.Certificate
		// wantNotAfter is the earliest end in the chain.
		wantNotAfter time.Time
	}{
		{
			name:         "intermediate and root",
			chain:        []*x509.Certificate{pki.inter, pki.root},
			signer:       pki.interKey,
			wantChain:    pemOf(pki.inter),
			wantBundle:   pemOf(pki.inter, pki.root),
			wantRoot:     pki.root,
			wantNotAfter: pki.inter.NotAfter,
		},
		{
			name:         "intermediate alone is its own anchor",
			chain:        []*x509.Certificate{pki.inter},
			signer:       pki.interKey,
			wantChain:    pemOf(pki.inter),
			wantBundle:   pemOf(pki.inter),
			wantRoot:     pki.inter,
			wantNotAfter: pki.inter.NotAfter,
		},
		{
			name:         "self-signed root signs",
			chain:        []*x509.Certificate{pki.root},
			signer:       pki.rootKey,
			wantChain:    "",
			wantBundle:   pemOf(pki.root),
			wantRoot:     pki.root,
			wantNotAfter: pki.root.NotAfter,
		},
		{
			name:         "three levels",
			chain:        []*x509.Certificate{issuing, pki.inter, pki.root},
			signer:       issuingKey,
			wantChain:    pemOf(issuing, pki.inter),
			wantBundle:   pemOf(issuing, pki.inter, pki.root),
			wantRoot:     pki.root,
			wantNotAfter: issuing.NotAfter,
		},
	}
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				Chain:       tt.chain,
				Signer:      tt.signer,
				TrustDomain: testTD,
				Now:         func() time.Time { return testNow },
			}
			ca, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			again, err := New(cfg)
			if err != nil {
				t.Fatalf("New again: %v", err)
			}

			if got := ca.ChainPEM(); got != tt.wantChain {
				t.Errorf("ChainPEM has %d certificates, want %d", len(parsePEMCerts(t, got)),
					len(parsePEMCerts(t, tt.wantChain)))
			}
			if got := ca.BundlePEM(); got != tt.wantBundle || got != again.BundlePEM() {
				t.Errorf("BundlePEM is not the configured chain in order, or not stable")
			}
			if ca.Certificate() != tt.chain[0] || !ca.NotAfter().Equal(tt.wantNotAfter) {
				t.Errorf("Certificate or NotAfter is not the signing certificate's")
			}
			want := x509.NewCertPool()
			want.AddCert(tt.wantRoot)
			if !ca.Roots().Equal(want) {
				t.Errorf("Roots is not the anchor alone")
			}

			// Every variant issues a certificate that verifies on its own
			// chain, with and without the intermediates sent along.
			got, err := ca.Sign(testRequest(csr))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if _, err := ca.VerifyClient([]*x509.Certificate{got.Leaf}); err != nil {
				t.Errorf("VerifyClient(leaf): %v", err)
			}
		})
	}
}

func TestPoolsAreCopies(t *testing.T) {
	ca, pki := newTestCA(t, nil)
	other := newNamedPKI(t, "other", "P-384", testNow.Add(-time.Hour), testNow.AddDate(1, 0, 0))

	roots := ca.Roots()
	roots.AddCert(other.inter)
	inters := ca.Intermediates()
	inters.AddCert(other.inter)

	if ca.Roots().Equal(roots) || ca.Intermediates().Equal(inters) {
		t.Errorf("changing a returned pool changed the CA's")
	}
	want := x509.NewCertPool()
	want.AddCert(pki.inter)
	if !ca.Intermediates().Equal(want) {
		t.Errorf("Intermediates is not the signing certificate alone")
	}
}

func TestVerifyClient(t *testing.T) {
	clock := newFakeClock(testNow)
	ca, pki := newTestCA(t, func(c *Config) { c.Now = clock.Now })
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	issued, err := ca.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}

	// A client certificate from another CA, and a server certificate from
	// ours.
	foreignPKI := newNamedPKI(t, "foreign", "P-256", testNow.Add(-time.Hour),
		testNow.AddDate(1, 0, 0))
	foreign, err := New(Config{Chain: foreignPKI.chain(), Signer: foreignPKI.interKey,
		TrustDomain: testTD, Now: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	foreignIssued, err := foreign.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	serverKey := testKey(t, "P-256", "server")
	server := mustCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "server"},
		NotBefore:   testNow.Add(-time.Hour),
		NotAfter:    testNow.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, pki.inter, serverKey.Public(), pki.interKey)

	long := make([]*x509.Certificate, maxClientChain+1)
	for i := range long {
		long[i] = issued.Leaf
	}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		now   time.Time
		want  error // nil: accepted
	}{
		{"leaf and intermediates", parsePEMCerts(t, issued.ChainPEM), testNow, nil},
		{"leaf alone", []*x509.Certificate{issued.Leaf}, testNow, nil},
		{"leaf with root", []*x509.Certificate{issued.Leaf, pki.inter, pki.root}, testNow, nil},
		{"near the end", []*x509.Certificate{issued.Leaf}, issued.NotAfter, nil},
		{"expired", []*x509.Certificate{issued.Leaf}, issued.NotAfter.Add(time.Second),
			ErrClientCertExpired},
		{"not yet valid", []*x509.Certificate{issued.Leaf}, issued.NotBefore.Add(-time.Second),
			ErrClientCertExpired},
		{"foreign ca", parsePEMCerts(t, foreignIssued.ChainPEM), testNow, ErrUntrustedClient},
		{"foreign and expired", []*x509.Certificate{foreignIssued.Leaf},
			issued.NotAfter.Add(time.Hour), ErrUntrustedClient},
		{"server certificate", []*x509.Certificate{server}, testNow, ErrUntrustedClient},
		{"our intermediate", []*x509.Certificate{pki.inter, pki.root}, testNow,
			ErrUntrustedClient},
		{"empty", nil, testNow, ErrUntrustedClient},
		{"nil leaf", []*x509.Certificate{nil}, testNow, ErrUntrustedClient},
		{"too long", long, testNow, ErrUntrustedClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(tt.now)
			defer clock.Set(testNow)

			leaf, err := ca.VerifyClient(tt.chain)
			if tt.want == nil {
				if err != nil || leaf != tt.chain[0] {
					t.Fatalf("VerifyClient: %v; want the leaf", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || leaf != nil {
				t.Fatalf("VerifyClient error = %v (leaf returned: %v); want %v", err, leaf != nil,
					tt.want)
			}
		})
	}
}

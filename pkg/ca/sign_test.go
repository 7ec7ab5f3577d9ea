package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // G505: the fingerprint the contract defines
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Extension ids a leaf may carry, and no other.
var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCustom           = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}
	oidEmailAddress     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

// greedyCSRTemplate asks for everything a leaf must not get.
func greedyCSRTemplate(t *testing.T) *x509.CertificateRequest {
	t.Helper()
	mustMarshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return b
	}
	// keyCertSign (bit 5) and digitalSignature (bit 0).
	ku := asn1.BitString{Bytes: []byte{0x84}, BitLength: 6}
	ekus := []asn1.ObjectIdentifier{
		{1, 3, 6, 1, 5, 5, 7, 3, 1}, // serverAuth
		{1, 3, 6, 1, 5, 5, 7, 3, 3}, // codeSigning
	}
	return &x509.CertificateRequest{
		Subject: pkix.Name{
			CommonName:         "admin",
			Organization:       []string{"Evil Org"},
			OrganizationalUnit: []string{"Unit"},
			Country:            []string{"US"},
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: oidEmailAddress, Value: "evil@example.com"},
			},
		},
		DNSNames:       []string{"evil.example.com"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		EmailAddresses: []string{"evil@example.com"},
		URIs: []*url.URL{
			{Scheme: "spiffe", Host: "example.org", Path: "/identity/admin"},
		},
		ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Critical: true, Value: mustMarshal(struct {
				IsCA bool `asn1:"optional"`
			}{true})},
			{Id: oidKeyUsage, Critical: true, Value: mustMarshal(ku)},
			{Id: oidExtKeyUsage, Value: mustMarshal(ekus)},
			{Id: oidCustom, Value: mustMarshal("custom")},
		},
	}
}

// checkLeaf asserts every field of an issued certificate that Sign decides.
func checkLeaf(t *testing.T, ca *CA, got *Issued, csrKey crypto.PublicKey) {
	t.Helper()
	leaf := got.Leaf

	if s := leaf.Subject.String(); s != "CN=id-1" || len(leaf.Subject.Names) != 1 {
		t.Errorf("subject = %q with %d attributes, want CN=id-1 alone", s, len(leaf.Subject.Names))
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != testSPIFFEID {
		t.Errorf("uris = %v, want [%s]", leaf.URIs, testSPIFFEID)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("extra sans: dns %v ip %v email %v", leaf.DNSNames, leaf.IPAddresses,
			leaf.EmailAddresses)
	}

	wantKU := x509.KeyUsageDigitalSignature
	if _, ok := csrKey.(*rsa.PublicKey); ok {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if leaf.KeyUsage != wantKU {
		t.Errorf("key usage = %b, want %b", leaf.KeyUsage, wantKU)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) ||
		len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("ext key usage = %v + %v, want client auth only", leaf.ExtKeyUsage,
			leaf.UnknownExtKeyUsage)
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA {
		t.Errorf("basic constraints valid %v, ca %v; want valid, not ca",
			leaf.BasicConstraintsValid, leaf.IsCA)
	}

	allowed := []asn1.ObjectIdentifier{
		oidKeyUsage, oidSubjectAltName, oidBasicConstraints, oidExtKeyUsage, oidAuthorityKeyID,
	}
	var ids []string
	for _, e := range leaf.Extensions {
		ids = append(ids, e.Id.String())
		if !slices.ContainsFunc(allowed, e.Id.Equal) {
			t.Errorf("unexpected extension %v", e.Id)
		}
	}
	if len(leaf.Extensions) != len(allowed) {
		t.Errorf("extensions = %v, want exactly %v", ids, allowed)
	}
	if !slices.Equal(leaf.AuthorityKeyId, ca.Certificate().SubjectKeyId) {
		t.Errorf("authority key id = %x, want %x", leaf.AuthorityKeyId,
			ca.Certificate().SubjectKeyId)
	}

	if !publicKeysEqual(csrKey, leaf.PublicKey) {
		t.Errorf("leaf public key is not the csr's")
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 8*serialBytes {
		t.Errorf("serial %x: want positive, at most %d bits", leaf.SerialNumber, 8*serialBytes)
	}

	sum := sha1.Sum(got.DER) //nolint:gosec // G401: the fingerprint the contract defines
	if got.Fingerprint != hex.EncodeToString(sum[:]) {
		t.Errorf("fingerprint = %s, want sha-1 of der", got.Fingerprint)
	}
	if got.Serial != leaf.SerialNumber.Text(16) || got.SPIFFEID != testSPIFFEID ||
		got.KeyType != KeyType(csrKey) {
		t.Errorf("issued = serial %s, id %s, key type %s", got.Serial, got.SPIFFEID, got.KeyType)
	}
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: got.DER}))
	if got.ChainPEM != leafPEM+ca.ChainPEM() {
		t.Errorf("chain pem is not the leaf followed by the ca chain")
	}
	if _, err := ca.VerifyClient(parsePEMCerts(t, got.ChainPEM)); err != nil {
		t.Errorf("VerifyClient(issued chain): %v", err)
	}
}

func TestSignLeafFields(t *testing.T) {
	kinds := []string{"P-256", "P-384", "P-521", "RSA-2048", "Ed25519"}
	ca, _ := newTestCA(t, nil)
	for _, kind := range kinds {
		for _, greedy := range []bool{false, true} {
			name := kind
			if greedy {
				name += "/greedy"
			}
			t.Run(name, func(t *testing.T) {
				key := testKey(t, kind, "client")
				var tmpl *x509.CertificateRequest
				if greedy {
					tmpl = greedyCSRTemplate(t)
				}
				csr := mustParseCSR(t, makeCSR(t, key, tmpl))
				if greedy && (len(csr.DNSNames) == 0 || len(csr.Extensions) < 4) {
					t.Fatalf("greedy csr lost its requests: %v", csr.Extensions)
				}

				got, err := ca.Sign(testRequest(csr))
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				checkLeaf(t, ca, got, key.Public())
			})
		}
	}
}

func TestSignSerialFromRand(t *testing.T) {
	ca, _ := newTestCA(t, func(c *Config) { c.Rand = &countingReader{} })
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))

	got, err := ca.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	// The first 16 bytes the source gives are 1..16.
	want := new(big.Int).SetBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	if got.Leaf.SerialNumber.Cmp(want) != 0 || got.Serial != "102030405060708090a0b0c0d0e0f10" {
		t.Errorf("serial = %x (%s), want %x", got.Leaf.SerialNumber, got.Serial, want)
	}
}

func TestSignValidity(t *testing.T) {
	tests := []struct {
		name          string
		lifetime      time.Duration
		backdate      time.Duration
		interFrom     time.Time // zero: an hour before testNow
		interTo       time.Time // zero: five years after testNow
		now           time.Time
		wantNotBefore time.Time
		wantNotAfter  time.Time
	}{
		{
			name:          "defaults: lifetime 12h, no backdating",
			now:           testNow,
			wantNotBefore: testNow,
			wantNotAfter:  testNow.Add(12 * time.Hour),
		},
		{
			name:          "the default backdate",
			backdate:      DefaultBackdate,
			now:           testNow,
			wantNotBefore: testNow.Add(-time.Minute),
			wantNotAfter:  testNow.Add(12 * time.Hour),
		},
		{
			name:          "configured",
			lifetime:      90 * time.Minute,
			backdate:      5 * time.Minute,
			now:           testNow,
			wantNotBefore: testNow.Add(-5 * time.Minute),
			wantNotAfter:  testNow.Add(90 * time.Minute),
		},
		{
			name:          "sub-second clock is truncated",
			now:           testNow.Add(700 * time.Millisecond),
			wantNotBefore: testNow,
			wantNotAfter:  testNow.Add(12 * time.Hour),
		},
		{
			name:          "sub-second clock is truncated after backdating",
			backdate:      DefaultBackdate,
			now:           testNow.Add(700 * time.Millisecond),
			wantNotBefore: testNow.Add(-time.Minute),
			wantNotAfter:  testNow.Add(12 * time.Hour),
		},
		{
			name:          "capped at issuer expiry",
			backdate:      DefaultBackdate,
			interTo:       testNow.Add(2 * time.Hour),
			now:           testNow,
			wantNotBefore: testNow.Add(-time.Minute),
			wantNotAfter:  testNow.Add(2 * time.Hour),
		},
		{
			name:          "not before the issuer",
			backdate:      DefaultBackdate,
			interFrom:     testNow.Add(-20 * time.Second),
			now:           testNow,
			wantNotBefore: testNow.Add(-20 * time.Second),
			wantNotAfter:  testNow.Add(12 * time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := tt.interFrom, tt.interTo
			if from.IsZero() {
				from = testNow.Add(-time.Hour)
			}
			if to.IsZero() {
				to = testNow.AddDate(5, 0, 0)
			}
			pki := newTestPKIWindow(t, "P-256", from, to)
			ca, err := New(Config{
				Chain:       pki.chain(),
				Signer:      pki.interKey,
				TrustDomain: testTD,
				Lifetime:    tt.lifetime,
				Backdate:    tt.backdate,
				Now:         func() time.Time { return tt.now },
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))

			got, err := ca.Sign(testRequest(csr))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !got.NotBefore.Equal(tt.wantNotBefore) ||
				!got.Leaf.NotBefore.Equal(tt.wantNotBefore) {
				t.Errorf("not before = %v, want %v", got.NotBefore, tt.wantNotBefore)
			}
			if !got.NotAfter.Equal(tt.wantNotAfter) || !got.Leaf.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("not after = %v, want %v", got.NotAfter, tt.wantNotAfter)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	clock := newFakeClock(testNow)
	ca, pki := newTestCA(t, func(c *Config) { c.Now = clock.Now })
	good := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))

	// ParseCSR would refuse this key; Sign must refuse it too.
	weakDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{},
		testKey(t, "P-224", "client"))
	if err != nil {
		t.Fatalf("create csr: %v", err)
	}
	weak, err := x509.ParseCertificateRequest(weakDER)
	if err != nil {
		t.Fatalf("parse csr: %v", err)
	}

	withIDs := func(identity, session, cert string) SignRequest {
		return SignRequest{CSR: good, IdentityID: identity, APISessionID: session,
			CertificateID: cert}
	}
	tests := []struct {
		name  string
		req   SignRequest
		now   time.Time
		zeros bool // use a source of zeros
		want  error
	}{
		{name: "no csr", req: SignRequest{IdentityID: "a", APISessionID: "b", CertificateID: "c"},
			want: ErrNoCSR},
		{name: "weak key", req: SignRequest{CSR: weak, IdentityID: "a", APISessionID: "b",
			CertificateID: "c"}, want: ErrInvalidCSR},
		{name: "empty identity", req: withIDs("", "s", "c"), want: ErrInvalidID},
		{name: "slash in session", req: withIDs("i", "a/b", "c"), want: ErrInvalidID},
		{name: "dot-dot cert", req: withIDs("i", "s", ".."), want: ErrInvalidID},
		{name: "space in identity", req: withIDs("a b", "s", "c"), want: ErrInvalidID},
		{name: "identity too long", req: withIDs(strings.Repeat("a", MaxIDLength+1), "s", "c"),
			want: ErrInvalidID},
		{name: "ca expired since New", req: testRequest(good),
			now: pki.inter.NotAfter.Add(time.Second), want: ErrCAExpired},
		{name: "broken random source", req: testRequest(good), zeros: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.now.IsZero() {
				clock.Set(tt.now)
				defer clock.Set(testNow)
			}
			signer := ca
			if tt.zeros {
				signer, _ = newTestCA(t, func(c *Config) { c.Rand = zeroReader{} })
			}

			got, err := signer.Sign(tt.req)
			if err == nil {
				t.Fatalf("Sign = %v, want an error", got.SPIFFEID)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Sign error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignConcurrent(t *testing.T) {
	ca, _ := newTestCA(t, nil)
	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))

	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		serials = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			got, err := ca.Sign(testRequest(csr))
			if err != nil {
				t.Errorf("Sign: %v", err)
				return
			}
			mu.Lock()
			serials[got.Serial] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(serials) != n {
		t.Errorf("%d distinct serials from %d certificates", len(serials), n)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{nil, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{[]byte("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Fingerprint(tt.in); got != tt.want {
				t.Errorf("Fingerprint(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestSignCappedByRoot(t *testing.T) {
	// A root that ends before its intermediate: issued certificates end with
	// the root, since no peer would accept them after it.
	rootKey := testKey(t, "P-256", "short root")
	root := mustCert(t, caTemplate("short root", testNow.Add(-time.Hour),
		testNow.Add(3*time.Hour)), nil, rootKey.Public(), rootKey)
	interKey := testKey(t, "P-256", "short root intermediate")
	inter := mustCert(t, caTemplate("long intermediate", testNow.Add(-time.Hour),
		testNow.AddDate(1, 0, 0)), root, interKey.Public(), rootKey)
	ca, err := New(Config{Chain: []*x509.Certificate{inter, root}, Signer: interKey,
		TrustDomain: testTD, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !ca.NotAfter().Equal(root.NotAfter) {
		t.Errorf("NotAfter = %v, want the root's %v", ca.NotAfter(), root.NotAfter)
	}

	csr := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	got, err := ca.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !got.NotAfter.Equal(root.NotAfter) {
		t.Errorf("leaf not after = %v, want the root's %v", got.NotAfter, root.NotAfter)
	}
}

// otherKeySigner presents the signing certificate's public key but signs
// with another key, as a KMS pointed at the wrong key version would.
type otherKeySigner struct {
	crypto.Signer // the certificate's key, for Public
	other         crypto.Signer
}

func (s otherKeySigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.other.Sign(rnd, digest, opts)
}

// TestSignWhenTheCACannotSign covers the errors no request can avoid: a
// chain outside its validity, a signer that fails, and a signer whose
// signatures do not verify. Each comes out of Sign with no certificate, and
// CannotSign tells them from the errors of a bad request.
func TestSignWhenTheCACannotSign(t *testing.T) {
	good := mustParseCSR(t, makeCSR(t, testKey(t, "P-256", "client"), nil))
	pki := newTestPKI(t, testNow, "P-256")
	tests := []struct {
		name       string
		signer     crypto.Signer
		now        time.Time
		req        SignRequest
		want       error
		cannotSign bool
	}{
		{name: "chain expired since New", now: pki.inter.NotAfter.Add(time.Second), req: testRequest(good),
			want: ErrCAExpired, cannotSign: true},
		{name: "chain not valid yet", now: pki.inter.NotBefore.Add(-time.Second), req: testRequest(good),
			want: ErrCANotYetValid, cannotSign: true},
		{name: "signer unreachable", signer: failingSigner{pki.interKey}, req: testRequest(good),
			want: ErrSignerFailed, cannotSign: true},
		{name: "signer signs with another key",
			signer: otherKeySigner{Signer: pki.interKey, other: testKey(t, "P-256", "wrong key version")},
			req:    testRequest(good), want: ErrSelfCheck, cannotSign: true},
		{name: "no csr", req: SignRequest{IdentityID: "a", APISessionID: "b", CertificateID: "c"},
			want: ErrNoCSR},
		{name: "bad id", req: SignRequest{CSR: good, IdentityID: "a/b", APISessionID: "b", CertificateID: "c"},
			want: ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(testNow)
			signer := tt.signer
			if signer == nil {
				signer = pki.interKey
			}
			ca, err := New(Config{Chain: pki.chain(), Signer: signer, TrustDomain: testTD, Now: clock.Now})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.now.IsZero() {
				clock.Set(tt.now)
			}

			got, err := ca.Sign(tt.req)
			if got != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Sign = %v, %v; want no certificate and %v", got, err, tt.want)
			}
			if CannotSign(err) != tt.cannotSign {
				t.Errorf("CannotSign(%v) = %v, want %v", err, !tt.cannotSign, tt.cannotSign)
			}
		})
	}
}

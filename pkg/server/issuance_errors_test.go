package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// requestLine returns the access-log line of the request with that id from
// JSON logs, or fails the test.
func requestLine(t *testing.T, logs *syncBuffer, requestID string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		if rec["msg"] == "request" && rec["requestId"] == requestID {
			return rec
		}
	}
	t.Fatalf("no log line of request %s in:\n%s", requestID, logs.String())
	return nil
}

// csrWithURI returns a CSR, correctly signed, whose subject alternative
// name extension holds uri verbatim, parsable or not.
func csrWithURI(t *testing.T, uri string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "ignored"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestCSRErrorSaysOnlyTheDetail sends CSRs whose parse or signature error
// would quote the input: the reply's cause carries the reason and its
// fixed detail and nothing of the input, while the server's log line of the
// request keeps the whole error for the operator.
func TestCSRErrorSaysOnlyTheDetail(t *testing.T) {
	var logs syncBuffer
	e := servertest.Start(t, servertest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	s := newSession(t, e)

	const marker = "leaked-from-the-csr"
	good := newCSR(t)
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff
	weak, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: the weak key is the point
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weak)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, csr, reason, message string
		logged                     string // in the log line's error, beside the detail
	}{
		{"a uri san that does not parse", csrWithURI(t, "https://"+marker+"/%zz"),
			"malformed", "malformed certificate request", marker},
		{"a signature that does not verify", string(pem.EncodeToMemory(&pem.Block{
			Type: "CERTIFICATE REQUEST", Bytes: tampered})),
			"badSignature", "signature does not verify", "verification"},
		{"an rsa key of 1024 bits", string(pem.EncodeToMemory(&pem.Block{
			Type: "CERTIFICATE REQUEST", Bytes: weakDER})),
			"weakKey", "rsa key of 1024 bits, at least 2048 required", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, env := rawCall(t, e, "POST", "/edge/client/v1/current-api-session/certificates",
				"application/json", `{"csr":`+quote(tc.csr)+`}`, map[string]string{"zt-session": s.token})
			if status != 400 || *env.Error.Code != "COULD_NOT_PROCESS_CSR" || env.Error.Cause == nil {
				t.Fatalf("got %d %+v, want 400 COULD_NOT_PROCESS_CSR with a cause", status, env.Error)
			}
			if c := env.Error.Cause; c.Code != tc.reason || c.Message != tc.message {
				t.Errorf("cause %q %q, want %q %q", c.Code, c.Message, tc.reason, tc.message)
			}
			line := requestLine(t, &logs, hdr.Get("X-Request-Id"))
			logged, _ := line["error"].(string)
			if !strings.Contains(logged, tc.message) || !strings.Contains(logged, tc.logged) {
				t.Errorf("log line error %q, want the detail and %q", logged, tc.logged)
			}
		})
	}
}

// caFiles writes a self-signed P-256 CA valid from notBefore to notAfter and
// its key, and returns their paths.
func caFiles(t *testing.T, notBefore, notAfter time.Time) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "short-lived test ca"},
		NotBefore: notBefore, NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	for path, block := range map[string]*pem.Block{
		certPath: {Type: "CERTIFICATE", Bytes: der},
		keyPath:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath
}

// wrongKeySigner presents the CA certificate's public key but signs with
// another key, as a KMS pointed at the wrong key version would.
type wrongKeySigner struct {
	crypto.Signer
	other crypto.Signer
}

func (s wrongKeySigner) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.other.Sign(rnd, digest, opts)
}

// unreachableSigner presents the right public key and cannot sign.
type unreachableSigner struct{ crypto.Signer }

func (unreachableSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("kms unreachable")
}

// TestIssuanceWhenTheCACannotSign runs a server whose CA cannot sign: its
// certificate expired while the server ran, or its signer signs with
// another key, or cannot be reached. A certificate request is refused with
// 503 SERVICE_UNAVAILABLE (not the 500 the contract keeps for bugs), the
// cause is logged at Error for the operator, and nothing is stored.
func TestIssuanceWhenTheCACannotSign(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name    string
		caFor   time.Duration // validity of a CA of the test's own from start; 0 the development CA
		wrap    func(crypto.Signer) crypto.Signer
		advance time.Duration // of the clock, after login
		logged  string
	}{
		{name: "the CA expired while the server ran", caFor: 2 * time.Hour, advance: 2*time.Hour + time.Minute,
			logged: "ca: certificate has expired: the chain is valid from"},
		{name: "the signer signs with another key",
			wrap:   func(s crypto.Signer) crypto.Signer { return wrongKeySigner{Signer: s, other: other} },
			logged: "ca: issued certificate failed its self-check"},
		{name: "the signer cannot be reached",
			wrap:   func(s crypto.Signer) crypto.Signer { return unreachableSigner{s} },
			logged: "ca: signer failed: kms unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			clock.Set(start)
			var logs syncBuffer
			e := servertest.Start(t, servertest.Options{
				Clock: clock, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), WrapCASigner: tc.wrap,
				Config: func(c *server.Config) {
					c.SessionTimeout = 3 * time.Hour // outlives the CA
					if tc.caFor > 0 {
						c.Certs.CACert, c.Certs.CAKey = caFiles(t, start.Add(-time.Hour), start.Add(tc.caFor))
					}
				},
			})
			s := newSession(t, e)
			clock.Advance(tc.advance)

			status, hdr, env := rawCall(t, e, "POST", "/edge/client/v1/current-api-session/certificates",
				"application/json", `{"csr":`+quote(newCSR(t))+`}`, map[string]string{"zt-session": s.token})
			const msg = "the certificate authority cannot issue certificates now, try again later"
			if status != 503 || *env.Error.Code != "SERVICE_UNAVAILABLE" || *env.Error.Message != msg {
				t.Fatalf("got %d %+v, want 503 SERVICE_UNAVAILABLE %q", status, env.Error, msg)
			}
			line := requestLine(t, &logs, hdr.Get("X-Request-Id"))
			if logged, _ := line["error"].(string); line["level"] != "ERROR" || !strings.Contains(logged, tc.logged) {
				t.Errorf("log line at %v with error %q, want ERROR with %q", line["level"], logged, tc.logged)
			}
			if n, err := e.Server.Store().CountCertificates(context.Background()); err != nil || n != 0 {
				t.Errorf("%d certificates stored (%v), want none", n, err)
			}
			if n := value(scrape(t, e), "sessioncert_certificate_refusals_total", "reason", "ca_unavailable"); n != 1 {
				t.Errorf("refusals counted as ca_unavailable: %v, want 1", n)
			}
		})
	}
}

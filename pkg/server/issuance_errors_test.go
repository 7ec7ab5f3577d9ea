package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"strings"
	"testing"

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

package sdk

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestRefusedReply checks which replies a Transport takes for a refusal of
// its credential, and that the caller still reads every reply whole.
func TestRefusedReply(t *testing.T) {
	envelope := func(code string) string {
		return fmt.Sprintf(`{"error":{"code":%q,"message":"m","requestId":"r"},"meta":{}}`, code)
	}
	const jsonType = "application/json"
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        bool
	}{
		{"router: no live session", 403, jsonType, envelope(CodeInvalidAPISession), true},
		{"router: certificate not bound", 403, jsonType, envelope(CodeCertificateNotBound), true},
		{"router: certificate expired", 403, jsonType, envelope(CodeCertificateExpired), true},
		{"router: certificate untrusted", 403, "application/json; charset=utf-8",
			envelope(CodeCertificateUntrusted), true},
		{"controller: token refused", 401, jsonType, envelope(CodeUnauthorized), true},
		{"a login refused is no refusal of the credential", 401, jsonType,
			envelope(CodeInvalidAuth), false},
		{"an upstream's own 403", 403, jsonType, envelope("FORBIDDEN"), false},
		{"a router code with another status", 400, jsonType, envelope(CodeInvalidAPISession),
			false},
		{"not JSON", 403, "text/plain", envelope(CodeInvalidAPISession), false},
		{"broken JSON", 403, jsonType, `{"error":`, false},
		{"a refusal beyond the read limit", 403, jsonType,
			`{"pad":"` + strings.Repeat("x", maxRefusalBody) + `",` +
				envelope(CodeInvalidAPISession)[1:], false},
		{"success", 200, jsonType, envelope(CodeInvalidAPISession), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &http.Response{
				StatusCode: tt.status,
				Header:     http.Header{"Content-Type": {tt.contentType}},
				Body:       io.NopCloser(strings.NewReader(tt.body)),
			}

			got := refusedReply(res)

			if got != tt.want {
				t.Errorf("refused = %v, want %v", got, tt.want)
			}
			b, err := io.ReadAll(res.Body)
			if err != nil || string(b) != tt.body {
				t.Errorf("the caller read %d bytes (%v), want the %d of the reply",
					len(b), err, len(tt.body))
			}
		})
	}
}

// TestRefusedHandshake checks which TLS failures a Transport takes for a
// refusal of its certificate.
func TestRefusedHandshake(t *testing.T) {
	remote := func(a tls.AlertError) error {
		return fmt.Errorf("read: %w", &net.OpError{Op: "remote error", Err: a})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"bad certificate", remote(42), true},
		{"certificate revoked", remote(44), true},
		{"certificate expired", remote(45), true},
		{"unknown ca", remote(48), true},
		{"handshake failure: no common cipher or version", remote(40), false},
		{"certificate required: none was sent", remote(116), false},
		{"our own alert", &net.OpError{Op: "local error", Err: tls.AlertError(42)}, false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("refused")}, false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refusedHandshake(tt.err); got != tt.want {
				t.Errorf("refused = %v, want %v for %v", got, tt.want, tt.err)
			}
		})
	}
}

// TestTransportRefusesPlainHTTP checks that a token is never sent in the
// clear: a request for an http URL fails before the SDK even logs in.
func TestTransportRefusesPlainHTTP(t *testing.T) {
	s := &SDK{} // never used: the request is refused first
	req, err := http.NewRequest(http.MethodGet, "http://router.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Transport(nil).RoundTrip(req)
	if res != nil {
		_ = res.Body.Close()
		t.Fatalf("got a response with status %d", res.StatusCode)
	}
	if err == nil || !strings.Contains(err.Error(), "only https") {
		t.Errorf("error %v, want a refusal of plain http", err)
	}
}

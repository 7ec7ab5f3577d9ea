package ca

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestSessionCertID(t *testing.T) {
	long := strings.Repeat("x", MaxIDLength)
	tests := []struct {
		name                    string
		td                      spiffeid.TrustDomain
		identity, session, cert string
		want                    string // empty: refused
	}{
		{"plain", testTD, "id-1", "sess-1", "cert-1", testSPIFFEID},
		{"allowed punctuation", testTD, "A.b_c-9", "s", "c",
			"spiffe://example.org/identity/A.b_c-9/apiSession/s/apiSessionCertificate/c"},
		{"longest ids", testTD, long, long, long, "spiffe://example.org/identity/" + long +
			"/apiSession/" + long + "/apiSessionCertificate/" + long},
		{"no trust domain", spiffeid.TrustDomain{}, "i", "s", "c", ""},
		{"empty identity", testTD, "", "s", "c", ""},
		{"empty session", testTD, "i", "", "c", ""},
		{"empty cert", testTD, "i", "s", "", ""},
		{"slash", testTD, "i/j", "s", "c", ""},
		{"dot", testTD, ".", "s", "c", ""},
		{"dot dot", testTD, "i", "..", "c", ""},
		{"percent", testTD, "i%2F", "s", "c", ""},
		{"colon", testTD, "i", "s", "c:1", ""},
		{"non-ascii", testTD, "idé", "s", "c", ""},
		{"too long", testTD, long + "x", "s", "c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := SessionCertID(tt.td, tt.identity, tt.session, tt.cert)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidID) {
					t.Fatalf("SessionCertID = %v, %v; want ErrInvalidID", id, err)
				}
				return
			}
			if err != nil || id.String() != tt.want {
				t.Fatalf("SessionCertID = %v, %v; want %s", id, err, tt.want)
			}

			identity, session, cert, err := ParseSessionCertID(id.URL())
			if err != nil || identity != tt.identity || session != tt.session || cert != tt.cert {
				t.Errorf("ParseSessionCertID = %q, %q, %q, %v; want the ids back",
					identity, session, cert, err)
			}
		})
	}
}

func TestParseSessionCertIDRefuses(t *testing.T) {
	tests := []struct {
		name string
		uri  string
	}{
		{"http scheme", "https://example.org/identity/i/apiSession/s/apiSessionCertificate/c"},
		{"no path", "spiffe://example.org"},
		{"other path", "spiffe://example.org/workload/a"},
		{"missing certificate", "spiffe://example.org/identity/i/apiSession/s"},
		{"extra segment", "spiffe://example.org/identity/i/apiSession/s/apiSessionCertificate/c/d"},
		{"wrong keyword", "spiffe://example.org/identity/i/session/s/apiSessionCertificate/c"},
		{"keyword case", "spiffe://example.org/Identity/i/apiSession/s/apiSessionCertificate/c"},
		{"empty id", "spiffe://example.org/identity//apiSession/s/apiSessionCertificate/c"},
		{"query", "spiffe://example.org/identity/i/apiSession/s/apiSessionCertificate/c?x=1"},
		{"fragment", "spiffe://example.org/identity/i/apiSession/s/apiSessionCertificate/c#f"},
		{"port", "spiffe://example.org:443/identity/i/apiSession/s/apiSessionCertificate/c"},
		{"user info", "spiffe://u@example.org/identity/i/apiSession/s/apiSessionCertificate/c"},
		{"too long", "spiffe://example.org/identity/" + strings.Repeat("x", MaxIDLength+1) +
			"/apiSession/s/apiSessionCertificate/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.uri)
			if err != nil {
				t.Fatalf("url.Parse: %v", err)
			}
			if _, _, _, err := ParseSessionCertID(u); !errors.Is(err, ErrInvalidID) {
				t.Errorf("ParseSessionCertID error = %v, want ErrInvalidID", err)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if _, _, _, err := ParseSessionCertID(nil); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseSessionCertID(nil) error = %v, want ErrInvalidID", err)
		}
	})
}

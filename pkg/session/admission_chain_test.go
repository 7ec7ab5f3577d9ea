package session_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/session"
)

// certPEM returns a throwaway self-signed certificate as one PEM block.
func certPEM(t testing.TB, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestParseChainTakesCertificateBlocksOnly feeds ParseChain chains with
// something besides CERTIFICATE blocks and whitespace in them: each is
// refused, wherever the extra text stands.
func TestParseChainTakesCertificateBlocksOnly(t *testing.T) {
	leaf, inter := certPEM(t, "leaf"), certPEM(t, "intermediate")
	withHeader := strings.Replace(leaf, "-----\n", "-----\nComment: hello\n\n", 1)
	keyBlock := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))
	brokenThenGood := "-----BEGIN CERTIFICATE-----\n!!\n" + inter
	for _, tc := range []struct {
		name  string
		chain string
		certs int // 0: refused
	}{
		{"one block", leaf, 1},
		{"two blocks", leaf + inter, 2},
		{"whitespace around and between", " \n\t" + leaf + "\r\n\n  " + inter + "\n \n", 2},
		{"CRLF line endings", strings.ReplaceAll(leaf+inter, "\n", "\r\n"), 2},
		{"text before the first block", "leaf:\n" + leaf + inter, 0},
		{"text between the blocks", leaf + "and its issuer\n" + inter, 0},
		{"text after the last block", leaf + inter + "that is all\n", 0},
		{"text right after an END line", strings.TrimSuffix(leaf, "\n") + "x\n" + inter, 0},
		{"blocks not separated", strings.TrimSuffix(leaf, "\n") + inter, 0},
		{"a block with headers", withHeader, 0},
		{"a private key block", leaf + keyBlock, 0},
		{"a broken block before a good one", brokenThenGood, 0},
		{"a block without its END line", strings.TrimSuffix(leaf, "-----END CERTIFICATE-----\n"),
			0},
		{"whitespace only", " \n", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := session.ParseChain([]byte(tc.chain))
			if tc.certs == 0 {
				if err == nil {
					t.Fatalf("accepted %d certificates from %q", len(chain), tc.chain)
				}
				return
			}
			if err != nil || len(chain) != tc.certs {
				t.Fatalf("ParseChain: %d certificates, %v; want %d", len(chain), err, tc.certs)
			}
			if chain[0].Subject.CommonName != "leaf" {
				t.Errorf("first certificate is %q, want the leaf", chain[0].Subject.CommonName)
			}
		})
	}
}

// certBlock matches one PEM CERTIFICATE block as ParseChain may accept it.
var certBlock = regexp.MustCompile(
	`-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----`)

// FuzzParseChain checks that whatever ParseChain accepts is CERTIFICATE
// blocks and whitespace only, holding as many certificates as it returned.
func FuzzParseChain(f *testing.F) {
	leaf, inter := certPEM(f, "leaf"), certPEM(f, "intermediate")
	f.Add([]byte(leaf + inter))
	f.Add([]byte(leaf + "junk\n" + inter))
	f.Add([]byte("junk" + leaf))
	f.Add([]byte(strings.ReplaceAll(leaf, "\n", "\r\n")))
	f.Fuzz(func(t *testing.T, input []byte) {
		chain, err := session.ParseChain(input)
		if err != nil {
			return
		}
		blocks := certBlock.FindAll(input, -1)
		left := certBlock.ReplaceAll(input, nil)
		if len(bytes.Trim(left, " \t\r\n")) > 0 || len(blocks) != len(chain) {
			t.Fatalf("accepted %d certificates from %q; besides %d blocks it holds %q",
				len(chain), input, len(blocks), left)
		}
	})
}

package ca

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// wantCSRReason fails unless err is a *CSRError with the given reason that
// also matches ErrInvalidCSR.
func wantCSRReason(t *testing.T, err error, want CSRReason) {
	t.Helper()
	var ce *CSRError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a *CSRError with reason %v", err, want)
	}
	if ce.Reason != want {
		t.Errorf("reason = %v (%v), want %v", ce.Reason, err, want)
	}
	if !errors.Is(err, ErrInvalidCSR) {
		t.Errorf("errors.Is(%v, ErrInvalidCSR) = false", err)
	}
	if !strings.HasPrefix(err.Error(), "ca: invalid csr: ") {
		t.Errorf("message %q lacks the prefix", err)
	}
}

func TestParseCSRTestdata(t *testing.T) {
	tests := []struct {
		file    string
		keyType string    // when accepted
		reason  CSRReason // when refused
	}{
		{file: "openssl-p256.csr", keyType: "P-256"},
		{file: "openssl-p384.csr", keyType: "P-384"},
		{file: "openssl-p521.csr", keyType: "P-521"},
		{file: "openssl-rsa2048.csr", keyType: "RSA-2048"},
		{file: "openssl-ed25519.csr", keyType: "Ed25519"},
		{file: "openssl-extras.csr", keyType: "P-256"},
		{file: "openssl-rsa1024.csr", reason: CSRWeakKey},
		{file: "openssl-p224.csr", reason: CSRWeakKey},
		{file: "openssl-secp256k1.csr", reason: CSRUnsupportedKey},
		{file: "openssl-brainpool.csr", reason: CSRUnsupportedKey},
		{file: "openssl-p256-explicit.csr", reason: CSRUnsupportedKey},
		{file: "openssl-ed448.csr", reason: CSRUnsupportedKey},
		{file: "openssl-dsa2048.csr", reason: CSRUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			csr, err := ParseCSR(data)
			if tt.reason != 0 {
				wantCSRReason(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			if got := KeyType(csr.PublicKey); got != tt.keyType {
				t.Errorf("KeyType = %s, want %s", got, tt.keyType)
			}
		})
	}
}

func TestParseCSRAccepts(t *testing.T) {
	p256 := makeCSR(t, testKey(t, "P-256", "client"), nil)
	block, _ := pem.Decode(p256)
	newType := pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes})
	padded := append(bytes.Clone(p256), bytes.Repeat([]byte("\n"), MaxCSRSize-len(p256))...)

	tests := []struct {
		name string
		in   []byte
	}{
		{"P-256", p256},
		{"P-384", makeCSR(t, testKey(t, "P-384", "client"), nil)},
		{"P-521", makeCSR(t, testKey(t, "P-521", "client"), nil)},
		{"RSA-2048", makeCSR(t, testKey(t, "RSA-2048", "client"), nil)},
		{"Ed25519", makeCSR(t, testKey(t, "Ed25519", "client"), nil)},
		{"surrounding whitespace", append(append([]byte(" \r\n\t"), p256...), " \n\n"...)},
		{"crlf line ends", bytes.ReplaceAll(p256, []byte("\n"), []byte("\r\n"))},
		{"no final newline", bytes.TrimRight(p256, "\n")},
		{"new certificate request", newType},
		{"exactly the size limit", padded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(tt.in)
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("accepted csr does not verify: %v", err)
			}
		})
	}
}

// rawCSR builds CSR DER around a hand-made SubjectPublicKeyInfo, for keys no
// library will sign with. The signature is zeros: these CSRs must be refused
// for their key before it matters.
func rawCSR(spki func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(csr *cryptobyte.Builder) {
		csr.AddASN1(cbasn1.SEQUENCE, func(info *cryptobyte.Builder) {
			info.AddASN1Int64(0)
			info.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) // empty subject
			info.AddASN1(cbasn1.SEQUENCE, spki)
			attributes := cbasn1.Tag(0).Constructed().ContextSpecific()
			info.AddASN1(attributes, func(*cryptobyte.Builder) {})
		})
		csr.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
			alg.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2})
		})
		csr.AddASN1BitString(make([]byte, 8))
	})
	return b.BytesOrPanic()
}

func csrPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// rawRSACSR is a CSR for an RSA public key with the given modulus size and
// exponent; the modulus is random, as only its size is looked at.
func rawRSACSR(t *testing.T, bits, e int) []byte {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	key, err := asn1.Marshal(struct{ N, E *big.Int }{n, big.NewInt(int64(e))})
	if err != nil {
		t.Fatal(err)
	}
	return csrPEM(rawCSR(func(spki *cryptobyte.Builder) {
		spki.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
			alg.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1})
			alg.AddASN1NULL()
		})
		spki.AddASN1BitString(key)
	}))
}

func TestParseCSRRefuses(t *testing.T) {
	p256 := makeCSR(t, testKey(t, "P-256", "client"), nil)
	block, _ := pem.Decode(p256)
	der := block.Bytes
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newTestPKI(t, testNow,
		"P-256").inter.Raw})

	tamperedSig := bytes.Clone(der)
	tamperedSig[len(tamperedSig)-1] ^= 0x01
	tamperedSubject := bytes.Clone(der)
	i := bytes.Index(tamperedSubject, []byte("client"))
	tamperedSubject[i] ^= 0x01

	ecPoint := func(curve asn1.ObjectIdentifier) func(*cryptobyte.Builder) {
		return func(spki *cryptobyte.Builder) {
			spki.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
				alg.AddASN1ObjectIdentifier(oidECPublicKey)
				if curve != nil {
					alg.AddASN1ObjectIdentifier(curve)
				} else {
					alg.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) // explicit
				}
			})
			point := append([]byte{4}, make([]byte, 64)...)
			point[64] = 1
			spki.AddASN1BitString(point)
		}
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519SPKI := func(spki *cryptobyte.Builder) {
		spki.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
			alg.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 101, 110})
		})
		spki.AddASN1BitString(x25519.PublicKey().Bytes())
	}

	noise := make([]byte, 100<<10)
	for i := range noise {
		noise[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n"[i%65]
	}
	bigNoise := append(append([]byte("-----BEGIN CERTIFICATE REQUEST-----\n"), noise...),
		"-----END CERTIFICATE REQUEST-----\n"...)
	headers := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der,
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}})
	overLimit := append(bytes.Clone(p256), bytes.Repeat([]byte("\n"), MaxCSRSize-len(p256)+1)...)

	tests := []struct {
		name string
		in   []byte
		want CSRReason
	}{
		{"nil", nil, CSREmpty},
		{"empty", []byte{}, CSREmpty},
		{"whitespace", []byte(" \r\n\t \n"), CSREmpty},
		{"100 KiB of pem noise", bigNoise, CSRTooLarge},
		{"one byte over the limit", overLimit, CSRTooLarge},
		{"plain text", []byte("please sign me"), CSRNotPEM},
		{"bare der", der, CSRNotPEM},
		{"broken armor", []byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n" +
			"-----END CERTIFICATE REQUEST-----\n"), CSRNotPEM},
		{"no end line", bytes.TrimSuffix(p256, []byte("-----END CERTIFICATE REQUEST-----\n")),
			CSRNotPEM},
		{"mismatched end line", bytes.Replace(p256, []byte("END CERTIFICATE REQUEST"),
			[]byte("END CERTIFICATE"), 1), CSRNotPEM},
		{"pem headers", headers, CSRNotPEM},
		{"two csr blocks", append(bytes.Clone(p256), p256...), CSRMultipleBlocks},
		{"csr then certificate", append(bytes.Clone(p256), cert...), CSRMultipleBlocks},
		{"certificate block", cert, CSRNotCSR},
		{"private key block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
			CSRNotCSR},
		{"trailing bytes", append(bytes.Clone(p256), "garbage"...), CSRTrailingData},
		{"trailing nul", append(bytes.Clone(p256), 0), CSRTrailingData},
		{"leading garbage", append([]byte("garbage\n"), p256...), CSRLeadingData},
		{"leading broken block", append([]byte("-----BEGIN CERTIFICATE REQUEST-----\n!!\n"),
			p256...), CSRMultipleBlocks},
		{"garbage der", csrPEM([]byte("this is not der at all")), CSRMalformed},
		{"empty der", csrPEM(nil), CSRMalformed},
		{"truncated der", csrPEM(der[:len(der)-10]), CSRMalformed},
		{"trailing der", csrPEM(append(bytes.Clone(der), 0, 0)), CSRMalformed},
		{"tampered signature", csrPEM(tamperedSig), CSRBadSignature},
		{"tampered subject", csrPEM(tamperedSubject), CSRBadSignature},
		{"RSA-1024", makeCSR(t, testKey(t, "RSA-1024", "client"), nil), CSRWeakKey},
		{"RSA even exponent", rawRSACSR(t, 2048, 65536), CSRWeakKey},
		{"RSA-8200", rawRSACSR(t, 8200, 65537), CSRUnsupportedKey},
		{"P-224", makeCSR(t, testKey(t, "P-224", "client"), nil), CSRWeakKey},
		{"secp256k1", csrPEM(rawCSR(ecPoint(asn1.ObjectIdentifier{1, 3, 132, 0, 10}))),
			CSRUnsupportedKey},
		{"explicit curve", csrPEM(rawCSR(ecPoint(nil))), CSRUnsupportedKey},
		{"X25519", csrPEM(rawCSR(x25519SPKI)), CSRUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(tt.in)
			if csr != nil {
				t.Errorf("ParseCSR returned a csr with error %v", err)
			}
			wantCSRReason(t, err, tt.want)
		})
	}
}

func TestCheckPublicKey(t *testing.T) {
	// Keys that no CSR parser produces but a caller of Sign could pass.
	tests := []struct {
		name string
		pub  any
		want CSRReason // 0: allowed
	}{
		{"P-256", testKey(t, "P-256", "client").Public(), 0},
		{"nil", nil, CSRUnsupportedKey},
		{"nil ecdsa", (*ecdsa.PublicKey)(nil), CSRUnsupportedKey},
		{"nil rsa", (*rsa.PublicKey)(nil), CSRUnsupportedKey},
		{"rsa without modulus", &rsa.PublicKey{E: 65537}, CSRUnsupportedKey},
		{"custom curve", &ecdsa.PublicKey{Curve: customCurve{elliptic.P256()}}, CSRUnsupportedKey},
		{"short ed25519", ed25519.PublicKey(make([]byte, 31)), CSRMalformed},
		{"x25519", mustX25519(t).PublicKey(), CSRUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPublicKey(tt.pub)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("checkPublicKey: %v", err)
				}
				return
			}
			wantCSRReason(t, err, tt.want)
		})
	}
}

// customCurve is P-256 under another identity, as a caller-made curve would
// be: only the standard curve values are allowed, whatever a curve claims.
type customCurve struct{ elliptic.Curve }

func mustX25519(t *testing.T) *ecdh.PrivateKey {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCSRReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := CSRTooLarge; r <= CSRBadSignature; r++ {
		s := r.String()
		if s == "unknown" || s == "" || seen[s] {
			t.Errorf("reason %d has name %q", int(r), s)
		}
		seen[s] = true
	}
	for _, r := range []CSRReason{0, -1, CSRBadSignature + 1} {
		if got := r.String(); got != "unknown" {
			t.Errorf("CSRReason(%d).String() = %q, want unknown", int(r), got)
		}
	}
}

func TestKeyType(t *testing.T) {
	tests := []struct {
		pub  any
		want string
	}{
		{testKey(t, "P-224", "client").Public(), "P-224"},
		{testKey(t, "P-256", "client").Public(), "P-256"},
		{testKey(t, "P-384", "client").Public(), "P-384"},
		{testKey(t, "P-521", "client").Public(), "P-521"},
		{testKey(t, "RSA-2048", "client").Public(), "RSA-2048"},
		{testKey(t, "RSA-1024", "client").Public(), "RSA-1024"},
		{testKey(t, "Ed25519", "client").Public(), "Ed25519"},
		{mustX25519(t).PublicKey(), "unknown"},
		{nil, "unknown"},
		{(*rsa.PublicKey)(nil), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := KeyType(tt.pub); got != tt.want {
				t.Errorf("KeyType = %q, want %q", got, tt.want)
			}
		})
	}
}

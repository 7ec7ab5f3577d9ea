package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func jwksDoc(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatalf("marshal jwks: %v", err)
	}
	return b
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()

	ec256 := newECKey(t, elliptic.P256())
	ec384 := newECKey(t, elliptic.P384())
	ec521 := newECKey(t, elliptic.P521())
	ed := newEdKey(t)
	b64 := base64.RawURLEncoding.EncodeToString

	// A modulus of 1024 bits; only its length matters here.
	weak := map[string]any{
		"kty": "RSA", "kid": "weak",
		"n": b64(new(big.Int).Lsh(big.NewInt(1), 1023).Bytes()), "e": "AQAB",
	}
	offCurve := toJWK(t, "off", ec256.Public())
	offCurve["y"] = offCurve["x"]
	short := toJWK(t, "short", ec256.Public())
	short["x"] = b64(make([]byte, 31))
	enc := toJWK(t, "enc", rsaKey().Public())
	enc["use"] = "enc"
	pinned := toJWK(t, "pinned", rsaKey().Public())
	n := b64(rsaKey().N.Bytes())
	pinned["alg"] = "PS256"

	cases := []struct {
		name     string
		doc      []byte
		wantKids []string
		wantErr  bool
	}{
		{
			name: "rsa, p-256, p-384 and ed25519",
			doc: jwksDoc(t,
				toJWK(t, "rsa", rsaKey().Public()), toJWK(t, "p256", ec256.Public()),
				toJWK(t, "p384", ec384.Public()), toJWK(t, "ed", ed.Public())),
			wantKids: []string{"rsa", "p256", "p384", "ed"},
		},
		{
			name: "unusable keys are skipped",
			doc: jwksDoc(t, weak, offCurve, short, enc,
				toJWK(t, "p521", ec521.Public()),
				map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
				set{"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(make([]byte, 32))},
				set{"kty": "RSA", "kid": "big-e", "n": n, "e": "AAAAAAAAAQAB"},
				set{"kty": "RSA", "kid": "even-e", "n": n, "e": "AQAA"},
				map[string]any{"kty": "EC", "kid": "no-crv", "x": "", "y": ""},
				toJWK(t, "good", ed.Public())),
			wantKids: []string{"good"},
		},
		{
			name:     "a key's alg is kept",
			doc:      jwksDoc(t, pinned),
			wantKids: []string{"pinned"},
		},
		{name: "no usable key", doc: jwksDoc(t, weak, enc), wantErr: true},
		{name: "no keys", doc: []byte(`{"keys":[]}`), wantErr: true},
		{name: "empty object", doc: []byte(`{}`), wantErr: true},
		{name: "not json", doc: []byte(`<html>`), wantErr: true},
		{name: "keys not a list", doc: []byte(`{"keys":{}}`), wantErr: true},
		{
			name:    "too many keys",
			doc:     []byte(`{"keys":[` + strings.Repeat(`{},`, maxJWKSKeys) + `{}]}`),
			wantErr: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			keys, err := parseJWKS(tc.doc)

			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseJWKS succeeded with %d keys, want an error", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.kid)
			}
			if strings.Join(kids, ",") != strings.Join(tc.wantKids, ",") {
				t.Fatalf("kids = %v, want %v", kids, tc.wantKids)
			}
		})
	}
}

func TestSigKeyFits(t *testing.T) {
	t.Parallel()

	ec256 := newECKey(t, elliptic.P256()).Public()
	ec384 := newECKey(t, elliptic.P384()).Public()
	ed := newEdKey(t).Public()
	rsaPub := rsaKey().Public()

	cases := []struct {
		name string
		key  sigKey
		alg  string
		kid  string
		want bool
	}{
		{name: "rsa RS256", key: sigKey{pub: rsaPub}, alg: "RS256", want: true},
		{name: "rsa RS384", key: sigKey{pub: rsaPub}, alg: "RS384", want: true},
		{name: "rsa RS512", key: sigKey{pub: rsaPub}, alg: "RS512", want: true},
		{name: "rsa PS256", key: sigKey{pub: rsaPub}, alg: "PS256", want: true},
		{name: "rsa PS384", key: sigKey{pub: rsaPub}, alg: "PS384"},
		{name: "rsa ES256", key: sigKey{pub: rsaPub}, alg: "ES256"},
		{name: "rsa HS256", key: sigKey{pub: rsaPub}, alg: "HS256"},
		{name: "rsa none", key: sigKey{pub: rsaPub}, alg: "none"},
		{name: "p-256 ES256", key: sigKey{pub: ec256}, alg: "ES256", want: true},
		{name: "p-256 ES384", key: sigKey{pub: ec256}, alg: "ES384"},
		{name: "p-384 ES384", key: sigKey{pub: ec384}, alg: "ES384", want: true},
		{name: "p-384 ES256", key: sigKey{pub: ec384}, alg: "ES256"},
		{name: "ed25519 EdDSA", key: sigKey{pub: ed}, alg: "EdDSA", want: true},
		{name: "ed25519 ES256", key: sigKey{pub: ed}, alg: "ES256"},
		{name: "kid matches", key: sigKey{kid: "a", pub: ed}, alg: "EdDSA", kid: "a", want: true},
		{name: "kid differs", key: sigKey{kid: "a", pub: ed}, alg: "EdDSA", kid: "b"},
		{name: "token without kid", key: sigKey{kid: "a", pub: ed}, alg: "EdDSA", want: true},
		{name: "key alg pins", key: sigKey{alg: "PS256", pub: rsaPub}, alg: "RS256"},
		{name: "key alg agrees", key: sigKey{alg: "PS256", pub: rsaPub}, alg: "PS256", want: true},
		{name: "hmac secret", key: sigKey{pub: []byte("secret")}, alg: "HS256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.key.fits(tc.alg, tc.kid); got != tc.want {
				t.Errorf("fits(%s, %q) = %v, want %v", tc.alg, tc.kid, got, tc.want)
			}
		})
	}
}

func TestParseSignerPEM(t *testing.T) {
	t.Parallel()

	pubPEM := func(pub crypto.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatalf("MarshalPKIXPublicKey: %v", err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	ec384 := newECKey(t, elliptic.P384())
	ed := newEdKey(t)
	ec521 := newECKey(t, elliptic.P521())
	privDER, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))

	cases := []struct {
		name    string
		pem     string
		wantKey crypto.PublicKey
	}{
		{name: "certificate", pem: signerCertPEM(t, ec384), wantKey: ec384.Public()},
		{name: "rsa public key", pem: pubPEM(rsaKey().Public()), wantKey: rsaKey().Public()},
		{name: "ed25519 public key", pem: pubPEM(ed.Public()), wantKey: ed.Public()},
		{name: "other blocks skipped", pem: privPEM + pubPEM(ed.Public()), wantKey: ed.Public()},
		{name: "only a private key", pem: privPEM},
		{name: "p-521 is not allowed", pem: pubPEM(ec521.Public())},
		{name: "not pem", pem: "-----BEGIN NOTHING"},
		{name: "empty", pem: ""},
		{
			name: "corrupt certificate",
			pem:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			got, err := parseSignerPEM(tc.pem)

			if tc.wantKey == nil {
				if !errors.Is(err, ErrSignerKey) {
					t.Fatalf("parseSignerPEM = %T, %v; want ErrSignerKey", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSignerPEM: %v", err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !tc.wantKey.(equaler).Equal(got) {
				t.Fatalf("parseSignerPEM returned another key")
			}
		})
	}
}

// FuzzParseJWKS feeds arbitrary documents to the JWKS parser: it must not
// panic, and whatever it returns must be a key an allowed algorithm can
// use.
func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksDoc(f, toJWK(f, "rsa", rsaKey().Public())))
	f.Add(jwksDoc(f, toJWK(f, "ec", newECKey(f, elliptic.P256()).Public())))
	f.Add(jwksDoc(f, toJWK(f, "ed", newEdKey(f).Public())))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))

	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parseJWKS(doc)
		if err != nil {
			return
		}
		for _, k := range keys {
			if CheckSignerKey(k.pub) != nil {
				t.Fatalf("parseJWKS returned an unusable key %T", k.pub)
			}
			switch p := k.pub.(type) {
			case *rsa.PublicKey, ed25519.PublicKey:
			case *ecdsa.PublicKey:
				if _, err := p.ECDH(); err != nil {
					t.Fatalf("parseJWKS returned an invalid point: %v", err)
				}
			default:
				t.Fatalf("parseJWKS returned a %T", k.pub)
			}
		}
	})
}

package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Issuers and audience of the fixture's signers.
const (
	issJWKS = "https://idp.example.com"
	issExt  = "https://ext.example.com"
	issOff  = "https://off.example.com"
	issPEM  = "https://pem.example.com"
	issPub  = "https://pub.example.com"
	testAud = "sessioncert"
)

// jwksServer is an identity provider's key endpoint whose keys and status a
// test changes, and which counts the requests it gets.
type jwksServer struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []map[string]any
	status int
}

func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	j := &jwksServer{keys: keys, status: http.StatusOK}
	j.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		j.mu.Lock()
		status, doc := j.status, set{"keys": j.keys}
		j.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	tb.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) URL() string { return j.srv.URL + "/jwks" }

func (j *jwksServer) setKeys(keys ...map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func (j *jwksServer) setStatus(status int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.status = status
}

// toJWK encodes a public key as a JWK, as an identity provider publishes it.
func toJWK(tb testing.TB, kid string, pub crypto.PublicKey) map[string]any {
	tb.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := set{"kid": kid, "use": "sig"}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			tb.Fatalf("ecdsa Bytes: %v", err)
		}
		size := (len(raw) - 1) / 2
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64(raw[1:1+size]), b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	default:
		tb.Fatalf("toJWK: unsupported key %T", pub)
	}
	return m
}

// claims returns valid claims for iss naming sub, issued now and valid for
// five minutes.
func claims(iss, sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss,
		"sub": sub,
		"aud": testAud,
		"iat": fixNow.Unix(),
		"exp": at(5 * time.Minute),
	}
}

// set is a set of claims to change.
type set = map[string]any

// at returns the NumericDate of fixNow plus d.
func at(d time.Duration) int64 { return fixNow.Add(d).Unix() }

// with returns a copy of c with the claims in set replaced; a nil value
// removes the claim.
func with(c jwt.MapClaims, changes set) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString(%s): %v", m.Alg(), err)
	}
	return s
}

// extJWTFixture is a store with alice, bob and five signers, a JWKS server
// publishing an RSA, a P-256 and an Ed25519 key, and an ExtJWT over both.
type extJWTFixture struct {
	store store.Store
	clock *testClock
	jwks  *jwksServer
	auth  *ExtJWT

	ec256  *ecdsa.PrivateKey // kid "ec-1"
	ed     ed25519.PrivateKey
	ec384  *ecdsa.PrivateKey // in sig-pem's certificate
	pubPEM string            // PUBLIC KEY of rsaKey, sig-pub's key
}

func newExtJWTFixture(tb testing.TB) *extJWTFixture {
	tb.Helper()
	f := &extJWTFixture{
		store: openBoltStore(tb),
		clock: newTestClock(),
		ec256: newECKey(tb, elliptic.P256()),
		ed:    newEdKey(tb),
		ec384: newECKey(tb, elliptic.P384()),
	}
	createIdentities(tb, f.store, alice, bob)
	f.jwks = newJWKSServer(tb,
		toJWK(tb, "rsa-1", rsaKey().Public()),
		toJWK(tb, "ec-1", f.ec256.Public()),
		toJWK(tb, "ed-1", f.ed.Public()),
	)

	der, err := x509.MarshalPKIXPublicKey(rsaKey().Public())
	if err != nil {
		tb.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	f.pubPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	for _, s := range []*store.ExtJWTSigner{
		{ID: "sigjwks", Name: "jwks", Issuer: issJWKS, JWKSEndpoint: f.jwks.URL(), Enabled: true},
		{
			ID: "sigext", Name: "ext", Issuer: issExt, JWKSEndpoint: f.jwks.URL(),
			ClaimsProperty: "email", UseExternalID: true, Enabled: true,
		},
		{ID: "sigoff", Name: "off", Issuer: issOff, JWKSEndpoint: f.jwks.URL(), Enabled: false},
		{ID: "sigpem", Name: "pem", Issuer: issPEM,
			CertPEM: signerCertPEM(tb, f.ec384), Enabled: true},
		{ID: "sigpub", Name: "pub", Issuer: issPub, CertPEM: f.pubPEM, Enabled: true},
	} {
		s.Audience, s.CreatedAt, s.UpdatedAt = testAud, fixNow, fixNow
		if err := f.store.CreateExtJWTSigner(context.Background(), s); err != nil {
			tb.Fatalf("CreateExtJWTSigner(%s): %v", s.Name, err)
		}
	}

	f.auth = NewExtJWT(ExtJWTConfig{
		Store:      f.store,
		HTTPClient: f.jwks.srv.Client(),
		Now:        f.clock.Now,
		MinRefresh: time.Minute,
	})
	return f
}

// signerCertPEM returns a self-signed certificate for key, expired long
// ago: a signer's certificate only carries its key.
func signerCertPEM(tb testing.TB, key *ecdsa.PrivateKey) string {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer"},
		NotBefore:    fixNow.AddDate(-2, 0, 0),
		NotAfter:     fixNow.AddDate(-1, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("CreateCertificate: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func bearer(tok string) string { return "Bearer " + tok }

func TestExtJWTAuthenticate(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name       string
		header     func(t *testing.T, f *extJWTFixture) string
		setup      func(t *testing.T, f *extJWTFixture)
		want       Reason
		challenge  string
		wantIs     error  // when set, the error must match it
		wantID     string // identity of a successful login
		wantSigner string // authenticator id of a successful login
	}{
		{
			name: "RS256 from jwks",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "rsa-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "RS512 from jwks",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodRS512, rsaKey(), "rsa-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "PS256 from jwks",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, bob.ID)
				return bearer(sign(t, jwt.SigningMethodPS256, rsaKey(), "rsa-1", c))
			},
			wantID: bob.ID, wantSigner: "sigjwks",
		},
		{
			name: "ES256 from jwks",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "EdDSA from jwks",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodEdDSA, f.ed, "ed-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "no kid: every key of the right type is tried",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "no kid and several keys of the type",
			setup: func(t *testing.T, f *extJWTFixture) {
				other := newECKey(t, elliptic.P256())
				f.jwks.setKeys(toJWK(t, "ec-0", other.Public()), toJWK(t, "ec-1", f.ec256.Public()))
			},
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "scheme in lower case",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return "bearer " + sign(t, jwt.SigningMethodEdDSA, f.ed, "ed-1", c)
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "aud is a list holding the audience",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"aud": []string{"other", testAud}})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "ES384 from a certificate PEM",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issPEM, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES384, f.ec384, "", c))
			},
			wantID: alice.ID, wantSigner: "sigpem",
		},
		{
			name: "RS256 from a PUBLIC KEY PEM",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issPub, bob.ID)
				return bearer(sign(t, jwt.SigningMethodRS256, rsaKey(), "any", c))
			},
			wantID: bob.ID, wantSigner: "sigpub",
		},
		{
			name: "useExternalId maps the claims property",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issExt, "ignored"), set{"email": alice.ExternalID})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			wantID: alice.ID, wantSigner: "sigext",
		},
		{
			name: "useExternalId does not match identity ids",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issExt, alice.ID), set{"email": alice.ID})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonUnknownIdentity, challenge: "invalid",
		},
		{
			name: "claims property missing",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issExt, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrIdentityClaim,
		},
		{
			name: "subject not a string",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, ""), set{"sub": 42})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid",
		},
		{
			name: "unknown subject",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, "nobody")
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonUnknownIdentity, challenge: "invalid",
		},
		{
			name: "expired",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": at(-time.Minute)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenExpired, challenge: "expired", wantIs: jwt.ErrTokenExpired,
		},
		{
			name: "expired within the leeway",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": at(-DefaultLeeway + time.Second)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "exactly at exp plus leeway",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": at(-DefaultLeeway)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenExpired, challenge: "expired",
		},
		{
			name: "expired and for another audience",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": at(-time.Minute), "aud": "other"})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenInvalidAudience,
		},
		{
			name: "expired but signed by a stranger",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": at(-time.Minute)})
				return bearer(sign(t, jwt.SigningMethodRS256, rsaStranger(), "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "no exp",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"exp": nil})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid",
			wantIs: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "not yet valid",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"nbf": at(time.Minute)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenNotValidYet,
		},
		{
			name: "not before within the leeway",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"nbf": at(DefaultLeeway)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			wantID: alice.ID, wantSigner: "sigjwks",
		},
		{
			name: "issued in the future",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"iat": at(time.Minute)})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenUsedBeforeIssued,
		},
		{
			name: "unknown issuer",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims("https://evil.example.com", alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrUnknownIssuer,
		},
		{
			name: "issuer differs only by a trailing slash",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS+"/", alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrUnknownIssuer,
		},
		{
			name: "no issuer",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"iss": nil})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrUnknownIssuer,
		},
		{
			name: "wrong audience",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"aud": "someone-else"})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenInvalidAudience,
		},
		{
			name: "no audience",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := with(claims(issJWKS, alice.ID), set{"aud": nil})
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid",
		},
		{
			name: "disabled signer",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issOff, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrUnknownIssuer,
		},
		{
			name: "signer disabled after it was used",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", c))
			},
			setup: func(t *testing.T, f *extJWTFixture) {
				tok := sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", claims(issJWKS, alice.ID))
				res, err := f.auth.Authenticate(context.Background(), bearer(tok))
				checkLogin(t, res, err, "")
				s, err := f.store.GetExtJWTSigner(context.Background(), "sigjwks")
				if err != nil {
					t.Fatalf("GetExtJWTSigner: %v", err)
				}
				s.Enabled = false
				if err := f.store.UpdateExtJWTSigner(context.Background(), s); err != nil {
					t.Fatalf("UpdateExtJWTSigner: %v", err)
				}
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrUnknownIssuer,
		},
		{
			name: "alg none",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				none := jwt.UnsafeAllowNoneSignatureType
				return bearer(sign(t, jwt.SigningMethodNone, none, "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "HS256 keyed with the signer's public key PEM",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issPub, alice.ID)
				return bearer(sign(t, jwt.SigningMethodHS256, []byte(f.pubPEM), "", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "HS256 keyed with the JWK's modulus",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodHS256, rsaKey().N.Bytes(), "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "HS512",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issPub, alice.ID)
				return bearer(sign(t, jwt.SigningMethodHS512, []byte(f.pubPEM), "", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "ES256 token naming the RSA kid",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrNoKey,
		},
		{
			name: "PS384 is not allowed",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodPS384, rsaKey(), "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "ES256 against the P-384 certificate",
			header: func(t *testing.T, f *extJWTFixture) string {
				c := claims(issPEM, alice.ID)
				return bearer(sign(t, jwt.SigningMethodES256, f.ec256, "", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrNoKey,
		},
		{
			name: "signed by a stranger with a known kid",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodRS256, rsaStranger(), "rsa-1", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "claims altered after signing",
			header: func(t *testing.T, f *extJWTFixture) string {
				tok := sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", claims(issJWKS, bob.ID))
				parts := strings.Split(tok, ".")
				body, _ := json.Marshal(claims(issJWKS, alice.ID))
				parts[1] = base64.RawURLEncoding.EncodeToString(body)
				return bearer(strings.Join(parts, "."))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenSignatureInvalid,
		},
		{
			name: "unknown kid",
			header: func(t *testing.T, _ *extJWTFixture) string {
				c := claims(issJWKS, alice.ID)
				return bearer(sign(t, jwt.SigningMethodRS256, rsaStranger(), "rsa-2", c))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrNoKey,
		},
		{
			name:   "no header",
			header: func(*testing.T, *extJWTFixture) string { return "" },
			want:   ReasonNoToken, challenge: "missing",
		},
		{
			name:   "scheme without token",
			header: func(*testing.T, *extJWTFixture) string { return "Bearer   " },
			want:   ReasonNoToken, challenge: "missing",
		},
		{
			name:   "another scheme",
			header: func(*testing.T, *extJWTFixture) string { return "Basic YWxpY2U6c2VjcmV0" },
			want:   ReasonNoToken, challenge: "missing",
		},
		{
			name:   "token without scheme",
			header: func(*testing.T, *extJWTFixture) string { return "eyJhbGciOiJub25lIn0.e30." },
			want:   ReasonNoToken, challenge: "missing",
		},
		{
			name:   "garbage token",
			header: func(*testing.T, *extJWTFixture) string { return "Bearer not-a-jwt" },
			want:   ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenMalformed,
		},
		{
			name:   "three garbage segments",
			header: func(*testing.T, *extJWTFixture) string { return "Bearer a.b.c" },
			want:   ReasonTokenInvalid, challenge: "invalid", wantIs: jwt.ErrTokenMalformed,
		},
		{
			name: "token over the size cap",
			header: func(*testing.T, *extJWTFixture) string {
				return bearer(strings.Repeat("a", MaxTokenBytes+1))
			},
			want: ReasonTokenInvalid, challenge: "invalid", wantIs: ErrTokenTooLarge,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExtJWTFixture(t)
			if tc.setup != nil {
				tc.setup(t, f)
			}

			res, err := f.auth.Authenticate(context.Background(), tc.header(t, f))

			checkLogin(t, res, err, tc.want)
			if tc.want != "" {
				if got := Challenge(err); got != tc.challenge {
					t.Errorf("Challenge = %q, want %q", got, tc.challenge)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %v does not match %v", err, tc.wantIs)
				}
				return
			}
			if res.Identity.ID != tc.wantID || res.Method != MethodExtJWT {
				t.Errorf("identity %s by %s, want %s by %s",
					res.Identity.ID, res.Method, tc.wantID, MethodExtJWT)
			}
			a := res.Authenticator
			if a.ID != tc.wantSigner || a.IdentityID != tc.wantID || a.Method != MethodExtJWT {
				t.Errorf("authenticator = %+v, want id %s, identity %s, method %s",
					a, tc.wantSigner, tc.wantID, MethodExtJWT)
			}
			if res.Certificate != nil {
				t.Errorf("ext-jwt login gave a certificate %+v", res.Certificate)
			}
		})
	}
}

// login logs alice in through sigjwks with an ES256 token that key signed
// under kid, issued at the clock's now.
func (f *extJWTFixture) login(t *testing.T, key crypto.Signer, kid string) error {
	t.Helper()
	m := jwt.SigningMethod(jwt.SigningMethodES256)
	c := claims(issJWKS, alice.ID)
	c["iat"], c["exp"] = f.clock.Now().Unix(), f.clock.Now().Add(5*time.Minute).Unix()
	_, err := f.auth.Authenticate(context.Background(), bearer(sign(t, m, key, kid, c)))
	return err
}

func TestExtJWTKeyRotation(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	next := newECKey(t, elliptic.P256())

	if err := f.login(t, f.ec256, "ec-1"); err != nil {
		t.Fatalf("login with the first key: %v", err)
	}
	f.jwks.setKeys(toJWK(t, "ec-2", next.Public()))
	f.clock.Advance(time.Minute)

	err := f.login(t, next, "ec-2")

	if err != nil {
		t.Fatalf("login with the rotated key: %v", err)
	}
	if got := f.jwks.hits.Load(); got != 2 {
		t.Errorf("jwks fetched %d times, want 2", got)
	}
	// The withdrawn key went with the old document.
	if err := f.login(t, f.ec256, "ec-1"); !errors.Is(err, ErrNoKey) {
		t.Errorf("login with the withdrawn key: %v, want ErrNoKey", err)
	}
}

func TestExtJWTRefreshLimit(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	stranger := newECKey(t, elliptic.P256())

	steps := []struct {
		name     string
		advance  time.Duration
		kid      string
		key      crypto.Signer
		wantErr  error
		wantHits int64
	}{
		{name: "first login fetches", kid: "ec-1", key: f.ec256, wantHits: 1},
		{name: "unknown kid at once", kid: "nope", key: stranger, wantErr: ErrNoKey, wantHits: 1},
		{name: "again", kid: "nope-2", key: stranger, wantErr: ErrNoKey, wantHits: 1},
		{
			name: "just before MinRefresh", advance: time.Minute - time.Second,
			kid: "nope", key: stranger, wantErr: ErrNoKey, wantHits: 1,
		},
		{
			name: "at MinRefresh", advance: time.Second,
			kid: "nope", key: stranger, wantErr: ErrNoKey, wantHits: 2,
		},
		{name: "allowance spent", kid: "nope", key: stranger, wantErr: ErrNoKey, wantHits: 2},
		{name: "known kid costs nothing", kid: "ec-1", key: f.ec256, wantHits: 2},
	}
	for _, st := range steps {
		f.clock.Advance(st.advance)

		err := f.login(t, st.key, st.kid)

		if st.wantErr == nil && err != nil || !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: login error %v, want %v", st.name, err, st.wantErr)
		}
		if st.wantErr != nil && Challenge(err) != "invalid" {
			t.Fatalf("%s: Challenge = %q, want invalid", st.name, Challenge(err))
		}
		if got := f.jwks.hits.Load(); got != st.wantHits {
			t.Fatalf("%s: jwks fetched %d times, want %d", st.name, got, st.wantHits)
		}
	}
}

// TestExtJWTNoStampede sends many logins with a new kid at once: they must
// share one fetch.
func TestExtJWTNoStampede(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	next := newECKey(t, elliptic.P256())
	if err := f.login(t, f.ec256, "ec-1"); err != nil {
		t.Fatalf("first login: %v", err)
	}
	f.jwks.setKeys(toJWK(t, "ec-1", f.ec256.Public()), toJWK(t, "ec-2", next.Public()))
	f.clock.Advance(time.Hour - time.Second) // past MinRefresh, before MaxKeyAge

	const logins = 32
	c := with(claims(issJWKS, alice.ID), set{
		"iat": f.clock.Now().Unix(),
		"exp": f.clock.Now().Add(time.Minute).Unix(),
	})
	tok := sign(t, jwt.SigningMethodES256, next, "ec-2", c)
	errs := make(chan error, logins)
	var wg sync.WaitGroup
	for range logins {
		wg.Go(func() {
			_, err := f.auth.Authenticate(context.Background(), bearer(tok))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)

	for err := range errs {
		if err != nil {
			t.Errorf("concurrent login: %v", err)
		}
	}
	if got := f.jwks.hits.Load(); got != 2 {
		t.Errorf("jwks fetched %d times, want 2", got)
	}
}

func TestExtJWTKeysAge(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name     string
		change   func(t *testing.T, f *extJWTFixture)
		wantErr  error
		wantHits int64
	}{
		{
			// The issuer withdrew the key: after MaxKeyAge it is refused.
			name: "withdrawn key is dropped",
			change: func(t *testing.T, f *extJWTFixture) {
				f.jwks.setKeys(toJWK(t, "ed-1", f.ed.Public()))
			},
			wantErr:  ErrNoKey,
			wantHits: 2,
		},
		{
			name: "failing refetch keeps the old keys",
			change: func(_ *testing.T, f *extJWTFixture) {
				f.jwks.setStatus(http.StatusServiceUnavailable)
			},
			wantHits: 2,
		},
		{
			name: "garbage refetch keeps the old keys",
			change: func(_ *testing.T, f *extJWTFixture) {
				f.jwks.setKeys(set{"kty": "oct", "k": "c2VjcmV0"})
			},
			wantHits: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExtJWTFixture(t)
			if err := f.login(t, f.ec256, "ec-1"); err != nil {
				t.Fatalf("first login: %v", err)
			}
			tc.change(t, f)
			f.clock.Advance(DefaultMaxKeyAge)

			err := f.login(t, f.ec256, "ec-1")

			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("login error %v, want %v", err, tc.wantErr)
			}
			if got := f.jwks.hits.Load(); got != tc.wantHits {
				t.Fatalf("jwks fetched %d times, want %d", got, tc.wantHits)
			}
			// Within MinRefresh nothing is fetched again.
			_ = f.login(t, f.ec256, "ec-1")
			if got := f.jwks.hits.Load(); got != tc.wantHits {
				t.Fatalf("jwks fetched %d times after a second login, want %d", got, tc.wantHits)
			}
		})
	}
}

func TestExtJWTKeySourceFailures(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name   string
		status int                         // of the JWKS server; 0 leaves it healthy
		change func(s *store.ExtJWTSigner) // applied to sigjwks
		wantIs error
	}{
		{name: "endpoint down", status: http.StatusInternalServerError, wantIs: ErrJWKS},
		{
			name:   "endpoint not found",
			change: func(s *store.ExtJWTSigner) { s.JWKSEndpoint += "/missing" },
			wantIs: ErrJWKS,
		},
		{
			name:   "endpoint not https",
			change: func(s *store.ExtJWTSigner) { s.JWKSEndpoint = "http://idp.example.com/jwks" },
			wantIs: ErrJWKS,
		},
		{
			name:   "pem is garbage",
			change: func(s *store.ExtJWTSigner) { s.JWKSEndpoint, s.CertPEM = "", "not pem" },
			wantIs: ErrSignerKey,
		},
		{
			name:   "no key source",
			change: func(s *store.ExtJWTSigner) { s.JWKSEndpoint = "" },
			wantIs: ErrSignerConfig,
		},
		{
			name:   "no audience",
			change: func(s *store.ExtJWTSigner) { s.Audience = "" },
			wantIs: ErrSignerConfig,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExtJWTFixture(t)
			if tc.status != 0 {
				f.jwks.setStatus(tc.status)
			}
			if tc.change != nil {
				s, err := f.store.GetExtJWTSigner(context.Background(), "sigjwks")
				if err != nil {
					t.Fatalf("GetExtJWTSigner: %v", err)
				}
				tc.change(s)
				if err := f.store.UpdateExtJWTSigner(context.Background(), s); err != nil {
					t.Fatalf("UpdateExtJWTSigner: %v", err)
				}
			}

			err := f.login(t, f.ec256, "ec-1")

			checkLogin(t, nil, err, ReasonTokenInvalid)
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %v does not match %v", err, tc.wantIs)
			}
		})
	}
}

// TestExtJWTRedirectToHTTP refuses keys that the JWKS endpoint redirected
// to plain HTTP.
func TestExtJWTRedirectToHTTP(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	plain := httptest.NewServer(f.jwks.srv.Config.Handler)
	t.Cleanup(plain.Close)
	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/jwks", http.StatusFound))
	t.Cleanup(redirect.Close)
	f.auth.cfg.HTTPClient = redirect.Client()
	s, err := f.store.GetExtJWTSigner(context.Background(), "sigjwks")
	if err != nil {
		t.Fatalf("GetExtJWTSigner: %v", err)
	}
	s.JWKSEndpoint = redirect.URL + "/jwks"
	if err := f.store.UpdateExtJWTSigner(context.Background(), s); err != nil {
		t.Fatalf("UpdateExtJWTSigner: %v", err)
	}

	err = f.login(t, f.ec256, "ec-1")

	checkLogin(t, nil, err, ReasonTokenInvalid)
	if !errors.Is(err, ErrJWKS) {
		t.Fatalf("error %v does not match ErrJWKS", err)
	}
	if f.jwks.hits.Load() != 1 {
		t.Fatalf("the plain HTTP endpoint was asked %d times, want 1", f.jwks.hits.Load())
	}
}

// TestExtJWTSharedIssuer has two signers with one issuer and different
// audiences: each token logs in through the signer of its audience.
func TestExtJWTSharedIssuer(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	second := &store.ExtJWTSigner{
		ID: "sigjwks2", Name: "jwks-2", Issuer: issJWKS, Audience: "other-app",
		JWKSEndpoint: f.jwks.URL(), Enabled: true,
	}
	if err := f.store.CreateExtJWTSigner(context.Background(), second); err != nil {
		t.Fatalf("CreateExtJWTSigner: %v", err)
	}

	cases := []struct {
		name       string
		claims     jwt.MapClaims
		want       Reason
		wantSigner string
	}{
		{name: "first audience", claims: claims(issJWKS, alice.ID), wantSigner: "sigjwks"},
		{
			name:       "second audience",
			claims:     with(claims(issJWKS, alice.ID), set{"aud": "other-app"}),
			wantSigner: "sigjwks2",
		},
		{
			name:   "expired for the second audience",
			claims: with(claims(issJWKS, alice.ID), set{"aud": "other-app", "exp": at(-time.Hour)}),
			want:   ReasonTokenExpired,
		},
		{
			name:   "neither audience",
			claims: with(claims(issJWKS, alice.ID), set{"aud": "third"}),
			want:   ReasonTokenInvalid,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodES256, f.ec256, "ec-1", tc.claims)

			res, err := f.auth.Authenticate(context.Background(), bearer(tok))

			checkLogin(t, res, err, tc.want)
			if tc.want == "" && res.Authenticator.ID != tc.wantSigner {
				t.Errorf("signer %s, want %s", res.Authenticator.ID, tc.wantSigner)
			}
		})
	}
}

func TestExtJWTStoreFailure(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		fail func(f *failingStore)
	}{
		{name: "list signers", fail: func(f *failingStore) { f.failSigners = true }},
		{name: "get identity", fail: func(f *failingStore) { f.failIdentity = true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newExtJWTFixture(t)
			fs := &failingStore{Store: f.store, err: fmt.Errorf("bolt: %w", store.ErrUnavailable)}
			tc.fail(fs)
			f.auth.cfg.Store = fs

			err := f.login(t, f.ec256, "ec-1")

			if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrInvalidAuth) {
				t.Fatalf("error = %v, want a store error that is not ErrInvalidAuth", err)
			}
		})
	}
}

// pagingStore hands out signers one at a time, as a store with a small page
// would.
type pagingStore struct{ store.Store }

func (p pagingStore) ListExtJWTSigners(
	ctx context.Context,
	pg store.Page,
) ([]*store.ExtJWTSigner, int, error) {
	pg.Limit = 1
	return p.Store.ListExtJWTSigners(ctx, pg)
}

func TestExtJWTPagesThroughSigners(t *testing.T) {
	t.Parallel()
	f := newExtJWTFixture(t)
	f.auth.cfg.Store = pagingStore{f.store}

	// "pub" sorts last by name.
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "", claims(issPub, alice.ID))
	res, err := f.auth.Authenticate(context.Background(), bearer(tok))

	checkLogin(t, res, err, "")
}

func TestChallenge(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil, want: ""},
		{name: "no token", err: &LoginError{Reason: ReasonNoToken}, want: "missing"},
		{name: "expired", err: &LoginError{Reason: ReasonTokenExpired}, want: "expired"},
		{name: "invalid", err: &LoginError{Reason: ReasonTokenInvalid}, want: "invalid"},
		{name: "no identity", err: &LoginError{Reason: ReasonUnknownIdentity}, want: "invalid"},
		{
			name: "wrapped",
			err:  fmt.Errorf("login: %w", &LoginError{Reason: ReasonTokenExpired}),
			want: "expired",
		},
		{name: "rate limited", err: ErrRateLimited, want: "invalid"},
		{name: "other", err: errors.New("boom"), want: "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Challenge(tc.err); got != tc.want {
				t.Errorf("Challenge = %q, want %q", got, tc.want)
			}
			want := ""
			if tc.want != "" {
				want = `Bearer realm="openziti-primary-ext-jwt" error="` + tc.want + `"`
			}
			if got := BearerChallenge(tc.err); got != want {
				t.Errorf("BearerChallenge = %q, want %q", got, want)
			}
		})
	}
}

func FuzzExtJWT(f *testing.F) {
	fx := newExtJWTFixture(f)
	valid := sign(f, jwt.SigningMethodES256, fx.ec256, "ec-1", claims(issJWKS, alice.ID))
	for _, seed := range []string{
		"",
		"Bearer",
		"Bearer ",
		"bearer " + valid,
		"Bearer " + valid,
		"Bearer " + valid + ".x",
		"Bearer a.b.c",
		"Bearer ..",
		"Basic " + valid,
		"Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.",
		"Bearer " + sign(f, jwt.SigningMethodHS256, []byte(fx.pubPEM), "", claims(issPub, bob.ID)),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, header string) {
		res, err := fx.auth.Authenticate(context.Background(), header)
		if err == nil {
			// Only the one genuine token may succeed, however the header
			// around it is spelled.
			if tok, _ := bearerToken(header); tok != valid {
				t.Fatalf("header %q logged in as %s", header, res.Identity.Name)
			}
			return
		}
		if !errors.Is(err, ErrInvalidAuth) {
			t.Fatalf("header %q: error %v is not a login failure", header, err)
		}
		if Challenge(err) == "" {
			t.Fatalf("header %q: empty challenge", header)
		}
	})
}

package auth

import (
	"context"
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
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Errors about the keys of external JWT signers. ExtJWT carries them in
// LoginError.Err, so they reach the log but never the client.
var (
	// ErrNoKey is returned when no key of the signer fits the token's kid
	// and alg, even after the key set was refreshed (if allowed).
	ErrNoKey = errors.New("auth: no signer key matches the token")

	// ErrSignerKey is returned when a signer's CertPEM holds no usable
	// public key: not PEM, not a CERTIFICATE or PUBLIC KEY, an unsupported
	// key type or curve, or an RSA key under MinRSABits.
	ErrSignerKey = errors.New("auth: unusable signer key")

	// ErrJWKS is returned when a JWKS endpoint could not be fetched or its
	// document held no usable key, and no earlier keys were cached.
	ErrJWKS = errors.New("auth: jwks unavailable")
)

// MinRSABits is the smallest RSA modulus, in bits, accepted for a JWT
// signing key, the same floor the CA applies to CSRs.
const MinRSABits = 2048

// Limits on what a JWKS endpoint may send. Real key sets are a few KiB.
const (
	maxJWKSBytes = 1 << 20
	maxJWKSKeys  = 100
)

// sigKey is one verification key with what restricts its use.
type sigKey struct {
	kid string
	alg string // the JWK's "alg", empty when it does not name one
	pub crypto.PublicKey
}

// fits reports whether the key may verify a token with this alg and kid. An
// empty kid in the token matches every key; the algorithm must always match
// the key type, which is what stops algorithm confusion.
func (k sigKey) fits(alg, kid string) bool {
	if kid != "" && k.kid != kid {
		return false
	}
	if k.alg != "" && k.alg != alg {
		return false
	}
	return algFitsKey(alg, k.pub)
}

// algFitsKey reports whether alg is an allowed algorithm for pub's type.
func algFitsKey(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "RS384" || alg == "RS512" || alg == "PS256"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		}
		return false
	case ed25519.PublicKey:
		return alg == "EdDSA"
	default:
		return false
	}
}

// CheckSignerKey refuses key types, curves and sizes no allowed algorithm
// can use: it accepts an RSA key of at least MinRSABits, an ECDSA key on
// P-256 or P-384, and an Ed25519 key. Logins apply it to every key of a
// signer, so that a key set never holds a key that could only fail later;
// administration applies it when a signer's key is set, so that such a key
// is refused at once. The error says why, in lower case, without a prefix.
func CheckSignerKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("rsa key of %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ecdsa curve %s is not P-256 or P-384", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("unsupported key type %T, want RSA, ECDSA or Ed25519", pub)
	}
}

// parseSignerPEM returns the public key in a signer's CertPEM: the first
// CERTIFICATE or PUBLIC KEY block. A certificate is only a container for
// the key here; its validity dates do not limit the tokens, whose own exp
// does.
func parseSignerPEM(s string) (crypto.PublicKey, error) {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w: no CERTIFICATE or PUBLIC KEY block", ErrSignerKey)
		}
		var pub crypto.PublicKey
		switch b.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSignerKey, err)
			}
			pub = cert.PublicKey
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSignerKey, err)
			}
			pub = k
		default:
			continue
		}
		if err := CheckSignerKey(pub); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSignerKey, err)
		}
		return pub, nil
	}
}

// jwk is the part of an RFC 7517 JSON Web Key that a verifier reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS returns the usable signature keys of a JWKS document. Keys that
// are meant for encryption, of a type or curve no allowed algorithm uses, or
// malformed are skipped, because identity providers publish such keys next
// to the ones that sign; a document with no usable key is an error.
func parseJWKS(doc []byte) ([]sigKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("jwks holds %d keys, more than %d", len(set.Keys), maxJWKSKeys)
	}
	var keys []sigKey
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			continue
		}
		keys = append(keys, sigKey{kid: k.Kid, alg: k.Alg, pub: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks holds no usable signature key")
	}
	return keys, nil
}

// publicKey decodes the key material of k (RFC 7518 section 6, RFC 8037).
func (k *jwk) publicKey() (crypto.PublicKey, error) {
	b64 := base64.RawURLEncoding
	var pub crypto.PublicKey
	switch k.Kty {
	case "RSA":
		n, err := b64.DecodeString(k.N)
		if err != nil {
			return nil, fmt.Errorf("rsa n: %w", err)
		}
		e, err := b64.DecodeString(k.E)
		if err != nil {
			return nil, fmt.Errorf("rsa e: %w", err)
		}
		// Exponents beyond 32 bits are not used by real keys and would
		// not fit rsa.PublicKey.E on every platform.
		if len(e) == 0 || len(e) > 4 {
			return nil, errors.New("rsa e out of range")
		}
		ei := new(big.Int).SetBytes(e).Int64()
		if ei < 3 || ei%2 == 0 {
			return nil, errors.New("rsa e out of range")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ei)}
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("malformed ec point")
		}
		point := append(append([]byte{4}, x...), y...)
		ek, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("ec point: %w", err)
		}
		pub = ek
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("malformed ed25519 key")
		}
		pub = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("unsupported key type %q", k.Kty)
	}
	if err := CheckSignerKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// jwksCache holds the keys of one JWKS endpoint. Reads are cheap; fetches
// are serialised by a one-slot semaphore so that concurrent logins that all
// miss a key wait for a single fetch instead of each starting their own.
type jwksCache struct {
	endpoint string
	fetching chan struct{} // holding its slot grants the right to fetch

	mu        sync.Mutex
	keys      []sigKey
	fetchedAt time.Time // of the keys; zero before the first success
	triedAt   time.Time // of the last attempt, successful or not
	lastErr   error     // of the last attempt, nil after a success
}

func newJWKSCache(endpoint string) *jwksCache {
	return &jwksCache{endpoint: endpoint, fetching: make(chan struct{}, 1)}
}

// jwksFetcher is what a jwksCache needs from its ExtJWT.
type jwksFetcher struct {
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
}

// keysFor returns the cached keys that fit alg and kid. When none fit, or
// the keys are older than maxAge, it fetches the endpoint again unless the
// last attempt was less than minRefresh ago. A failed fetch keeps the keys
// from before it.
func (c *jwksCache) keysFor(ctx context.Context, f jwksFetcher, alg, kid string) ([]sigKey, error) {
	if fit, ok := c.fresh(f, alg, kid); ok {
		return fit, nil
	}

	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.fetching }()

	// Whoever held the slot before may have fetched what this caller
	// needs; the check against triedAt keeps waiters from fetching again.
	if fit, ok := c.fresh(f, alg, kid); ok {
		return fit, nil
	}
	c.mu.Lock()
	now := f.now()
	due := c.triedAt.IsZero() || now.Sub(c.triedAt) >= f.minRefresh
	if due {
		c.triedAt = now
	}
	c.mu.Unlock()

	if due {
		keys, err := c.fetch(ctx, f.client)
		c.mu.Lock()
		c.lastErr = err
		if err == nil {
			c.keys, c.fetchedAt = keys, now
		}
		c.mu.Unlock()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	fit := fitting(c.keys, alg, kid)
	switch {
	case len(fit) > 0:
		return fit, nil
	case len(c.keys) == 0 && c.lastErr != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrJWKS, c.endpoint, c.lastErr)
	case len(c.keys) == 0:
		return nil, fmt.Errorf("%w: %s: not fetched yet", ErrJWKS, c.endpoint)
	default:
		return nil, fmt.Errorf("%w: kid %q, alg %s", ErrNoKey, kid, alg)
	}
}

// fresh returns the fitting keys when there are some and they are not past
// maxAge.
func (c *jwksCache) fresh(f jwksFetcher, alg, kid string) ([]sigKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetchedAt.IsZero() || f.now().Sub(c.fetchedAt) >= f.maxAge {
		return nil, false
	}
	fit := fitting(c.keys, alg, kid)
	return fit, len(fit) > 0
}

func fitting(keys []sigKey, alg, kid string) []sigKey {
	var fit []sigKey
	for _, k := range keys {
		if k.fits(alg, kid) {
			fit = append(fit, k)
		}
	}
	return fit
}

// fetchTimeout bounds one JWKS fetch even when the injected client has no
// timeout of its own.
const fetchTimeout = 10 * time.Second

// fetch downloads and parses the key set. It does not stop when the login
// that triggered it is cancelled: the keys serve every later login, and
// minRefresh would otherwise lock out a retry.
func (c *jwksCache) fetch(ctx context.Context, client *http.Client) ([]sigKey, error) {
	u, err := url.Parse(c.endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	if u.Scheme != "https" {
		return nil, errors.New("endpoint is not https")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	// The client follows redirects; keys that arrived over plain HTTP
	// after one could have been swapped on the way.
	if resp.Request == nil || resp.Request.URL.Scheme != "https" {
		return nil, errors.New("redirected away from https")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(doc) > maxJWKSBytes {
		return nil, fmt.Errorf("body over %d bytes", maxJWKSBytes)
	}
	return parseJWKS(doc)
}

package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// MethodExtJWT is the Result.Method of an external JWT login, and the
// Authenticator.Method of the authenticator such a login reports.
const MethodExtJWT = "ext-jwt"

// ExtJWTRealm is the realm of the WWW-Authenticate challenge that a failed
// ext-jwt login answers with; see BearerChallenge.
const ExtJWTRealm = "openziti-primary-ext-jwt"

// Defaults applied by NewExtJWT to the zero fields of ExtJWTConfig.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat. Tokens
	// of external issuers often live only minutes, so the allowance is a
	// few seconds, not minutes.
	DefaultLeeway = 5 * time.Second

	// DefaultMinRefresh is the least time between two fetches of one JWKS
	// endpoint.
	DefaultMinRefresh = time.Minute

	// DefaultMaxKeyAge is how long fetched keys are used before the next
	// login fetches them again, so a key the issuer withdrew stops being
	// accepted.
	DefaultMaxKeyAge = time.Hour

	// DefaultJWKSTimeout is the timeout of the HTTP client made when none
	// is given.
	DefaultJWKSTimeout = 10 * time.Second
)

// Errors carried in LoginError.Err by ExtJWT, besides those of the key
// sources (ErrNoKey, ErrSignerKey, ErrJWKS) and of golang-jwt.
var (
	// ErrUnknownIssuer is returned when no enabled signer has the token's
	// iss as its Issuer.
	ErrUnknownIssuer = errors.New("auth: no enabled signer for the issuer")

	// ErrSignerConfig is returned when the signer that matches a token
	// cannot check it: no audience, or neither key source.
	ErrSignerConfig = errors.New("auth: signer is misconfigured")

	// ErrIdentityClaim is returned when the claim that names the identity
	// is missing, not a string, or empty.
	ErrIdentityClaim = errors.New("auth: identity claim missing or not a string")

	// ErrTokenTooLarge is returned for a token longer than MaxTokenBytes.
	ErrTokenTooLarge = errors.New("auth: token too large")
)

// MaxTokenBytes is the longest external JWT accepted, in bytes. Real tokens
// are a few KiB; the cap keeps parsing cost bounded.
const MaxTokenBytes = 16 << 10

// allowedAlgs are the signature algorithms an external JWT may use. HMAC and
// "none" are absent on purpose: a public key must never double as a shared
// secret.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// signerPageSize is the page size used to read all signers.
const signerPageSize = 500

// ExtJWTConfig configures an ExtJWT authenticator.
type ExtJWTConfig struct {
	// Store holds the signers and identities.
	Store store.Store
	// HTTPClient fetches JWKS documents; nil means a client with a
	// DefaultJWKSTimeout timeout. Tests pass the client of a TLS test
	// server.
	HTTPClient *http.Client
	// Now is the clock for claims and for key refresh; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeeway, a negative value none.
	Leeway time.Duration
	// MinRefresh is the least time between two fetches of one JWKS
	// endpoint, whatever tokens arrive; zero or less means
	// DefaultMinRefresh.
	MinRefresh time.Duration
	// MaxKeyAge is how long fetched keys are used before a login fetches
	// them again; zero or less means DefaultMaxKeyAge. A failed refetch
	// keeps the old keys.
	MaxKeyAge time.Duration
}

// ExtJWT authenticates JWTs of external issuers (ext-jwt signers). Signers
// are read from the store at every login, so an update, a disable or a
// delete takes effect at once; the keys of JWKS endpoints are cached. Safe
// for concurrent use.
type ExtJWT struct {
	cfg ExtJWTConfig

	mu   sync.Mutex
	jwks map[string]*jwksCache // by endpoint URL
}

// NewExtJWT returns an external JWT authenticator.
func NewExtJWT(cfg ExtJWTConfig) *ExtJWT {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MaxKeyAge <= 0 {
		cfg.MaxKeyAge = DefaultMaxKeyAge
	}
	return &ExtJWT{cfg: cfg, jwks: make(map[string]*jwksCache)}
}

// Authenticate logs in with the JWT in authorizationHeader, the value of the
// request's Authorization header ("Bearer <jwt>", the scheme in any case).
//
// The token's iss chooses the enabled signers with exactly that Issuer;
// the token must verify under one of them: an allowed algorithm that fits
// the key type, a key from the signer's CertPEM or JWKS (by kid), aud
// containing the signer's Audience, exp present and not passed, nbf and iat
// when present not in the future, all with the leeway. The signer's
// ClaimsProperty ("sub" when empty) names the identity by id, or by
// external id when UseExternalID is set.
//
// On success the Result carries the identity, Method MethodExtJWT and an
// Authenticator that stands for the signer: its ID is the signer's id
// (which the session records as its authenticatorId), its Method
// MethodExtJWT.
//
// A failed login returns a *LoginError (matching ErrInvalidAuth) with reason
// ReasonNoToken (no bearer token), ReasonTokenExpired (the token would be
// valid but for its exp), ReasonUnknownIdentity, or ReasonTokenInvalid for
// everything else; Challenge maps it to the WWW-Authenticate error. A
// failing store gives a wrapped store error instead.
func (x *ExtJWT) Authenticate(ctx context.Context, authorizationHeader string) (*Result, error) {
	raw, ok := bearerToken(authorizationHeader)
	if !ok {
		return nil, &LoginError{Reason: ReasonNoToken}
	}
	if len(raw) > MaxTokenBytes {
		return nil, &LoginError{Reason: ReasonTokenInvalid, Err: ErrTokenTooLarge}
	}

	// The issuer is read before any check, only to pick the signers that
	// will check everything, the issuer included.
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, &LoginError{Reason: ReasonTokenInvalid, Err: err}
	}
	signers, err := x.signersFor(ctx, iss)
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, &LoginError{Reason: ReasonTokenInvalid, Err: ErrUnknownIssuer}
	}

	// Several signers may share an issuer (one per audience, say). The
	// first under which the token verifies decides the identity.
	var errs []error
	expired := false
	for _, s := range signers {
		claims, err := x.verify(ctx, s, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("signer %s: %w", s.ID, err))
			expired = expired || expiredOnly(err)
			continue
		}
		return x.resolve(ctx, s, claims)
	}
	reason := ReasonTokenInvalid
	if expired {
		reason = ReasonTokenExpired
	}
	if len(errs) == 1 {
		return nil, &LoginError{Reason: reason, Err: errs[0]}
	}
	return nil, &LoginError{Reason: reason, Err: errors.Join(errs...)}
}

// Challenge returns the error value of the WWW-Authenticate challenge for a
// failed ext-jwt login: "missing" for ReasonNoToken, "expired" for
// ReasonTokenExpired and "invalid" for every other error. It returns "" for
// a nil error.
func Challenge(err error) string {
	if err == nil {
		return ""
	}
	var le *LoginError
	if errors.As(err, &le) {
		switch le.Reason {
		case ReasonNoToken:
			return "missing"
		case ReasonTokenExpired:
			return "expired"
		}
	}
	return "invalid"
}

// BearerChallenge returns the whole WWW-Authenticate value for a failed
// ext-jwt login, e.g. `Bearer realm="openziti-primary-ext-jwt"
// error="expired"`. It returns "" for a nil error.
func BearerChallenge(err error) string {
	if err == nil {
		return ""
	}
	return `Bearer realm="` + ExtJWTRealm + `" error="` + Challenge(err) + `"`
}

// bearerToken returns the credential of a Bearer Authorization header, and
// false when there is none: an empty header, another scheme, or no token.
func bearerToken(header string) (string, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// unverifiedIssuer reads iss without checking anything. Its only use is to
// choose the signers that then verify the token.
func unverifiedIssuer(raw string) (string, error) {
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return "", err
	}
	iss, err := tok.Claims.GetIssuer()
	if err != nil {
		return "", err
	}
	if iss == "" {
		return "", fmt.Errorf("%w: no iss claim", ErrUnknownIssuer)
	}
	return iss, nil
}

// signersFor returns the enabled signers whose Issuer is iss, ordered by
// name, and forgets the cached keys of endpoints no signer uses any more.
func (x *ExtJWT) signersFor(ctx context.Context, iss string) ([]*store.ExtJWTSigner, error) {
	var all []*store.ExtJWTSigner
	for {
		page, total, err := x.cfg.Store.ListExtJWTSigners(ctx,
			store.Page{Offset: len(all), Limit: signerPageSize})
		if err != nil {
			return nil, fmt.Errorf("auth: list ext-jwt signers: %w", err)
		}
		all = append(all, page...)
		if len(page) == 0 || len(all) >= total {
			break
		}
	}

	used := make(map[string]bool, len(all))
	var match []*store.ExtJWTSigner
	for _, s := range all {
		if s.JWKSEndpoint != "" {
			used[s.JWKSEndpoint] = true
		}
		if s.Enabled && s.Issuer == iss {
			match = append(match, s)
		}
	}
	x.mu.Lock()
	for ep := range x.jwks {
		if !used[ep] {
			delete(x.jwks, ep)
		}
	}
	x.mu.Unlock()
	return match, nil
}

// verify checks the signature and the registered claims of raw under s and
// returns the claims.
func (x *ExtJWT) verify(
	ctx context.Context,
	s *store.ExtJWTSigner,
	raw string,
) (jwt.MapClaims, error) {
	if s.Audience == "" {
		return nil, fmt.Errorf("%w: no audience", ErrSignerConfig)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(allowedAlgs),
		jwt.WithIssuer(s.Issuer),
		jwt.WithAudience(s.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(x.cfg.Leeway),
		jwt.WithTimeFunc(x.cfg.Now),
	)
	claims := jwt.MapClaims{}
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return x.keyFor(ctx, s, t.Method.Alg(), kid)
	}
	if _, err := p.ParseWithClaims(raw, claims, keyfunc); err != nil {
		return nil, err
	}
	return claims, nil
}

// keyFor returns the key (or keys, when the token names no kid) of s that
// may verify a token signed with alg. golang-jwt has already refused every
// alg outside allowedAlgs; the key type check here stops an allowed alg
// from being paired with a key of another type.
func (x *ExtJWT) keyFor(ctx context.Context, s *store.ExtJWTSigner, alg, kid string) (any, error) {
	switch {
	case s.CertPEM != "":
		pub, err := parseSignerPEM(s.CertPEM)
		if err != nil {
			return nil, err
		}
		if !algFitsKey(alg, pub) {
			return nil, fmt.Errorf("%w: alg %s does not fit the signer's key", ErrNoKey, alg)
		}
		return pub, nil
	case s.JWKSEndpoint != "":
		keys, err := x.cache(s.JWKSEndpoint).keysFor(ctx, jwksFetcher{
			client:     x.cfg.HTTPClient,
			now:        x.cfg.Now,
			minRefresh: x.cfg.MinRefresh,
			maxAge:     x.cfg.MaxKeyAge,
		}, alg, kid)
		if err != nil {
			return nil, err
		}
		if len(keys) == 1 {
			return keys[0].pub, nil
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
		for i, k := range keys {
			set.Keys[i] = crypto.PublicKey(k.pub)
		}
		return set, nil
	default:
		return nil, fmt.Errorf("%w: neither jwks endpoint nor pem", ErrSignerConfig)
	}
}

// cache returns the key cache of a JWKS endpoint, making it on first use.
func (x *ExtJWT) cache(endpoint string) *jwksCache {
	x.mu.Lock()
	defer x.mu.Unlock()
	c, ok := x.jwks[endpoint]
	if !ok {
		c = newJWKSCache(endpoint)
		x.jwks[endpoint] = c
	}
	return c
}

// resolve maps the verified claims of s to an identity.
func (x *ExtJWT) resolve(
	ctx context.Context,
	s *store.ExtJWTSigner,
	claims jwt.MapClaims,
) (*Result, error) {
	prop := s.ClaimsProperty
	if prop == "" {
		prop = "sub"
	}
	name, _ := claims[prop].(string)
	if name == "" {
		return nil, &LoginError{
			Reason: ReasonTokenInvalid,
			Err:    fmt.Errorf("%w: %q", ErrIdentityClaim, prop),
		}
	}

	var id *store.Identity
	var err error
	if s.UseExternalID {
		id, err = x.cfg.Store.FindIdentityByExternalID(ctx, name)
	} else {
		id, err = x.cfg.Store.GetIdentity(ctx, name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, &LoginError{Reason: ReasonUnknownIdentity}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: get identity: %w", err)
	}

	return &Result{
		Identity: id,
		Authenticator: &store.Authenticator{
			ID:         s.ID,
			IdentityID: id.ID,
			Method:     store.AuthMethod(MethodExtJWT),
			CreatedAt:  s.CreatedAt,
			UpdatedAt:  s.UpdatedAt,
		},
		Method: MethodExtJWT,
	}, nil
}

// expiredOnly reports whether err says the token verified and failed only
// because exp has passed. Only then is "expired" useful to the client: a
// fresh token from the same issuer would succeed.
func expiredOnly(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenNotValidYet,
		jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrInvalidType,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

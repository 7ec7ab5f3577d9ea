package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// clientCert makes a self-signed client certificate valid from notBefore to
// notAfter: the kind a device brings from its own PKI.
func clientCert(t *testing.T, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func certPEM(c tls.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
}

// TestCertLogin logs in with a registered client certificate over a real
// mTLS handshake; the session lists that certificate as its own and an edge
// router admits it with the session's token. Unregistered, expired and
// absent certificates are refused.
func TestCertLogin(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	c := e.Client(nil)
	now := time.Now()
	registered := clientCert(t, "device-1", now.Add(-time.Hour), now.Add(time.Hour))
	expired := clientCert(t, "device-2", now.Add(-2*time.Hour), now.Add(-time.Hour))

	name := "device-1"
	it := models.IdentityType("User")
	created, err := c.Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &it},
	}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	id := *created.Payload.Data.ID
	method := "cert"
	for _, cert := range []tls.Certificate{registered, expired} {
		if _, err := c.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
			Body: &models.AuthenticatorCreate{Method: &method, IdentityID: &id, CertPem: certPEM(cert)},
		}, admin.Auth); err != nil {
			t.Fatal(err)
		}
	}

	certLogin := func(cert *tls.Certificate) (*authentication.AuthenticateOK, error) {
		return e.Client(e.NewHTTPClient(cert)).Authentication.Authenticate(
			&authentication.AuthenticateParams{Method: "cert", Auth: &models.Authenticate{}})
	}
	ok, err := certLogin(&registered)
	if err != nil {
		t.Fatalf("login with a registered certificate: %v", err)
	}
	s := &servertest.Session{Token: ok.ZtSession, ID: *ok.Payload.Data.ID, IdentityID: *ok.Payload.Data.IdentityID}
	if s.IdentityID != id {
		t.Errorf("logged in as %s, want %s", s.IdentityID, id)
	}
	list := listCerts(t, e, session{token: s.Token, id: s.ID, auth: authFor(s.Token)})
	if len(list) != 1 || *list[0].Fingerprint != fingerprintOf(registered.Leaf) ||
		*list[0].Subject != "CN=device-1" {
		t.Fatalf("session certificates = %+v, want the login certificate", list)
	}

	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	if _, code := admit(t, e, r, s.Token, certPEM(registered)); code != "" {
		t.Errorf("router admission of the login certificate: %s", code)
	}

	stranger := clientCert(t, "stranger", now.Add(-time.Hour), now.Add(time.Hour))
	for name, cert := range map[string]*tls.Certificate{
		"unregistered": &stranger, "expired": &expired, "none": nil,
	} {
		_, err := certLogin(cert)
		var unauth *authentication.AuthenticateUnauthorized
		if !errors.As(err, &unauth) || *unauth.Payload.Error.Code != "INVALID_AUTH" {
			t.Errorf("%s certificate: %v, want 401 INVALID_AUTH", name, err)
		}
	}
}

// TestExtJWTLogin logs in with JWTs of an external issuer whose key a JWKS
// endpoint (TLS, started here) publishes, and checks each way such a login
// fails over HTTP: 401 INVALID_AUTH with the one message for all, and a
// Bearer challenge that says only whether the token was missing, expired
// or invalid.
func TestExtJWTLogin(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Now())
	idp := newJWTIssuer(t)
	e := servertest.Start(t, servertest.Options{Clock: clock, JWKSClient: idp.jwks.Client(),
		// The limit of failed logins has tests of its own.
		Config: func(c *server.Config) { c.Logins.FailureBurst = 0 }})
	admin := e.Admin(t)
	c := e.Client(nil)
	aliceID := e.CreateIdentity(t, admin, "alice", "User", "alice-password")

	name, issuer, audience := "idp", "https://idp.example", "sessioncert"
	created, err := c.ExternalJwtSigners.CreateExternalJWTSigner(
		&external_jwt_signers.CreateExternalJWTSignerParams{Body: &models.ExternalJwtSignerCreate{
			Name: &name, Issuer: &issuer, Audience: &audience, JwksEndpoint: idp.jwks.URL + "/jwks",
		}}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	signerID := *created.Payload.Data.ID

	// claims are valid claims for alice, changed by set; a nil value
	// removes a claim.
	claims := func(set jwt.MapClaims) jwt.MapClaims {
		now := clock.Now()
		c := jwt.MapClaims{"iss": issuer, "aud": audience, "sub": aliceID,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		for k, v := range set {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return c
	}
	publicPEM := func() []byte {
		idp.mu.Lock()
		defer idp.mu.Unlock()
		der, err := x509.MarshalPKIXPublicKey(idp.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	const challenge = `Bearer realm="openziti-primary-ext-jwt" error=`

	// The cases run in order: each may change the issuer, the clock or the
	// signer for those after it.
	var message string
	for _, tc := range []struct {
		name   string
		before func(t *testing.T)
		token  func(t *testing.T) string // "" sends no Authorization header
		status int
		want   string // the WWW-Authenticate value; "" for none
	}{
		{name: "valid", status: 200,
			token: func(t *testing.T) string { return idp.sign(t, claims(nil)) }},
		{name: "key rotation picks up the new kid", status: 200,
			before: func(t *testing.T) {
				idp.rotate(t, "k2")
				clock.Advance(auth.DefaultMinRefresh)
			},
			token: func(t *testing.T) string { return idp.sign(t, claims(nil)) }},
		{name: "expired", status: 401, want: challenge + `"expired"`,
			token: func(t *testing.T) string {
				return idp.sign(t, claims(jwt.MapClaims{"exp": clock.Now().Add(-time.Hour).Unix()}))
			}},
		{name: "not yet valid", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				return idp.sign(t, claims(jwt.MapClaims{"nbf": clock.Now().Add(time.Hour).Unix(),
					"exp": clock.Now().Add(2 * time.Hour).Unix()}))
			}},
		{name: "wrong issuer", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				return idp.sign(t, claims(jwt.MapClaims{"iss": "https://other.example"}))
			}},
		{name: "wrong audience", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				return idp.sign(t, claims(jwt.MapClaims{"aud": "someone-else"}))
			}},
		{name: "alg none", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				return signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k2", claims(nil))
			}},
		{name: "HS256 with the public key as the secret", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				return signJWT(t, jwt.SigningMethodHS256, publicPEM(), "k2", claims(nil))
			}},
		{name: "unknown kid", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string {
				stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return signJWT(t, jwt.SigningMethodES256, stranger, "k9", claims(nil))
			}},
		{name: "unknown subject", status: 401, want: challenge + `"invalid"`,
			token: func(t *testing.T) string { return idp.sign(t, claims(jwt.MapClaims{"sub": "nobody"})) }},
		{name: "missing", status: 401, want: challenge + `"missing"`,
			token: func(*testing.T) string { return "" }},
		{name: "garbage", status: 401, want: challenge + `"invalid"`,
			token: func(*testing.T) string { return "not.a.jwt" }},
		{name: "disabled signer", status: 401, want: challenge + `"invalid"`,
			before: func(t *testing.T) {
				status, _, _ := rawCall(t, e, "PATCH", "/edge/management/v1/external-jwt-signers/"+signerID,
					"application/json", `{"enabled":false}`, map[string]string{"zt-session": admin.Token})
				if status != 200 {
					t.Fatalf("disable the signer: status %d", status)
				}
			},
			token: func(t *testing.T) string { return idp.sign(t, claims(nil)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			hdr := map[string]string{}
			if tok := tc.token(t); tok != "" {
				hdr["Authorization"] = "Bearer " + tok
			}

			status, h, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=ext-jwt",
				"application/json", `{}`, hdr)

			if status != tc.status {
				code := ""
				if env.Error != nil {
					code = *env.Error.Code
				}
				t.Fatalf("status %d %s, want %d", status, code, tc.status)
			}
			if got := h.Values("WWW-Authenticate"); strings.Join(got, ", ") != tc.want {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.want)
			}
			if status == 200 {
				if h.Get("zt-session") == "" {
					t.Error("no zt-session header")
				}
				return
			}
			if *env.Error.Code != "INVALID_AUTH" {
				t.Errorf("code %s, want INVALID_AUTH", *env.Error.Code)
			}
			if message == "" {
				message = *env.Error.Message
			}
			if *env.Error.Message != message {
				t.Errorf("message %q differs from the other failures' %q", *env.Error.Message, message)
			}
		})
	}
}

// clientFrom returns a client of e whose connections come from ip, a
// loopback address, so that one test can log in from several sources.
func clientFrom(e *servertest.Env, ip string) *http.Client {
	c := e.NewHTTPClient(nil)
	c.Transport.(*http.Transport).DialContext = (&net.Dialer{
		Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)},
	}).DialContext
	return c
}

// loginReply is what a password login got: the status, and the error code
// and message of a refusal.
type loginReply struct {
	status        int
	code, message string
}

// tryLogin sends a password login through c. It returns an error instead
// of failing the test, so that goroutines may call it.
func tryLogin(c *http.Client, e *servertest.Env, username, password string) (loginReply, error) {
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return loginReply{}, err
	}
	return tryAuthenticate(c, e, "password", string(body))
}

// tryAuthenticate sends a login of method with body through c.
func tryAuthenticate(c *http.Client, e *servertest.Env, method, body string) (loginReply, error) {
	resp, err := c.Post(e.URL+"/edge/client/v1/authenticate?method="+method, "application/json",
		strings.NewReader(body))
	if err != nil {
		return loginReply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	r := loginReply{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		return r, nil
	}
	var env models.APIErrorEnvelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return r, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if env.Error == nil {
		return r, fmt.Errorf("status %d without the error envelope", resp.StatusCode)
	}
	r.code, r.message = *env.Error.Code, *env.Error.Message
	return r, nil
}

// failedLogins counts the login.failed events by reason.
func failedLogins(evs []audit.Event) map[string]int {
	n := map[string]int{}
	for _, ev := range evs {
		if ev.Type == audit.TypeLoginFailed {
			n[ev.Reason]++
		}
	}
	return n
}

// checkGate is a store whose FindAuthenticatorByUsername and
// FindAuthenticatorByFingerprint, the first step of a password and of a
// certificate check, wait once armed until the test opens the gate, so that
// all logins of a test are in flight together. It counts the checks that
// reached it.
type checkGate struct {
	store.Store

	mu      sync.Mutex
	changed *sync.Cond
	armed   bool
	open    bool
	checks  int // credential checks that reached the store since armed
	replies int // logins that got a reply, counted by the test
}

func newCheckGate() *checkGate {
	g := &checkGate{}
	g.changed = sync.NewCond(&g.mu)
	return g
}

// pass holds a check until the gate opens, if it is armed.
func (g *checkGate) pass() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.armed {
		return
	}
	g.checks++
	g.changed.Broadcast()
	for !g.open {
		g.changed.Wait()
	}
}

func (g *checkGate) FindAuthenticatorByUsername(
	ctx context.Context,
	username string,
) (*store.Authenticator, error) {
	g.pass()
	return g.Store.FindAuthenticatorByUsername(ctx, username)
}

func (g *checkGate) FindAuthenticatorByFingerprint(
	ctx context.Context,
	fingerprint string,
) (*store.Authenticator, error) {
	g.pass()
	return g.Store.FindAuthenticatorByFingerprint(ctx, fingerprint)
}

// do runs f under the gate's lock and tells the waiters.
func (g *checkGate) do(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
	g.changed.Broadcast()
}

// failingLogin is a login that fails with reason: a wrong password, or a
// client certificate no authenticator knows.
type failingLogin struct {
	method, reason string
	login          func(e *servertest.Env, c *http.Client) (loginReply, error)
	client         func(e *servertest.Env) *http.Client
}

// failingLogins returns one failing login of each method that the
// failed-login limits cover.
func failingLogins(t *testing.T) []failingLogin {
	t.Helper()
	now := time.Now()
	stranger := clientCert(t, "stranger", now.Add(-time.Hour), now.Add(time.Hour))
	return []failingLogin{
		{"password", "wrongPassword",
			func(e *servertest.Env, c *http.Client) (loginReply, error) {
				return tryLogin(c, e, "admin", "not-the-password")
			},
			func(e *servertest.Env) *http.Client { return e.HTTP }},
		{"cert", "unknownCertificate",
			func(e *servertest.Env, c *http.Client) (loginReply, error) {
				return tryAuthenticate(c, e, "cert", `{}`)
			},
			func(e *servertest.Env) *http.Client { return e.NewHTTPClient(&stranger) }},
	}
}

// TestLoginLimitParallel sends 40 failing logins at once with a limit of 3,
// holding every credential check until all 40 are either held there or
// answered: exactly 3 reach the check (as the store, the audit trail and
// the metrics count them) and the other 37 get 429 RATE_LIMITED. Password
// logins are limited by the password authenticator, certificate logins by
// the handler.
func TestLoginLimitParallel(t *testing.T) {
	const burst, n = 3, 40
	for _, tc := range failingLogins(t) {
		t.Run(tc.method, func(t *testing.T) {
			gate := newCheckGate()
			e := servertest.Start(t, servertest.Options{
				Config: func(c *server.Config) {
					c.Logins.FailureBurst = burst
					c.Logins.FailureEvery = time.Hour
				},
				WrapStore: func(st store.Store) store.Store { gate.Store = st; return gate },
			})
			t.Cleanup(func() { gate.do(func() { gate.open = true }) })
			c := tc.client(e)
			// One connection up before the burst, which then shares it,
			// leaves no dial racing the server's shutdown at the end.
			resp, err := c.Get(e.URL + "/edge/client/v1/version")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			before := scrape(t, e)
			gate.do(func() { gate.armed = true })

			var (
				wg      sync.WaitGroup
				replies = map[string]int{}
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := tc.login(e, c)
					gate.do(func() {
						gate.replies++
						if err != nil {
							replies[err.Error()]++
							return
						}
						replies[fmt.Sprint(r.status, " ", r.code)]++
					})
				}()
			}
			gate.do(func() {
				for gate.checks+gate.replies < n {
					gate.changed.Wait()
				}
				if gate.checks != burst {
					t.Errorf("%d logins reached the credential check together, want %d", gate.checks, burst)
				}
				gate.open = true
			})
			wg.Wait()
			want := map[string]int{"401 INVALID_AUTH": burst, "429 RATE_LIMITED": n - burst}
			if fmt.Sprint(replies) != fmt.Sprint(want) {
				t.Errorf("replies %v, want %v", replies, want)
			}

			after := scrape(t, e)
			for outcome, want := range map[string]float64{"invalid": burst, "rate_limited": n - burst} {
				labels := []string{"method", tc.method, "outcome", outcome}
				if got := value(after, "sessioncert_logins_total", labels...) -
					value(before, "sessioncert_logins_total", labels...); got != want {
					t.Errorf("sessioncert_logins_total%v moved by %v, want %v", labels, got, want)
				}
			}
			c.CloseIdleConnections()
			e.Stop()
			if got := failedLogins(auditEvents(t, e))[tc.reason]; got != burst {
				t.Errorf("%d logins audited as %s, want %d", got, tc.reason, burst)
			}
		})
	}
}

// TestLoginRefusalsAudited runs out the failed-login limit of one source
// and sends 50 more logins: the metrics count all 50 refusals, but the
// audit trail has one line for them. Once the limit regained an attempt
// that is spent again, the next run of refusals gets its own line.
func TestLoginRefusalsAudited(t *testing.T) {
	const refused = 50
	for _, tc := range failingLogins(t) {
		t.Run(tc.method, func(t *testing.T) {
			clock := &servertest.Clock{}
			clock.Set(time.Now())
			e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
				c.Logins.FailureBurst = 1
				c.Logins.FailureEvery = time.Minute
			}})
			c := tc.client(e)
			before := scrape(t, e)
			expect := func(n, status int) {
				t.Helper()
				for i := range n {
					r, err := tc.login(e, c)
					if err != nil || r.status != status {
						t.Fatalf("login %d of %d: %+v (%v), want status %d", i+1, n, r, err, status)
					}
				}
			}
			expect(1, 401)
			expect(refused, 429)
			after := scrape(t, e)
			labels := []string{"method", tc.method, "outcome", "rate_limited"}
			if got := value(after, "sessioncert_logins_total", labels...) -
				value(before, "sessioncert_logins_total", labels...); got != refused {
				t.Errorf("sessioncert_logins_total%v moved by %v, want %d", labels, got, refused)
			}
			clock.Advance(time.Minute)
			expect(1, 401)
			expect(3, 429)
			c.CloseIdleConnections()
			e.Stop()

			var got []string
			for _, ev := range auditEvents(t, e) {
				if ev.Type == audit.TypeLoginFailed {
					got = append(got, ev.Reason+" "+ev.Method+" "+ev.Source)
				}
			}
			first, limited := tc.reason+" "+tc.method+" 127.0.0.1", "rateLimited "+tc.method+" 127.0.0.1"
			want := strings.Join([]string{first, limited, first, limited}, "\n")
			if strings.Join(got, "\n") != want {
				t.Errorf("login.failed lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
			}
		})
	}
}

// TestLoginLimitPerUsernameAndSource logs in from several loopback
// addresses: a username is limited whatever the source, a source whatever
// the username, and a refusal costs neither.
func TestLoginLimitPerUsernameAndSource(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Logins.FailureBurst = 3
		c.Logins.FailureEvery = time.Hour
	}})
	e.CreateIdentity(t, e.Admin(t), "alice", "User", "alice-password")

	const (
		invalid = "401 INVALID_AUTH"
		limited = "429 RATE_LIMITED"
	)
	for i, s := range []struct {
		source, username, password, want string
	}{
		// Three wrong passwords for admin, each from its own source.
		{"127.0.0.2", "admin", "wrong", invalid},
		{"127.0.0.3", "admin", "wrong", invalid},
		{"127.0.0.4", "admin", "wrong", invalid},
		{"127.0.0.5", "admin", servertest.AdminPassword, limited},
		{"127.0.0.5", "nobody", "wrong", invalid},
		// Three unknown usernames from one source.
		{"127.0.0.6", "u1", "wrong", invalid},
		{"127.0.0.6", "u2", "wrong", invalid},
		{"127.0.0.6", "u3", "wrong", invalid},
		{"127.0.0.6", "alice", "alice-password", limited},
		{"127.0.0.7", "alice", "alice-password", "200 "},
	} {
		r, err := tryLogin(clientFrom(e, s.source), e, s.username, s.password)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := fmt.Sprint(r.status, " ", r.code); got != s.want {
			t.Fatalf("step %d: %s from %s: %s, want %s", i, s.username, s.source, got, s.want)
		}
	}
}

// TestLoginIgnoresConfigTypes logs in with half a megabyte of configTypes:
// the contract lets the server ignore them, and it does. The reply, the
// session as its owner and an administrator read it, and the stored record
// carry none, so that no login can make every read and every activity
// write of its session carry them.
func TestLoginIgnoresConfigTypes(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	types := make([]string, 2048)
	for i := range types {
		types[i] = fmt.Sprintf("%0256d", i)
	}
	body, err := json.Marshal(map[string]any{
		"username": "admin", "password": servertest.AdminPassword, "configTypes": types,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.HTTP.Post(e.URL+"/edge/client/v1/authenticate?method=password", "application/json",
		strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var login struct {
		Data struct {
			ID          string
			Token       string
			ConfigTypes []string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login with configTypes: %s (%v)", resp.Status, err)
	}

	for name, read := range map[string]struct{ path, token string }{
		"login reply":  {"", ""},
		"owner's read": {"/edge/client/v1/current-api-session", login.Data.Token},
		"admin's read": {"/edge/management/v1/api-sessions/" + login.Data.ID, admin.Token},
	} {
		t.Run(name, func(t *testing.T) {
			got := login.Data.ConfigTypes
			if read.path != "" {
				status, body := rawGet(t, e, read.path, read.token)
				var detail struct {
					Data struct{ ConfigTypes []string }
				}
				if err := json.Unmarshal([]byte(body), &detail); err != nil || status != 200 {
					t.Fatalf("GET %s: %d %.200s (%v)", read.path, status, body, err)
				}
				got = detail.Data.ConfigTypes
			}
			if got == nil || len(got) != 0 {
				t.Errorf("%d configTypes (null: %v), want []", len(got), got == nil)
			}
		})
	}
	stored, err := e.Server.Store().GetAPISession(context.Background(), login.Data.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.ConfigTypes) != 0 {
		t.Errorf("the stored session holds %d configTypes, want none", len(stored.ConfigTypes))
	}
}

package sdk_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/api_sessions"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/sdk"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// Requests the SDK makes, as the recorder names them.
const (
	reqLogin  = "POST /edge/client/v1/authenticate"
	reqCheck  = "GET /edge/client/v1/current-api-session"
	reqIssue  = "POST /edge/client/v1/current-api-session/certificates"
	reqLogout = "DELETE /edge/client/v1/current-api-session"
)

// recorder is an http.RoundTripper that notes the method and path of every
// request before passing it on.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// take returns the requests recorded since the last call.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// world is a controller with a settable clock and a user to log in as.
type world struct {
	e     *servertest.Env
	clock *servertest.Clock
	rec   *recorder
	c     *client.Sessioncert // records its requests in rec
}

const userPassword = "user-password"

func startWorld(t *testing.T, lifetime, timeout time.Duration) *world {
	t.Helper()
	clock := &servertest.Clock{}
	clock.Set(time.Now().UTC().Truncate(time.Second))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		c.Certs.Lifetime = lifetime
		c.SessionTimeout = timeout
	}})
	e.CreateIdentity(t, e.Admin(t), "user", "User", userPassword)

	rec := &recorder{next: e.HTTP.Transport}
	hc := &http.Client{Transport: rec}
	c := client.New(httptransport.NewWithClient(e.Host, client.DefaultBasePath,
		[]string{"https"}, hc), strfmt.Default)
	return &world{e: e, clock: clock, rec: rec, c: c}
}

func (w *world) newSDK(t *testing.T, creds sdk.Credentials) *sdk.SDK {
	t.Helper()
	s, err := sdk.New(sdk.Config{
		Client:      w.c,
		Credentials: creds,
		Now:         w.clock.Now,
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewTextHandler(testWriter{t}, opts))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// snapshot is what one use of the SDK handed out.
type snapshot struct {
	serial  *big.Int
	session string // the api session id named in the certificate's SPIFFE id
	token   string
}

func use(t *testing.T, s *sdk.SDK) snapshot {
	t.Helper()
	c, err := s.Credential(context.Background())
	if err != nil {
		t.Fatalf("credential: %v", err)
	}
	leaf := c.Certificate.Leaf
	if got := sessionOf(t, leaf); got != c.SessionID {
		t.Errorf("certificate of session %s handed out with session %s", got, c.SessionID)
	}
	return snapshot{serial: leaf.SerialNumber, session: c.SessionID, token: c.Token}
}

// sessionOf returns the api session id from a leaf's SPIFFE id.
func sessionOf(t *testing.T, leaf *x509.Certificate) string {
	t.Helper()
	if len(leaf.URIs) != 1 {
		t.Fatalf("leaf has %d URIs, want 1", len(leaf.URIs))
	}
	parts := strings.Split(leaf.URIs[0].Path, "/")
	i := slices.Index(parts, "apiSession")
	if i < 0 || i+1 >= len(parts) {
		t.Fatalf("no apiSession in %s", leaf.URIs[0])
	}
	return parts[i+1]
}

// TestLifecycle drives the clock through the life of an SDK's certificate
// and session, step by step: what each use asks the controller, and whether
// it hands out a new certificate or a new session.
func TestLifecycle(t *testing.T) {
	type step struct {
		name           string
		advance        time.Duration
		deleteSession  bool // the admin deletes the SDK's session first
		wantReqs       []string
		wantNewCert    bool
		wantNewSession bool
	}
	tests := []struct {
		name              string
		lifetime, timeout time.Duration
		steps             []step
	}{{
		// Window 11m (1m backdate): renewal 6m20s after issue. Session
		// checks 2m after the last request.
		name:     "renewal and session checks",
		lifetime: 10 * time.Minute, timeout: 3 * time.Minute,
		steps: []step{
			{name: "first use logs in and issues",
				wantReqs: []string{reqLogin, reqIssue}, wantNewCert: true, wantNewSession: true},
			{name: "fresh certificate is reused", advance: time.Minute},
			{name: "idle session is checked and kept", advance: 90 * time.Second,
				wantReqs: []string{reqCheck}},
			{name: "session is checked again", advance: 2 * time.Minute,
				wantReqs: []string{reqCheck}},
			{name: "certificate is renewed after 2/3 of its window", advance: 2 * time.Minute,
				wantReqs: []string{reqCheck, reqIssue}, wantNewCert: true},
			{name: "renewed certificate is reused", advance: 30 * time.Second},
			{name: "expired session logs in again", advance: 4 * time.Minute,
				wantReqs:    []string{reqCheck, reqLogin, reqIssue},
				wantNewCert: true, wantNewSession: true},
		},
	}, {
		// Window 4m: renewal 1m40s after issue; session checks after 20m.
		name:     "session deleted by an administrator",
		lifetime: 3 * time.Minute, timeout: 30 * time.Minute,
		steps: []step{
			{name: "first use logs in and issues",
				wantReqs: []string{reqLogin, reqIssue}, wantNewCert: true, wantNewSession: true},
			{name: "renewal finds the session ended and logs in again",
				advance: 2 * time.Minute, deleteSession: true,
				wantReqs:    []string{reqIssue, reqLogin, reqIssue},
				wantNewCert: true, wantNewSession: true},
			{name: "new session renews normally", advance: 2 * time.Minute,
				wantReqs: []string{reqIssue}, wantNewCert: true},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorld(t, tt.lifetime, tt.timeout)
			s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
			var last snapshot
			for _, st := range tt.steps {
				t.Run(st.name, func(t *testing.T) {
					w.clock.Advance(st.advance)
					if st.deleteSession {
						deleteSession(t, w.e, last.session)
					}
					w.rec.take()

					got := use(t, s)

					if reqs := w.rec.take(); !slices.Equal(reqs, st.wantReqs) {
						t.Errorf("requests = %q, want %q", reqs, st.wantReqs)
					}
					newCert := last.serial == nil || got.serial.Cmp(last.serial) != 0
					if newCert != st.wantNewCert {
						t.Errorf("new certificate = %v, want %v", newCert, st.wantNewCert)
					}
					if newSession := got.session != last.session; newSession != st.wantNewSession {
						t.Errorf("new session = %v, want %v", newSession, st.wantNewSession)
					}
					if newToken := got.token != last.token; newToken != st.wantNewSession {
						t.Errorf("new token = %v, want %v", newToken, st.wantNewSession)
					}
					last = got
				})
			}
		})
	}
}

func deleteSession(t *testing.T, e *servertest.Env, id string) {
	t.Helper()
	if _, err := e.Client(nil).APISessions.DeleteAPISession(
		&api_sessions.DeleteAPISessionParams{ID: id}, e.Admin(t).Auth); err != nil {
		t.Fatalf("delete session %s: %v", id, err)
	}
}

// TestTLSBeforeAndAfterRenewal connects to a server that requires a client
// certificate from the controller's CA, before and after a renewal: both
// handshakes succeed, and the server sees the renewed certificate.
func TestTLSBeforeAndAfterRenewal(t *testing.T) {
	w := startWorld(t, 3*time.Minute, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})

	bundle, err := os.ReadFile(filepath.Join(w.e.DataDir, "pki", "ca-bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(bundle) {
		t.Fatal("no certificate in the ca bundle")
	}
	echoSerial := func(w http.ResponseWriter, r *http.Request) {
		//nolint:gosec // G705: a plain-text reply to a test client, not a page
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].SerialNumber.String())
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echoSerial))
	srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  clientCAs,
		Time:       w.clock.Now, // the certificates live on the controller's clock
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cfg := s.TLSConfig()
	cfg.RootCAs = x509.NewCertPool()
	cfg.RootCAs.AddCert(srv.Certificate())
	// Without keep-alives every request is a new handshake.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	seen := func() string {
		t.Helper()
		res, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatalf("request with the sdk's certificate: %v", err)
		}
		defer func() { _ = res.Body.Close() }()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	current := func() string {
		t.Helper()
		cert, err := s.Certificate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.String()
	}

	before := seen()
	if want := current(); before != want {
		t.Errorf("server saw serial %s, the sdk holds %s", before, want)
	}
	w.clock.Advance(2 * time.Minute)
	after := seen()
	if after == before {
		t.Errorf("server saw serial %s again after the renewal point", after)
	}
	if want := current(); after != want {
		t.Errorf("server saw serial %s, the sdk holds %s", after, want)
	}
}

// TestCloseLogsOut checks that Close ends the session, so its token and
// certificates stop working, and that the SDK refuses use afterwards.
func TestCloseLogsOut(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
	cred, err := s.Credential(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := cred.Token
	w.rec.take()

	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	if reqs := w.rec.take(); !slices.Equal(reqs, []string{reqLogout}) {
		t.Errorf("close made requests %q, want one logout", reqs)
	}
	_, err = w.e.Client(nil).CurrentAPISession.GetCurrentAPISession(
		&current_api_session.GetCurrentAPISessionParams{},
		httptransport.APIKeyAuth("zt-session", "header", tok))
	if ae, ok := sdk.AsAPIError(err); !ok || ae.Code != sdk.CodeUnauthorized {
		t.Errorf("token after close: %v, want %s", err, sdk.CodeUnauthorized)
	}
	if _, err := s.Certificate(context.Background()); !errors.Is(err, sdk.ErrClosed) {
		t.Errorf("certificate after close: %v, want ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestLoginRefused checks that a failed login reaches the caller as the
// controller's INVALID_AUTH reply, for every use of the SDK, and that uses
// in the 10 seconds after a failure get its error without a new attempt.
func TestLoginRefused(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: "wrong"})
	ctx := context.Background()
	w.rec.take()
	uses := []struct {
		name string
		call func() error
	}{
		{"Certificate", func() error { _, err := s.Certificate(ctx); return err }},
		{"Credential", func() error { _, err := s.Credential(ctx); return err }},
		{"TLS handshake", func() error {
			_, err := s.TLSConfig().GetClientCertificate(&tls.CertificateRequestInfo{})
			return err
		}},
		{"Transport", func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://router.invalid/",
				nil)
			if err != nil {
				return err
			}
			res, err := s.Transport(nil).RoundTrip(req)
			if res != nil {
				_ = res.Body.Close()
			}
			return err
		}},
	}
	for _, u := range uses {
		t.Run(u.name, func(t *testing.T) {
			err := u.call()
			ae, ok := sdk.AsAPIError(err)
			if !ok || ae.Code != sdk.CodeInvalidAuth || ae.Status != http.StatusUnauthorized {
				t.Fatalf("got %v, want a 401 %s reply", err, sdk.CodeInvalidAuth)
			}
			if ae.Op != "authenticate" || ae.RequestID == "" {
				t.Errorf("op %q, request id %q", ae.Op, ae.RequestID)
			}
		})
	}
	if reqs := w.rec.take(); !slices.Equal(reqs, []string{reqLogin}) {
		t.Errorf("requests = %q, want one login for every use", reqs)
	}

	w.clock.Advance(10 * time.Second)
	if _, err := s.Credential(ctx); !hasCode(err, sdk.CodeInvalidAuth) {
		t.Errorf("after 10s: %v, want %s", err, sdk.CodeInvalidAuth)
	}
	if reqs := w.rec.take(); !slices.Equal(reqs, []string{reqLogin}) {
		t.Errorf("requests after 10s = %q, want a new login", reqs)
	}
}

func hasCode(err error, code string) bool {
	ae, ok := sdk.AsAPIError(err)
	return ok && ae.Code == code
}

// TestNewRejects checks the configuration errors of New.
func TestNewRejects(t *testing.T) {
	c := client.New(httptransport.New("localhost", "/", []string{"https"}), strfmt.Default)
	creds := sdk.Password{Username: "u", Password: "p"}
	tests := []struct {
		name string
		cfg  sdk.Config
		want error // matched with errors.Is when set
	}{
		{"no client", sdk.Config{Credentials: creds}, nil},
		{"no credentials", sdk.Config{Client: c}, nil},
		{"unknown key type", sdk.Config{Client: c, Credentials: creds, KeyType: "dsa"},
			sdk.ErrUnknownKeyType},
		{"renew at one", sdk.Config{Client: c, Credentials: creds, RenewAt: 1}, nil},
		{"negative renew at", sdk.Config{Client: c, Credentials: creds, RenewAt: -0.5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sdk.New(tt.cfg)
			if err == nil {
				t.Fatalf("New accepted the config: %v", s)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "sdk: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestKeyTypes issues a certificate for each key type and checks that it is
// for the generated key.
func TestKeyTypes(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	for _, kt := range sdk.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			s, err := sdk.New(sdk.Config{
				Client:      w.c,
				Credentials: sdk.Password{Username: "user", Password: userPassword},
				KeyType:     kt,
				Now:         w.clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close(context.Background()) }()
			cert, err := s.Certificate(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := map[sdk.KeyType]x509.PublicKeyAlgorithm{
				sdk.KeyP256: x509.ECDSA, sdk.KeyP384: x509.ECDSA, sdk.KeyEd25519: x509.Ed25519,
				sdk.KeyRSA2048: x509.RSA, sdk.KeyRSA4096: x509.RSA,
			}[kt]
			if got := cert.Leaf.PublicKeyAlgorithm; got != want {
				t.Errorf("leaf key algorithm %v, want %v", got, want)
			}
			if _, err := tls.X509KeyPair(chainPEM(cert), keyPEM(t, cert)); err != nil {
				t.Errorf("certificate and key do not pair: %v", err)
			}
		})
	}
}

func chainPEM(cert *tls.Certificate) []byte {
	var out []byte
	for _, der := range cert.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

func keyPEM(t *testing.T, cert *tls.Certificate) []byte {
	t.Helper()
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		t.Fatalf("private key %T is not a crypto.Signer", cert.PrivateKey)
	}
	b, err := sdk.MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCredentials logs in with each kind of credentials, and again with the
// same credentials after an administrator deleted the session.
func TestCredentials(t *testing.T) {
	w := startWorld(t, 3*time.Minute, 30*time.Minute)
	admin := w.e.Admin(t)
	c := w.e.Client(nil)
	dave := createIdentity(t, w.e, admin, "dave")

	// A client certificate from a PKI of dave's own, registered to him.
	device := selfSigned(t, "dave-device")
	method := "cert"
	if _, err := c.Authenticators.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
		Body: &models.AuthenticatorCreate{Method: &method, IdentityID: &dave,
			CertPem: string(chainPEM(&device))},
	}, admin.Auth); err != nil {
		t.Fatal(err)
	}

	// An external issuer whose key verifies dave's JWTs.
	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(jwtKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	name, issuer, audience := "idp", "https://idp.example", "sessioncert"
	if _, err := c.ExternalJwtSigners.CreateExternalJWTSigner(
		&external_jwt_signers.CreateExternalJWTSignerParams{Body: &models.ExternalJwtSignerCreate{
			Name: &name, Issuer: &issuer, Audience: &audience, CertPem: pubPEM,
		}}, admin.Auth); err != nil {
		t.Fatal(err)
	}
	var jwtsIssued int
	fetchJWT := func(context.Context) (string, error) {
		jwtsIssued++
		claims := jwt.MapClaims{"iss": issuer, "aud": audience, "sub": dave,
			"exp": w.clock.Now().Add(time.Hour).Unix()}
		return jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(jwtKey)
	}

	tests := []struct {
		name  string
		creds sdk.Credentials
	}{
		{"cert", sdk.Cert{Certificate: device, RootCAs: w.e.RootCAs}},
		{"ext-jwt", sdk.ExtJWT{Token: fetchJWT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := w.newSDK(t, tt.creds)
			first := use(t, s)
			cert, err := s.Certificate(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if cn := cert.Leaf.Subject.CommonName; cn != dave {
				t.Errorf("certificate for %q, want dave %s", cn, dave)
			}

			deleteSession(t, w.e, first.session)
			w.clock.Advance(2 * time.Minute)
			if again := use(t, s); again.session == first.session {
				t.Errorf("still in the deleted session %s", first.session)
			}
		})
	}
	if jwtsIssued != 2 {
		t.Errorf("%d JWTs fetched, want one per login (2)", jwtsIssued)
	}
}

// createIdentity creates a User identity with no authenticator.
func createIdentity(
	t *testing.T,
	e *servertest.Env,
	admin *servertest.Session,
	name string,
) string {
	t.Helper()
	typ := models.IdentityType("User")
	created, err := e.Client(nil).Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: &typ},
	}, admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	return *created.Payload.Data.ID
}

// selfSigned returns a client certificate and key from a PKI of its own.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

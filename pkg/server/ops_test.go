package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/client/informational"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/audit"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, e *servertest.Env) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := e.HTTP.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels include
// all of labels (counter, gauge, or a histogram's count), or 0.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// jwtIssuer is an external JWT issuer: a JWKS endpoint over TLS and the
// key it publishes under one kid, which a test may rotate.
type jwtIssuer struct {
	jwks *httptest.Server

	mu  sync.Mutex
	kid string
	key *ecdsa.PrivateKey
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	t.Helper()
	j := &jwtIssuer{}
	j.rotate(t, "k1")
	j.jwks = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		kid, key := j.kid, j.key
		j.mu.Unlock()
		enc := base64.RawURLEncoding
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
			"x": enc.EncodeToString(key.X.FillBytes(make([]byte, 32))),
			"y": enc.EncodeToString(key.Y.FillBytes(make([]byte, 32))),
		}}})
	}))
	t.Cleanup(j.jwks.Close)
	return j
}

// rotate replaces the published key with a new one under kid, as an
// issuer rotating its keys does, and returns the new key.
func (j *jwtIssuer) rotate(t *testing.T, kid string) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.kid, j.key = kid, key
	return key
}

// sign signs claims with the published key, under its kid.
func (j *jwtIssuer) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	j.mu.Lock()
	kid, key := j.kid, j.key
	j.mu.Unlock()
	return signJWT(t, jwt.SigningMethodES256, key, kid, claims)
}

// token signs a JWT for subject, valid for a minute after now.
func (j *jwtIssuer) token(t *testing.T, subject string, now time.Time) string {
	t.Helper()
	return j.sign(t, jwt.MapClaims{
		"iss": "https://idp.example", "aud": "sessioncert", "sub": subject,
		"exp": now.Add(time.Minute).Unix(),
	})
}

// signJWT signs claims with key by method, naming kid in the header.
func signJWT(
	t *testing.T,
	method jwt.SigningMethod,
	key any,
	kid string,
	claims jwt.MapClaims,
) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestMetricsRound scripts a round (logins by password, certificate and
// JWT; issuance and its three refusals; a router's long poll; sessions
// ended by logout, by an administrator, with their identity and by expiry)
// and checks that each metric moved as it should.
func TestMetricsRound(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Now())
	idp := newJWTIssuer(t)
	e := servertest.Start(t, servertest.Options{Clock: clock, JWKSClient: idp.jwks.Client(),
		Config: func(c *server.Config) {
			c.SessionTimeout = 10 * time.Minute
			c.Store.SweepInterval = time.Hour // only the sweep below
			c.Certs.MaxCertsPerSession = 1
			c.Certs.RateBurst = 3
			c.Certs.RateRefill = time.Hour
		}})
	before := scrape(t, e)

	admin := e.Admin(t)
	mgmt := map[string]string{"zt-session": admin.Token}
	c := e.Client(nil)

	// Issue, then refuse a bad CSR, one over the cap and one over the rate.
	s := e.Admin(t)
	e.IssueCertificate(t, s)
	_, csr := servertest.NewCSR(t)
	for _, want := range []int{400, 429, 429} {
		body := `{"csr":` + quote(csr) + `}`
		if want == 400 {
			body = `{"csr":"not a csr"}`
		}
		status, _, env := rawCall(t, e, "POST", "/edge/client/v1/current-api-session/certificates",
			"application/json", body, map[string]string{"zt-session": s.Token})
		if status != want {
			t.Fatalf("refusal got %d %+v, want %d", status, env.Error, want)
		}
	}
	status, _, _ := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
		`{"username":"admin","password":"wrong"}`, nil)
	if status != 401 {
		t.Fatalf("wrong password: %d", status)
	}

	// A certificate login, ended with its identity.
	device := clientCert(t, "device-1", clock.Now().Add(-time.Hour), clock.Now().Add(time.Hour))
	deviceID := createIdentity(t, e, mgmt, "device-1")
	if status, _, env := rawCall(t, e, "POST", "/edge/management/v1/authenticators", "application/json",
		`{"method":"cert","identityId":"`+deviceID+`","certPem":`+quote(certPEM(device))+`}`, mgmt); status != 201 {
		t.Fatalf("cert authenticator: %d %+v", status, env.Error)
	}
	if _, err := e.Client(e.NewHTTPClient(&device)).Authentication.Authenticate(
		&authentication.AuthenticateParams{Method: "cert", Auth: &models.Authenticate{}}); err != nil {
		t.Fatalf("cert login: %v", err)
	}
	if status, _, env := rawCall(t, e, "DELETE", "/edge/management/v1/identities/"+deviceID, "", "",
		mgmt); status != 200 {
		t.Fatalf("delete identity: %d %+v", status, env.Error)
	}

	// An ext-jwt login, ended by the administrator.
	aliceID := createIdentity(t, e, mgmt, "alice")
	if status, _, env := rawCall(t, e, "POST", "/edge/management/v1/external-jwt-signers", "application/json",
		`{"name":"idp","issuer":"https://idp.example","audience":"sessioncert",`+
			`"jwksEndpoint":"`+idp.jwks.URL+`/jwks"}`, mgmt); status != 201 {
		t.Fatalf("create signer: %d %+v", status, env.Error)
	}
	status, h, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=ext-jwt", "application/json",
		`{}`, map[string]string{"Authorization": "Bearer " + idp.token(t, aliceID, clock.Now())})
	if status != 200 {
		t.Fatalf("ext-jwt login: %d %+v", status, env.Error)
	}
	jwtSession, err := c.CurrentAPISession.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{},
		httptransport.APIKeyAuth("zt-session", "header", h.Get("zt-session")))
	if err != nil {
		t.Fatal(err)
	}
	if status, _, env := rawCall(t, e, "DELETE", "/edge/management/v1/api-sessions/"+
		*jwtSession.Payload.Data.ID, "", "", mgmt); status != 200 {
		t.Fatalf("delete session: %d %+v", status, env.Error)
	}

	// A router waits in a long poll; the logout releases it.
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	start, err := c.Router.ListEvents(&router.ListEventsParams{}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan error, 1)
	go func() {
		wait := int64(60)
		_, err := c.Router.ListEvents(&router.ListEventsParams{After: start.Payload.Meta.Cursor, Wait: &wait},
			r.Auth)
		polled <- err
	}()
	waitForGauge(t, e, "sessioncert_event_waiters", 1)
	if _, err := c.CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
		t.Fatal(err)
	}
	if err := <-polled; err != nil {
		t.Fatalf("long poll: %v", err)
	}

	// The admin's and the router's sessions expire.
	clock.Advance(11 * time.Minute)
	if _, err := e.Server.Registry().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}

	after := scrape(t, e)
	const createOp = "createCurrentApiSessionCertificate"
	for _, c := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"sessioncert_logins_total", []string{"method", "password", "outcome", "succeeded"}, 3},
		{"sessioncert_logins_total", []string{"method", "password", "outcome", "invalid"}, 1},
		{"sessioncert_logins_total", []string{"method", "cert", "outcome", "succeeded"}, 1},
		{"sessioncert_logins_total", []string{"method", "ext-jwt", "outcome", "succeeded"}, 1},
		{"sessioncert_certificates_issued_total", []string{"key_type", "P-256"}, 1},
		{"sessioncert_certificate_issue_duration_seconds", nil, 1},
		{"sessioncert_certificate_refusals_total", []string{"reason", "bad_csr"}, 1},
		{"sessioncert_certificate_refusals_total", []string{"reason", "certificate_cap"}, 1},
		{"sessioncert_certificate_refusals_total", []string{"reason", "rate_limited"}, 1},
		{"sessioncert_sessions_ended_total", []string{"cause", "logout"}, 1},
		{"sessioncert_sessions_ended_total", []string{"cause", "admin"}, 2},
		{"sessioncert_sessions_ended_total", []string{"cause", "expiry"}, 2},
		{"sessioncert_sweeps_total", []string{"outcome", "ok"}, 1},
		{"sessioncert_sweep_removed_sessions_total", nil, 2},
		{"sessioncert_removal_events_total", []string{"type", "apiSessionRemoved"}, 5},
		{"sessioncert_sessions_live", nil, 0},
		{"sessioncert_certificates_live", nil, 0},
		{"sessioncert_event_waiters", nil, 0},
		{"sessioncert_http_requests_total", []string{"operation", createOp, "code", "201"}, 1},
		{"sessioncert_http_requests_total", []string{"operation", createOp, "code", "400"}, 1},
		{"sessioncert_http_requests_total", []string{"operation", createOp, "code", "429"}, 2},
		{"sessioncert_http_requests_total", []string{"operation", "authenticate", "code", "401"}, 1},
	} {
		t.Run(strings.Join(append([]string{c.name}, c.labels...), " "), func(t *testing.T) {
			if got := value(after, c.name, c.labels...) - value(before, c.name, c.labels...); got != c.delta {
				t.Errorf("moved by %v, want %v", got, c.delta)
			}
		})
	}
	if value(after, "sessioncert_store_operation_duration_seconds", "operation", "CreateCertificate") < 1 {
		t.Error("no store latency recorded for CreateCertificate")
	}
}

// TestMetricsCountRequestsRefusedBeforeTheAPI sends requests that are
// answered before any operation runs: each is counted once, under the
// operation its method and path name or under unmatched, and the pages
// beside the API are not counted.
func TestMetricsCountRequestsRefusedBeforeTheAPI(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	s := e.Admin(t)
	const (
		login   = "/edge/client/v1/authenticate?method=password"
		current = "/edge/client/v1/current-api-session"
		total   = "sessioncert_http_requests_total"
	)
	huge := `{"username":"` + strings.Repeat("a", 2<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		chunked                  bool
		header                   http.Header
		op, code                 string
	}{
		{name: "declared body over 1 MiB", method: "POST", path: login, body: huge,
			op: "authenticate", code: "413"},
		{name: "chunked body over 1 MiB", method: "POST", path: login, body: huge, chunked: true,
			op: "authenticate", code: "413"},
		{name: "zt-session twice", method: "GET", path: current,
			header: http.Header{"Zt-Session": {s.Token, s.Token}}, op: "getCurrentAPISession", code: "401"},
		{name: "content type twice", method: "POST", path: login, body: `{}`,
			header: http.Header{"Content-Type": {"application/json", "text/plain"}}, op: "authenticate",
			code: "400"},
		{name: "unclean path", method: "GET", path: "/edge/client/v1/../client/v1/version", op: "unmatched",
			code: "404"},
		{name: "unknown path", method: "GET", path: "/edge/client/v1/nothing-here", op: "unmatched", code: "404"},
		{name: "a path outside the API", method: "GET", path: "/favicon.ico", op: "unmatched", code: "404"},
		{name: "a method the path does not serve", method: "PUT", path: current, op: "unmatched", code: "405"},
		{name: "an operation served", method: "GET", path: "/edge/client/v1/version", op: "listVersion",
			code: "200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t, e)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // of unknown length: sent without Content-Length
			}
			req, err := http.NewRequest(tc.method, e.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if tc.body != "" && req.Header.Get("Content-Type") == "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := e.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := strconv.Itoa(resp.StatusCode); got != tc.code {
				t.Fatalf("status %s, want %s", got, tc.code)
			}

			// The scrape itself is a page, and not counted.
			after := scrape(t, e)
			if got := value(after, total, "operation", tc.op, "code", tc.code) -
				value(before, total, "operation", tc.op, "code", tc.code); got != 1 {
				t.Errorf("%s{operation=%q,code=%q} moved by %v, want 1", total, tc.op, tc.code, got)
			}
			if got := value(after, total) - value(before, total); got != 1 {
				t.Errorf("%s moved by %v in all, want 1", total, got)
			}
		})
	}
	for _, page := range []string{"/docs", "/swagger.json"} {
		before := value(scrape(t, e), total)
		if status, _ := get(t, e, page); status != http.StatusOK {
			t.Fatalf("GET %s: %d", page, status)
		}
		if got := value(scrape(t, e), total) - before; got != 0 {
			t.Errorf("GET %s moved %s by %v, want 0", page, total, got)
		}
	}
}

// createIdentity creates a User identity without an authenticator and
// returns its id.
func createIdentity(t *testing.T, e *servertest.Env, mgmt map[string]string, name string) string {
	t.Helper()
	res, err := e.Client(nil).Identities.CreateIdentity(&identities.CreateIdentityParams{
		Body: &models.IdentityCreate{Name: &name, Type: ptrTo(models.IdentityType("User"))},
	}, httptransport.APIKeyAuth("zt-session", "header", mgmt["zt-session"]))
	if err != nil {
		t.Fatalf("create identity %s: %v", name, err)
	}
	return *res.Payload.Data.ID
}

func ptrTo[T any](v T) *T { return &v }

// waitForGauge scrapes until the gauge reads want: the long poll it waits
// for starts in another goroutine. It gives up after 30 seconds.
func waitForGauge(t *testing.T, e *servertest.Env, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		got := value(scrape(t, e), name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %v, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsAcrossRestart restarts the server on the same data: the live
// gauges start from what the store holds, so that a logout after the
// restart brings them to zero, not below.
func TestMetricsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	first := servertest.Start(t, servertest.Options{DataDir: dir})
	s := first.Admin(t)
	first.IssueCertificate(t, s)
	first.IssueCertificate(t, s)
	first.Stop()

	e := servertest.Start(t, servertest.Options{DataDir: dir})
	gauges := func(step string, sessions, certs float64) {
		t.Helper()
		fams := scrape(t, e)
		if got := value(fams, "sessioncert_sessions_live"); got != sessions {
			t.Errorf("%s: sessions_live %v, want %v", step, got, sessions)
		}
		if got := value(fams, "sessioncert_certificates_live"); got != certs {
			t.Errorf("%s: certificates_live %v, want %v", step, got, certs)
		}
	}
	gauges("after the restart", 1, 2)
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
		t.Fatal(err)
	}
	gauges("after the logout", 0, 0)
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"` }

// TestHealthWhenStoreCloses shows the health check turning 503 when the
// store is closed underneath the server, and requests that need the store
// answering 503 rather than 500.
func TestHealthWhenStoreCloses(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := e.Client(nil).Informational
	ok, err := c.ListHealthChecks(&informational.ListHealthChecksParams{})
	if err != nil {
		t.Fatal(err)
	}
	if !*ok.Payload.Data.Healthy || len(ok.Payload.Data.Checks) != 3 {
		t.Fatalf("health = %+v", ok.Payload.Data)
	}
	if err := e.Server.Store().Close(); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Second) // past the health cache
	_, err = c.ListHealthChecks(&informational.ListHealthChecksParams{})
	var down *informational.ListHealthChecksServiceUnavailable
	if !errors.As(err, &down) || *down.Payload.Data.Healthy {
		t.Fatalf("health with the store closed: %v, want 503", err)
	}
	for _, ch := range down.Payload.Data.Checks {
		if *ch.ID == "store" && *ch.Healthy {
			t.Error("store check healthy with the store closed")
		}
	}
	status, _, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
		`{"username":"admin","password":"`+servertest.AdminPassword+`"}`, nil)
	if status != 503 || *env.Error.Code != "SERVICE_UNAVAILABLE" {
		t.Errorf("login with the store closed: %d %+v, want 503", status, env.Error)
	}
}

// faultyStore fails Ping while fail is set, as a store whose disk or
// cluster is gone would, with an error text a stranger must not see.
type faultyStore struct {
	store.Store
	fail atomic.Bool
}

const faultText = "injected fault at /var/lib/secret-path"

func (f *faultyStore) Ping(ctx context.Context) error {
	if f.fail.Load() {
		return errors.New(faultText)
	}
	return f.Store.Ping(ctx)
}

// TestHealthFollowsTheStore turns the store's round trip off and on under
// the server: the health report follows it from 200 to 503 and back once
// its one-second cache (on the server's clock) has passed, and the reply
// never carries the store's error text.
func TestHealthFollowsTheStore(t *testing.T) {
	faulty := &faultyStore{}
	e := servertest.Start(t, servertest.Options{WrapStore: func(st store.Store) store.Store {
		faulty.Store = st
		return faulty
	}})
	e.Clock.Set(time.Now())

	for _, step := range []struct {
		name    string
		fail    bool
		advance time.Duration
		healthy bool
	}{
		{"store up", false, 0, true},
		{"store down, report still cached", true, 500 * time.Millisecond, true},
		{"store down, cache passed", true, time.Second, false},
		{"store back, report still cached", false, 500 * time.Millisecond, false},
		{"store back, cache passed", false, time.Second, true},
	} {
		t.Run(step.name, func(t *testing.T) {
			faulty.fail.Store(step.fail)
			e.Clock.Advance(step.advance)
			status, body := get(t, e, "/health-checks")
			want := http.StatusOK
			if !step.healthy {
				want = http.StatusServiceUnavailable
			}
			if status != want {
				t.Fatalf("status %d, want %d: %s", status, want, body)
			}
			var env struct {
				Data struct {
					Healthy bool
					Checks  []struct {
						ID      string
						Healthy bool
						Detail  string
					}
				}
			}
			if err := jsonUnmarshal(body, &env); err != nil {
				t.Fatal(err)
			}
			for _, ch := range env.Data.Checks {
				if ch.ID == "store" && ch.Healthy != step.healthy {
					t.Errorf("store check healthy %v, want %v (%s)", ch.Healthy, step.healthy, ch.Detail)
				}
			}
			if strings.Contains(string(body), "secret-path") || strings.Contains(string(body), "injected") {
				t.Errorf("the reply carries the store's error: %s", body)
			}
		})
	}
}

// healthCheck is one check of the health report, as the wire has it.
type healthCheck struct {
	Healthy bool
	Detail  string
}

// health fetches /health-checks and returns its status and its checks by id.
func health(t *testing.T, e *servertest.Env) (int, map[string]healthCheck) {
	t.Helper()
	status, body := get(t, e, "/health-checks")
	var env struct {
		Data struct {
			Checks []struct {
				ID string
				healthCheck
			}
		}
	}
	if err := jsonUnmarshal(body, &env); err != nil {
		t.Fatalf("health report: %v: %s", err, body)
	}
	checks := map[string]healthCheck{}
	for _, c := range env.Data.Checks {
		checks[c.ID] = c.healthCheck
	}
	return status, checks
}

// TestHealthWarnsOfCAExpiry runs the server on CAs of several remaining
// validities: the ca check warns inside 30 days while staying healthy, and
// fails, turning the report 503, once the CA has expired.
func TestHealthWarnsOfCAExpiry(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name    string
		caFor   time.Duration // from start
		advance time.Duration
		status  int
		check   healthCheck
	}{
		{"40 days left", 40 * 24 * time.Hour, 0, http.StatusOK,
			healthCheck{true, "key usable; the CA certificate expires in 40 days"}},
		{"20 days left", 40 * 24 * time.Hour, 20 * 24 * time.Hour, http.StatusOK,
			healthCheck{true, "warning: the CA certificate expires in 20 days"}},
		{"hours left", 40 * 24 * time.Hour, 40*24*time.Hour - 5*time.Hour, http.StatusOK,
			healthCheck{true, "warning: the CA certificate expires in 5h0m0s"}},
		{"expired", 40 * 24 * time.Hour, 40*24*time.Hour + time.Second, http.StatusServiceUnavailable,
			healthCheck{false, "the CA certificate has expired"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			clock.Set(start)
			e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
				c.Certs.CACert, c.Certs.CAKey = caFiles(t, start.Add(-time.Hour), start.Add(tc.caFor))
			}})
			clock.Advance(tc.advance)
			// A sweep at the new time keeps the sweeper check out of it.
			if _, err := e.Server.Registry().Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			status, checks := health(t, e)
			if status != tc.status || checks["ca"] != tc.check {
				t.Errorf("%d %+v, want %d %+v", status, checks["ca"], tc.status, tc.check)
			}
		})
	}
}

// TestHealthSweeperRanRecently moves the clock past three sweep intervals
// with no sweep: the sweeper check fails and the report is 503, until a
// sweep runs again.
func TestHealthSweeperRanRecently(t *testing.T) {
	clock := &servertest.Clock{}
	clock.Set(time.Now().UTC().Truncate(time.Second))
	e := servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
		// The real ticker never fires during the test; the steps sweep.
		c.Store.SweepInterval = time.Hour
		c.SessionTimeout = 24 * time.Hour
	}})
	for _, step := range []struct {
		name    string
		advance time.Duration
		sweep   bool
		status  int
		check   healthCheck
	}{
		{"just started", 0, false, http.StatusOK, healthCheck{true, "last sweep 0s ago"}},
		{"three intervals", 3 * time.Hour, false, http.StatusOK, healthCheck{true, "last sweep 3h0m0s ago"}},
		{"past three intervals", time.Minute, false, http.StatusServiceUnavailable,
			healthCheck{false, "last sweep 3h1m0s ago"}},
		{"swept again", time.Minute, true, http.StatusOK, healthCheck{true, "last sweep 0s ago"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			clock.Advance(step.advance)
			if step.sweep {
				if _, err := e.Server.Registry().Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			status, checks := health(t, e)
			if status != step.status || checks["sweeper"] != step.check {
				t.Errorf("%d %+v, want %d %+v", status, checks["sweeper"], step.status, step.check)
			}
		})
	}
}

// get makes a GET without a session and returns the status and body.
func get(t *testing.T, e *servertest.Env, path string) (int, []byte) {
	t.Helper()
	resp, err := e.HTTP.Get(e.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestAuditRound checks the audit file holds exactly the expected events of
// a scripted round, and never the token or the password.
func TestAuditRound(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	alice := e.Login(t, "alice", "alice-password")
	cert := e.IssueCertificate(t, alice)
	c := e.Client(nil).CurrentAPISession
	if _, err := c.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: cert.ID}, alice.Auth); err != nil {
		t.Fatal(err)
	}
	rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
		`{"username":"alice","password":"not-her-password"}`, nil)
	if _, err := c.DeleteCurrentAPISession(&current_api_session.DeleteCurrentAPISessionParams{},
		alice.Auth); err != nil {
		t.Fatal(err)
	}
	e.Stop() // flush and close the audit file

	data, err := os.ReadFile(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		var ev audit.Event
		if err := jsonUnmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		line := ev.Type
		switch ev.Type {
		case audit.TypeLoginFailed:
			line += " " + ev.Username + " " + ev.Reason + " " + ev.Source
		case audit.TypeManagementChange:
			line += " " + ev.Change.Action + " " + ev.Change.Kind
		case audit.TypeSessionEnded:
			line += " " + ev.Cause
		case audit.TypeCertificateIssued:
			if ev.Certificate.Serial == "" || ev.Certificate.KeyType != "P-256" || ev.APISessionID != alice.ID {
				t.Errorf("issued event lacks details: %+v", ev.Certificate)
			}
		}
		got = append(got, line)
	}
	want := []string{
		"login.succeeded",
		"management.change create identity",
		"management.change create authenticator",
		"login.succeeded",
		"certificate.issued",
		"certificate.deleted",
		"login.failed alice wrongPassword 127.0.0.1",
		"session.ended logout",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Tokens, passwords (the right ones and the wrong one sent), password
	// hashes, and no PEM at all: no certificate, key or CSR.
	for _, secret := range []string{alice.Token, admin.Token, "alice-password", "not-her-password",
		servertest.AdminPassword, "argon2", "BEGIN"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the audit file contains a secret (%.6s...)", secret)
		}
	}
}

// TestAuditRefusedAdmission has a router ask for admissions that are
// refused: each refusal writes one admission.refused line naming the
// router, the reason and the leaf's fingerprint, a granted admission writes
// none, and no line holds a token or any PEM.
func TestAuditRefusedAdmission(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	routerID := e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := e.Login(t, "edge1", "router-password")
	a, b := e.Admin(t), e.Admin(t)
	cert := e.IssueCertificate(t, a)
	const unknownToken = "an-unknown-token-sent-by-a-client"

	if _, code := admit(t, e, r, a.Token, cert.Chain); code != "" {
		t.Fatalf("own certificate: %s, want admitted", code)
	}
	refusals := []struct{ token, code string }{
		{unknownToken, "INVALID_API_SESSION"},
		{b.Token, "CERTIFICATE_NOT_BOUND"},
	}
	for _, rf := range refusals {
		if _, code := admit(t, e, r, rf.token, cert.Chain); code != rf.code {
			t.Fatalf("admission: %q, want %s", code, rf.code)
		}
	}
	e.Stop()

	data, err := os.ReadFile(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var got []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev audit.Event
		if err := jsonUnmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, line)
		}
		if ev.Type == audit.TypeAdmissionRefused {
			got = append(got, ev)
		}
	}
	if len(got) != len(refusals) {
		t.Fatalf("%d admission.refused lines, want %d:\n%s", len(got), len(refusals), data)
	}
	for i, ev := range got {
		if ev.Reason != refusals[i].code || ev.IdentityID != routerID || ev.RequestID == "" ||
			len(ev.Fingerprints) != 1 || ev.Fingerprints[0] != fingerprintOf(cert.Leaf) {
			t.Errorf("line %d: reason %q identity %q request %q fingerprints %v; want %s, the router %s, "+
				"a request id and the leaf's fingerprint", i, ev.Reason, ev.IdentityID, ev.RequestID,
				ev.Fingerprints, refusals[i].code, routerID)
		}
	}
	for _, secret := range []string{a.Token, b.Token, r.Token, unknownToken, "BEGIN"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the audit file contains a token or PEM (%.6s...)", secret)
		}
	}
}

// TestAuditFailureFailsIssuance writes the audit trail to /dev/full: an
// issuance then fails instead of going out unrecorded, the certificate is
// not left behind, and the metrics count no issuance, no live certificate
// and one removal event.
func TestAuditFailureFailsIssuance(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Ops.AuditLog = "/dev/full" }})
	s := e.Admin(t)
	_, csr := servertest.NewCSR(t)
	before := scrape(t, e)
	status, _, env := rawCall(t, e, "POST", "/edge/client/v1/current-api-session/certificates", "application/json",
		`{"csr":`+quote(csr)+`}`, map[string]string{"zt-session": s.Token})
	if status != 500 || *env.Error.Code != "UNHANDLED" {
		t.Fatalf("issuance with a failing audit trail: %d %+v, want 500 UNHANDLED", status, env.Error)
	}
	if _, n, err := e.Server.Store().ListCertificates(context.Background(), s.ID, time.Now(),
		store.Page{Limit: 1}); err != nil || n != 0 {
		t.Errorf("%d certificates left in the store (%v)", n, err)
	}
	after := scrape(t, e)
	for _, c := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"sessioncert_certificates_live", nil, 0},
		{"sessioncert_certificates_issued_total", nil, 0},
		{"sessioncert_certificate_issue_duration_seconds", nil, 0},
		{"sessioncert_removal_events_total", []string{"type", "certificateDeleted"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := value(after, c.name, c.labels...) - value(before, c.name, c.labels...)
			if got != c.delta {
				t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.delta)
			}
		})
	}
}

// TestAuditCapsAttemptedUsername sends failed logins with a 900 KiB
// username, past the login rate limit: the huge username is limited like
// any other, every audit line stays short and marks the username as cut,
// and only the first refusal by the limit is audited, so that no one can
// fill the audit disk without logging in.
func TestAuditCapsAttemptedUsername(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Logins.FailureBurst = 2
		c.Logins.FailureEvery = time.Hour
	}})
	huge := strings.Repeat("u", 900<<10)
	statuses := map[int]int{}
	for range 4 {
		status, _, _ := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
			`{"username":"`+huge+`","password":"wrong"}`, nil)
		statuses[status]++
	}
	if statuses[401] != 2 || statuses[429] != 2 {
		t.Fatalf("statuses %v, want two 401 and two 429", statuses)
	}
	e.Stop()

	data, err := os.ReadFile(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev audit.Event
		if err := jsonUnmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != audit.TypeLoginFailed {
			continue
		}
		failed++
		if len(line) > 2*audit.MaxUsernameBytes || !ev.UsernameTruncated ||
			ev.Username != huge[:audit.MaxUsernameBytes] {
			t.Errorf("%s line of %d bytes, username of %d bytes, truncated %v",
				ev.Reason, len(line), len(ev.Username), ev.UsernameTruncated)
		}
	}
	if failed != 3 {
		t.Errorf("%d failed logins audited, want 3: two wrong passwords and the first refusal", failed)
	}
}

// TestAuditManagementChanges reads the before and after of management
// changes in the audit file: their keys are the camel case of the rest of
// the trail (and of the API), and a JWKS endpoint is written without the
// credentials its URL carried.
func TestAuditManagementChanges(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	hdr := map[string]string{"zt-session": admin.Token}
	id := e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	if status, _, env := rawCall(t, e, "PATCH", "/edge/management/v1/identities/"+id, "application/json",
		`{"name":"alice2"}`, hdr); status != 200 {
		t.Fatalf("patch identity: %d %+v", status, env.Error)
	}
	if status, _, env := rawCall(t, e, "POST", "/edge/management/v1/external-jwt-signers", "application/json",
		`{"name":"idp","issuer":"https://idp.example","audience":"sessioncert",`+
			`"jwksEndpoint":"https://svc:hunter2@idp.example/jwks"}`, hdr); status != 201 {
		t.Fatalf("create signer: %d %+v", status, env.Error)
	}
	e.Stop()

	data, err := os.ReadFile(filepath.Join(e.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "hunter2") || strings.Contains(string(data), "svc@") {
		t.Error("the audit file holds the JWKS endpoint's credentials")
	}
	got := map[string][]string{}
	var endpoint any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct {
			Type   string
			Change *struct {
				Action, Kind  string
				Before, After map[string]any
			}
		}
		if err := jsonUnmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != audit.TypeManagementChange {
			continue
		}
		for side, fields := range map[string]map[string]any{"before": ev.Change.Before, "after": ev.Change.After} {
			if fields == nil {
				continue
			}
			keys := make([]string, 0, len(fields))
			for k := range fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			got[ev.Change.Action+" "+ev.Change.Kind+" "+side] = keys
		}
		if ev.Change.Kind == "externalJwtSigner" {
			endpoint = ev.Change.After["jwksEndpoint"]
		}
	}
	identity := []string{"createdAt", "externalId", "id", "isAdmin", "name", "type", "updatedAt"}
	want := map[string][]string{
		"create identity after":      identity,
		"update identity before":     identity,
		"update identity after":      identity,
		"create authenticator after": {"fingerprint", "id", "identityId", "method", "username"},
		"create externalJwtSigner after": {"audience", "certPem", "claimsProperty", "createdAt", "enabled", "id",
			"issuer", "jwksEndpoint", "name", "updatedAt", "useExternalId"},
	}
	for change, keys := range want {
		if strings.Join(got[change], " ") != strings.Join(keys, " ") {
			t.Errorf("%s: keys %v, want %v", change, got[change], keys)
		}
	}
	if endpoint != "https://idp.example/jwks" {
		t.Errorf("jwksEndpoint %v, want https://idp.example/jwks", endpoint)
	}
}

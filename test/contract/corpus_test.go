package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// Paths of the API, for the corpus.
const (
	pAuth           = "/edge/client/v1/authenticate"
	pLogin          = pAuth + "?method=password"
	pCurrent        = "/edge/client/v1/current-api-session"
	pCerts          = pCurrent + "/certificates"
	pVersion        = "/edge/client/v1/version"
	pHealth         = "/health-checks"
	pIdentities     = "/edge/management/v1/identities"
	pAuthenticators = "/edge/management/v1/authenticators"
	pSigners        = "/edge/management/v1/external-jwt-signers"
	pSessions       = "/edge/management/v1/api-sessions"
	pAdmissions     = "/edge/router/v1/admissions"
	pEvents         = "/edge/router/v1/events"
	pHeartbeats     = "/edge/router/v1/heartbeats"
)

// Error codes, short for the table.
const (
	cValidate = "COULD_NOT_VALIDATE"
	cParse    = "COULD_NOT_PARSE_BODY"
	cCSR      = "COULD_NOT_PROCESS_CSR"
	cPage     = "INVALID_PAGINATION"
	cNotFound = "NOT_FOUND"
	cUnauth   = "UNAUTHORIZED"
	cAuth     = "INVALID_AUTH"
	cTooBig   = "REQUEST_ENTITY_TOO_LARGE"
)

// noType sends a body without a Content-Type header.
const noType = "none"

// badRequest is one malformed request and the reply the contract gives it.
type badRequest struct {
	name   string
	op     string // the operation aimed at; "" when no operation of the spec serves the request
	method string
	path   string // escaped, with the query
	as     string // whose token goes in zt-session: admin, alice, router, ended; "" none
	ctype  string // Content-Type of a body; application/json when empty, none for noType
	body   string
	header http.Header // more headers
	http1  bool        // send over HTTP/1.1, for what HTTP/2 would refuse to send

	status int
	code   string
	field  string // the cause's field, where the contract names one

	// transport says why the HTTP layer, not the API, answers this request:
	// it never reaches an operation, so its reply has no envelope and is
	// not held to the spec. Its status is still checked exactly, and the
	// store must still be unchanged.
	transport string
}

// fixture is the state the corpus runs against: an in-process server with
// an admin, a user (alice) and a router, their sessions, a certificate of
// alice's and of the admin's sessions, a signer, and an ended session.
type fixture struct {
	e       *servertest.Env
	chk     *checker
	hc      *http.Client
	hc1     *http.Client // HTTP/1.1 only
	hcFresh *http.Client // HTTP/1.1, a new connection for every request
	tokens  map[string]string

	aliceID, routerID  string
	aliceAuthID        string
	signerID           string
	signerKey          *ecdsa.PrivateKey
	signerPEM          string
	admin, alice, rtr  *servertest.Session
	aliceCert, adminCt *servertest.Issued
}

const (
	corpusIssuer   = "https://corpus.invalid"
	corpusAudience = "sessioncert-corpus"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := servertest.Start(t, servertest.Options{Logger: quiet, Config: func(c *server.Config) {
		// Hundreds of refused logins and CSRs must not trip the limits,
		// which the scenario tests on their own.
		c.Logins.FailureBurst = 0
		c.Certs.RateBurst = 0
	}})
	f := &fixture{e: e}
	f.admin = e.Admin(t)
	f.aliceID = e.CreateIdentity(t, f.admin, "alice", "User", "alice-password")
	f.routerID = e.CreateIdentity(t, f.admin, "edge", "Router", "edge-password")
	c := e.Client(nil)
	if _, err := c.Identities.PatchIdentity(&identities.PatchIdentityParams{
		ID: f.aliceID, Body: &models.IdentityPatch{ExternalID: ptr("alice-ext")},
	}, f.admin.Auth); err != nil {
		t.Fatal(err)
	}
	a, err := e.Server.Store().FindAuthenticatorByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.aliceAuthID = a.ID

	f.signerKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.signerPEM = publicKeyPEM(t, f.signerKey)
	created, err := c.ExternalJwtSigners.CreateExternalJWTSigner(
		&external_jwt_signers.CreateExternalJWTSignerParams{Body: &models.ExternalJwtSignerCreate{
			Name: ptr("corpus-signer"), Issuer: ptr(corpusIssuer), Audience: ptr(corpusAudience),
			CertPem: f.signerPEM,
		}}, f.admin.Auth)
	if err != nil {
		t.Fatal(err)
	}
	f.signerID = *created.Payload.Data.ID

	f.alice = e.Login(t, "alice", "alice-password")
	f.rtr = e.Login(t, "edge", "edge-password")
	f.aliceCert = e.IssueCertificate(t, f.alice)
	f.adminCt = e.IssueCertificate(t, f.admin)
	ended := e.Login(t, "alice", "alice-password")
	if err := f.rawLogout(ended.Token); err != nil {
		t.Fatal(err)
	}
	f.tokens = map[string]string{
		"admin": f.admin.Token, "alice": f.alice.Token, "router": f.rtr.Token, "ended": ended.Token,
	}

	s, err := embeddedSpec()
	if err != nil {
		t.Fatal(err)
	}
	f.chk = newChecker(s)
	f.hc = f.chk.wrap(e.HTTP)
	h1 := e.HTTP.Transport.(*http.Transport).Clone()
	h1.ForceAttemptHTTP2 = false
	h1.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	f.hc1 = f.chk.wrap(&http.Client{Transport: h1, Timeout: e.HTTP.Timeout})
	// net/http enforces --max-header-size exactly only on a connection's
	// first request (later ones get up to a buffer's worth of slack), so
	// the HTTP layer's own refusals go out on a connection of their own.
	h1fresh := h1.Clone()
	h1fresh.DisableKeepAlives = true
	f.hcFresh = f.chk.wrap(&http.Client{Transport: h1fresh, Timeout: e.HTTP.Timeout})
	return f
}

func (f *fixture) rawLogout(token string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete,
		f.e.URL+pCurrent, nil)
	if err != nil {
		return err
	}
	req.Header.Set("zt-session", token)
	resp, err := f.e.HTTP.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logout: %d", resp.StatusCode)
	}
	return nil
}

// snapshot is what a malformed request must leave as it was.
type snapshot struct {
	identities, authenticators, signers, sessions int
	cursor                                        uint64
	certs                                         [3]int // the admin's, alice's, the router's
	alice, aliceAuth, signer                      string // the records patch cases aim at
}

func (f *fixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	st := f.e.Server.Store()
	page := store.Page{Limit: 1}
	var s snapshot
	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	count := func(_ any, n int, err error) int {
		keep(err)
		return n
	}

	var err error
	s.identities, err = st.CountIdentities(ctx)
	keep(err)
	s.authenticators = count(st.ListAuthenticators(ctx, page))
	s.signers = count(st.ListExtJWTSigners(ctx, page))
	s.sessions = count(st.ListAPISessions(ctx, page))
	s.cursor, err = st.EventCursor(ctx)
	keep(err)
	for i, sess := range []*servertest.Session{f.admin, f.alice, f.rtr} {
		s.certs[i] = count(st.ListCertificates(ctx, sess.ID, time.Now(), page))
	}
	id, err := st.GetIdentity(ctx, f.aliceID)
	keep(err)
	au, err := st.GetAuthenticator(ctx, f.aliceAuthID)
	keep(err)
	sg, err := st.GetExtJWTSigner(ctx, f.signerID)
	keep(err)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	s.alice = fmt.Sprintf("%+v", *id)
	s.aliceAuth = fmt.Sprintf("%+v", *au)
	s.signer = fmt.Sprintf("%+v", *sg)
	return s
}

// TestBadInputCorpus sends every malformed request of the corpus raw and
// checks its exact reply, the error envelope, the spec, and that the store
// did not change.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cases := corpus(t, f)
	if len(cases) < 150 {
		t.Errorf("the corpus has %d cases, want at least 150", len(cases))
	}
	t.Logf("corpus, %d cases by operation:\n%s", len(cases), corpusSizes(cases))

	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("two cases are named %q", c.name)
		}
		names[c.name] = true
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.snapshot(t)
			x, env := f.send(t, c)
			if after := f.snapshot(t); after != before {
				t.Errorf("the store changed:\nbefore %+v\nafter  %+v", before, after)
			}

			if x.status >= 500 {
				t.Errorf("a %s reply to malformed input", statusText(x.status))
			}
			if x.status != c.status || x.code != c.code {
				t.Errorf("got %d %s, want %d %s (%s)", x.status, x.code, c.status, c.code, env)
			}
			if c.code != "" && x.status >= 400 && dig(env, "error", "requestId") == nil {
				t.Errorf("error without a requestId: %s", env)
			}
			if c.field != "" {
				if got, _ := dig(env, "error", "cause", "field").(string); got != c.field {
					t.Errorf("cause.field = %q, want %q (%s)", got, c.field, env)
				}
			}
			if c.transport != "" {
				return
			}
			problems := x.problems
			if c.op == "" {
				problems = slices.DeleteFunc(slices.Clone(problems), offSpec)
			}
			for _, p := range problems {
				t.Errorf("spec: %s", p)
			}
		})
	}
}

// offSpec tells the problems that only say a request names no operation.
func offSpec(p string) bool {
	return strings.HasPrefix(p, "no path of the spec") || strings.HasPrefix(p, "the spec declares no")
}

// send makes the request of c and returns the checker's verdict and the
// decoded body, for messages.
func (f *fixture) send(t *testing.T, c badRequest) (*exchange, any) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(context.Background(), c.method, f.e.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.ctype == noType:
	case c.ctype != "":
		req.Header.Set("Content-Type", c.ctype)
	case c.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	if c.as != "" {
		tok, ok := f.tokens[c.as]
		if !ok {
			t.Fatalf("no session %q", c.as)
		}
		req.Header.Set("zt-session", tok)
	}
	// A value {name} stands for the token of that session, so that a case
	// can place a valid token among others.
	for k, vs := range c.header {
		for _, v := range vs {
			if name, ok := strings.CutPrefix(v, "{"); ok && strings.HasSuffix(name, "}") {
				v = f.tokens[strings.TrimSuffix(name, "}")]
			}
			req.Header.Add(k, v)
		}
	}
	hc := f.hc
	switch {
	case c.transport != "":
		hc = f.hcFresh
	case c.http1:
		hc = f.hc1
	}
	mark := f.chk.mark()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	xs := f.chk.since(mark)
	if len(xs) != 1 {
		t.Fatalf("%d exchanges for one request", len(xs))
	}
	var env any
	if json.Unmarshal(raw, &env) != nil {
		env = fmt.Sprintf("%.200q", raw)
	}
	return xs[0], env
}

// corpusSizes counts the cases by operation.
func corpusSizes(cases []badRequest) string {
	n := map[string]int{}
	for _, c := range cases {
		op := c.op
		if op == "" {
			op = "(no operation of the spec)"
		}
		n[op]++
	}
	ops := make([]string, 0, len(n))
	for op := range n {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "    %-36s %3d\n", op, n[op])
	}
	return b.String()
}

// js quotes s as a JSON string.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func publicKeyPEM(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func csrPEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "corpus"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func pemBlock(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// jwtOf signs claims with key; a nil key makes an unsigned token.
func jwtOf(t *testing.T, key *ecdsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	if key == nil {
		enc := base64.RawURLEncoding
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		header := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return header + "." + enc.EncodeToString(payload) + "."
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) claims(exp time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": corpusIssuer, "aud": corpusAudience, "sub": f.aliceID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(exp).Unix(),
	}
}

package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/api_sessions"
	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/client/informational"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// oversized is a request body over the 1 MiB cap.
var oversized = `{"x":"` + strings.Repeat("a", 2<<20) + `"}`

// unknownID names no entity; it is well formed so that only its absence
// decides the reply.
const unknownID = "contract-unknown-id"

// run is one walk of the scenario against a target, and the state the walk
// builds as it goes.
type run struct {
	tg     *target
	spec   *apiSpec
	chk    *checker
	env    *servertest.Env // the target's, with HTTP through the checker
	base   *http.Client    // the target's own client, unchecked
	c      *client.Sessioncert
	sfx    string // keeps names unique on a shared deployment
	notRun map[pair]string

	admin, alice, router *servertest.Session
	aliceID, routerID    string
	aliceUpdbID          string
	aliceCertAuthID      string
	certLogin            *servertest.Session // alice, logged in with a certificate
	signerID             string
	signerKey            *ecdsa.PrivateKey
	clientCert           tls.Certificate // registered as alice's cert authenticator
	aliceCert            *servertest.Issued
	alicePassword        string
}

func newRun(t *testing.T, tg *target) *run {
	t.Helper()
	s, err := loadTargetSpec(tg)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{tg: tg, spec: s, base: tg.env.HTTP, notRun: map[pair]string{}, sfx: randomHex(t, 4)}
	r.chk = newChecker(s)
	r.env = tg.env
	r.env.HTTP = r.chk.wrap(r.base)
	r.c = r.env.Client(nil)
	r.alicePassword = "alice-password-" + r.sfx
	return r
}

// walk runs every step of the scenario in order. A step that stops (a
// failed prerequisite) stops the walk, since later steps build on it.
func (r *run) walk(t *testing.T) bool {
	steps := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"informational", r.informational},
		{"login", r.login},
		{"identities", r.identities},
		{"authenticators", r.authenticators},
		{"external jwt signers", r.signers},
		{"cert and ext-jwt logins", r.otherLogins},
		{"current session", r.currentSession},
		{"certificates", r.certificates},
		{"router", r.routerAPI},
		{"api sessions", r.apiSessions},
		{"every secured operation", r.everySecured},
		{"logout and clean-up", r.cleanup},
		{"rate limits", r.rateLimits},
		{"store closed", r.storeClosed},
	}
	for _, s := range steps {
		finished := false
		t.Run(s.name, func(t *testing.T) {
			s.fn(t)
			finished = !t.Skipped()
		})
		if !finished {
			t.Errorf("the walk stopped in %q; coverage is not judged", s.name)
			return false
		}
	}
	return true
}

// want makes the requests of do through the checked client and asserts the
// last response: its operation, status and, for errors, code. Problems the
// checker found in any response fail the test.
func (r *run) want(t *testing.T, op string, status int, code string, do func() error) {
	t.Helper()
	mark := r.chk.mark()
	err := do()
	xs := r.chk.since(mark)
	r.reportProblems(t)
	if len(xs) == 0 {
		t.Errorf("%s: no response: %v", op, err)
		return
	}
	x := xs[len(xs)-1]
	if x.op != op || x.status != status || (code != "" && x.code != code) {
		t.Errorf("%s: got %s %s, want %s %s (%v)", op, x, x.code, statusText(status), code, err)
	}
	if status < 300 && err != nil {
		t.Errorf("%s: the generated client failed on %s: %v", op, statusText(status), err)
	}
}

// try makes the requests of do and returns the last exchange, for loops
// that stop on a status; nil when nothing reached the server.
func (r *run) try(t *testing.T, do func() error) *exchange {
	t.Helper()
	mark := r.chk.mark()
	_ = do()
	r.reportProblems(t)
	xs := r.chk.since(mark)
	if len(xs) == 0 {
		return nil
	}
	return xs[len(xs)-1]
}

// reportProblems fails the test for each problem the checker found since
// the last report.
func (r *run) reportProblems(t *testing.T) {
	t.Helper()
	for _, x := range r.chk.unreported() {
		for _, p := range x.problems {
			t.Errorf("%s: %s", x, p)
		}
	}
}

// send makes a raw request through the checked client, for what the
// generated client cannot express. Each header pair is a name and a value.
func (r *run) send(method, path, token, body string, header ...string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, r.env.URL+path, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("zt-session", token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := r.env.HTTP.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func auth(tok string) runtime.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", tok)
}

func ptr[T any](v T) *T { return &v }

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// need stops the step when an earlier step did not leave what it needs.
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	if !ok {
		t.Fatalf("an earlier step did not leave %s", what)
	}
}

func (r *run) informational(t *testing.T) {
	info := r.c.Informational
	r.want(t, "listVersion", 200, "", func() error {
		_, err := info.ListVersion(&informational.ListVersionParams{})
		return err
	})
	r.want(t, "listHealthChecks", 200, "", func() error {
		_, err := info.ListHealthChecks(&informational.ListHealthChecksParams{})
		return err
	})

	// The spec the server serves must declare what the suite checks
	// against: same operations, same statuses.
	resp, err := r.base.Get(r.env.URL + "/swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /swagger.json: %d %v", resp.StatusCode, err)
	}
	served, err := loadSpec(body)
	if err != nil {
		t.Fatalf("GET /swagger.json: %v", err)
	}
	if got, want := specSummary(served), specSummary(r.spec); !slices.Equal(got, want) {
		t.Errorf("the served spec differs from the one checked against:\nserved %v\nchecked %v",
			got, want)
	}
}

// specSummary lists each operation with its method, path and statuses.
func specSummary(s *apiSpec) []string {
	var out []string
	for _, op := range s.ops {
		out = append(out, fmt.Sprint(op.id, " ", op.method, " ", op.template, " ", op.statuses()))
	}
	return out
}

func (r *run) login(t *testing.T) {
	a := r.c.Authentication
	r.want(t, "authenticate", 200, "", func() error {
		r.admin = r.env.Login(t, r.tg.adminUser, r.tg.adminPass)
		return nil
	})
	r.want(t, "authenticate", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := a.Authenticate(&authentication.AuthenticateParams{
			Method: "password", Auth: &models.Authenticate{Username: r.tg.adminUser},
		})
		return err
	})
	r.want(t, "authenticate", 400, "COULD_NOT_PARSE_BODY", func() error {
		return r.send(http.MethodPost, "/edge/client/v1/authenticate?method=password", "", `{"username":`)
	})
	r.want(t, "authenticate", 401, "INVALID_AUTH", func() error {
		_, err := a.Authenticate(&authentication.AuthenticateParams{
			Method: "password",
			Auth:   &models.Authenticate{Username: "contract-nobody-" + r.sfx, Password: "wrong-password"},
		})
		return err
	})
	r.want(t, "authenticate", 401, "INVALID_AUTH", func() error {
		_, err := a.Authenticate(&authentication.AuthenticateParams{
			Method: "ext-jwt", Auth: &models.Authenticate{},
		})
		return err
	})
}

func (r *run) identities(t *testing.T) {
	need(t, "an admin session", r.admin != nil)
	ids := r.c.Identities
	create := func(name, typ string) string {
		var id string
		r.want(t, "createIdentity", 201, "", func() error {
			res, err := ids.CreateIdentity(&identities.CreateIdentityParams{
				Body: &models.IdentityCreate{Name: &name, Type: ptr(models.IdentityType(typ))},
			}, r.admin.Auth)
			if err == nil {
				id = *res.Payload.Data.ID
			}
			return err
		})
		return id
	}
	r.aliceID = create("contract-alice-"+r.sfx, "User")
	r.routerID = create("contract-router-"+r.sfx, "Router")
	need(t, "the identities", r.aliceID != "" && r.routerID != "")

	r.want(t, "listIdentities", 200, "", func() error {
		_, err := ids.ListIdentities(&identities.ListIdentitiesParams{}, r.admin.Auth)
		return err
	})
	r.want(t, "listIdentities", 200, "", func() error {
		_, err := ids.ListIdentities(&identities.ListIdentitiesParams{
			Limit: ptr(int64(1)), Offset: ptr(int64(1)),
		}, r.admin.Auth)
		return err
	})
	r.want(t, "detailIdentity", 200, "", func() error {
		_, err := ids.DetailIdentity(&identities.DetailIdentityParams{ID: r.aliceID}, r.admin.Auth)
		return err
	})
	r.want(t, "patchIdentity", 200, "", func() error {
		_, err := ids.PatchIdentity(&identities.PatchIdentityParams{
			ID: r.aliceID, Body: &models.IdentityPatch{ExternalID: ptr("contract-alice-ext-" + r.sfx)},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "createIdentity", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := ids.CreateIdentity(&identities.CreateIdentityParams{
			Body: &models.IdentityCreate{
				Name: ptr("contract-robot-" + r.sfx), Type: ptr(models.IdentityType("Robot")),
			},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "patchIdentity", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := ids.PatchIdentity(&identities.PatchIdentityParams{
			ID: r.aliceID, Body: &models.IdentityPatch{Name: ptr("")},
		}, r.admin.Auth)
		return err
	})
}

func (r *run) authenticators(t *testing.T) {
	need(t, "the identities", r.aliceID != "" && r.routerID != "")
	as := r.c.Authenticators
	updb := func(identityID, username, password string) string {
		var id string
		r.want(t, "createAuthenticator", 201, "", func() error {
			res, err := as.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
				Body: &models.AuthenticatorCreate{
					Method: ptr("updb"), IdentityID: &identityID,
					Username: username, Password: strfmt.Password(password),
				},
			}, r.admin.Auth)
			if err == nil {
				id = *res.Payload.Data.ID
			}
			return err
		})
		return id
	}
	r.aliceUpdbID = updb(r.aliceID, "contract-alice-"+r.sfx, "first-password")
	updb(r.routerID, "contract-router-"+r.sfx, "router-password")
	need(t, "alice's password authenticator", r.aliceUpdbID != "")

	// A certificate from a PKI of alice's own, registered by fingerprint.
	r.clientCert = selfSignedClient(t, "contract-alice-"+r.sfx)
	certPEM := pemBlock("CERTIFICATE", r.clientCert.Certificate[0])
	r.want(t, "createAuthenticator", 201, "", func() error {
		res, err := as.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
			Body: &models.AuthenticatorCreate{Method: ptr("cert"), IdentityID: &r.aliceID, CertPem: certPEM},
		}, r.admin.Auth)
		if err == nil {
			r.aliceCertAuthID = *res.Payload.Data.ID
		}
		return err
	})

	r.want(t, "listAuthenticators", 200, "", func() error {
		_, err := as.ListAuthenticators(
			&authenticators.ListAuthenticatorsParams{Limit: ptr(int64(500))}, r.admin.Auth)
		return err
	})
	r.want(t, "detailAuthenticator", 200, "", func() error {
		_, err := as.DetailAuthenticator(
			&authenticators.DetailAuthenticatorParams{ID: r.aliceUpdbID}, r.admin.Auth)
		return err
	})
	r.want(t, "patchAuthenticator", 200, "", func() error {
		_, err := as.PatchAuthenticator(&authenticators.PatchAuthenticatorParams{
			ID:   r.aliceUpdbID,
			Body: &models.AuthenticatorPatch{Password: ptr(strfmt.Password(r.alicePassword))},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "createAuthenticator", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := as.CreateAuthenticator(&authenticators.CreateAuthenticatorParams{
			Body: &models.AuthenticatorCreate{
				Method: ptr("updb"), IdentityID: &r.aliceID,
				Username: "contract-short-" + r.sfx, Password: "short",
			},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "patchAuthenticator", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := as.PatchAuthenticator(&authenticators.PatchAuthenticatorParams{
			ID: r.aliceUpdbID, Body: &models.AuthenticatorPatch{Username: ptr("")},
		}, r.admin.Auth)
		return err
	})

	// The changed password is the one that works now.
	r.want(t, "authenticate", 200, "", func() error {
		r.alice = r.env.Login(t, "contract-alice-"+r.sfx, r.alicePassword)
		return nil
	})
	r.want(t, "authenticate", 200, "", func() error {
		r.router = r.env.Login(t, "contract-router-"+r.sfx, "router-password")
		return nil
	})
}

func (r *run) signers(t *testing.T) {
	need(t, "an admin session", r.admin != nil)
	sg := r.c.ExternalJwtSigners
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.signerKey = key
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	r.want(t, "createExternalJWTSigner", 201, "", func() error {
		res, err := sg.CreateExternalJWTSigner(&external_jwt_signers.CreateExternalJWTSignerParams{
			Body: &models.ExternalJwtSignerCreate{
				Name: ptr("contract-signer-" + r.sfx), Issuer: ptr(r.issuer()),
				Audience: ptr("sessioncert-contract"), CertPem: pub,
			},
		}, r.admin.Auth)
		if err == nil {
			r.signerID = *res.Payload.Data.ID
		}
		return err
	})
	need(t, "the signer", r.signerID != "")
	r.want(t, "listExternalJWTSigners", 200, "", func() error {
		_, err := sg.ListExternalJWTSigners(
			&external_jwt_signers.ListExternalJWTSignersParams{}, r.admin.Auth)
		return err
	})
	r.want(t, "detailExternalJWTSigner", 200, "", func() error {
		_, err := sg.DetailExternalJWTSigner(
			&external_jwt_signers.DetailExternalJWTSignerParams{ID: r.signerID}, r.admin.Auth)
		return err
	})
	r.want(t, "patchExternalJWTSigner", 200, "", func() error {
		_, err := sg.PatchExternalJWTSigner(&external_jwt_signers.PatchExternalJWTSignerParams{
			ID:   r.signerID,
			Body: &models.ExternalJwtSignerPatch{ClaimsProperty: ptr("sub"), Enabled: ptr(true)},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "createExternalJWTSigner", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := sg.CreateExternalJWTSigner(&external_jwt_signers.CreateExternalJWTSignerParams{
			Body: &models.ExternalJwtSignerCreate{
				Name:     ptr("contract-keyless-" + r.sfx),
				Issuer:   ptr("https://keyless.invalid"),
				Audience: ptr("a"),
			},
		}, r.admin.Auth)
		return err
	})
	r.want(t, "patchExternalJWTSigner", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := sg.PatchExternalJWTSigner(&external_jwt_signers.PatchExternalJWTSignerParams{
			ID:   r.signerID,
			Body: &models.ExternalJwtSignerPatch{JwksEndpoint: ptr("http://plain.invalid/jwks")},
		}, r.admin.Auth)
		return err
	})
}

func (r *run) issuer() string { return "https://contract.invalid/" + r.sfx }

// otherLogins logs alice in with her registered certificate and with a JWT
// of the signer.
func (r *run) otherLogins(t *testing.T) {
	need(t, "alice's certificate and the signer", r.aliceCertAuthID != "" && r.signerKey != nil)
	withCert := r.env.Client(r.chk.wrap(r.env.NewHTTPClient(&r.clientCert)))
	r.want(t, "authenticate", 200, "", func() error {
		res, err := withCert.Authentication.Authenticate(&authentication.AuthenticateParams{
			Method: "cert", Auth: &models.Authenticate{},
		})
		if err == nil {
			r.certLogin = &servertest.Session{
				Token: res.ZtSession, ID: *res.Payload.Data.ID, Auth: auth(res.ZtSession),
			}
		}
		return err
	})

	tok, err := r.signJWT(r.aliceID)
	if err != nil {
		t.Fatal(err)
	}
	r.want(t, "authenticate", 200, "", func() error {
		res, err := r.c.Authentication.Authenticate(&authentication.AuthenticateParams{
			Method: "ext-jwt", Auth: &models.Authenticate{},
		}, bearer(tok))
		if err == nil && *res.Payload.Data.IdentityID != r.aliceID {
			t.Errorf("ext-jwt login is of identity %s, want alice %s",
				*res.Payload.Data.IdentityID, r.aliceID)
		}
		return err
	})
}

// signJWT returns a JWT of the walk's signer that names the identity.
func (r *run) signJWT(identityID string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": r.issuer(), "aud": "sessioncert-contract", "sub": identityID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
	}).SignedString(r.signerKey)
}

// bearer sets the Authorization header of an ext-jwt login.
func bearer(tok string) authentication.ClientOption {
	return func(op *runtime.ClientOperation) {
		op.AuthInfo = runtime.ClientAuthInfoWriterFunc(
			func(req runtime.ClientRequest, _ strfmt.Registry) error {
				return req.SetHeaderParam("Authorization", "Bearer "+tok)
			})
	}
}

func (r *run) currentSession(t *testing.T) {
	need(t, "alice's session", r.alice != nil)
	cur := r.c.CurrentAPISession
	r.want(t, "getCurrentAPISession", 200, "", func() error {
		_, err := cur.GetCurrentAPISession(
			&current_api_session.GetCurrentAPISessionParams{}, r.alice.Auth)
		return err
	})
	// A session that ends at once: logout, then its token is refused.
	var spare *servertest.Session
	r.want(t, "authenticate", 200, "", func() error {
		spare = r.env.Login(t, "contract-alice-"+r.sfx, r.alicePassword)
		return nil
	})
	r.want(t, "deleteCurrentAPISession", 200, "", func() error {
		_, err := cur.DeleteCurrentAPISession(
			&current_api_session.DeleteCurrentAPISessionParams{}, spare.Auth)
		return err
	})
	r.want(t, "getCurrentAPISession", 401, "UNAUTHORIZED", func() error {
		_, err := cur.GetCurrentAPISession(&current_api_session.GetCurrentAPISessionParams{}, spare.Auth)
		return err
	})
}

func (r *run) certificates(t *testing.T) {
	need(t, "alice's session", r.alice != nil)
	cur := r.c.CurrentAPISession
	r.want(t, "createCurrentApiSessionCertificate", 201, "", func() error {
		r.aliceCert = r.env.IssueCertificate(t, r.alice)
		return nil
	})
	r.want(t, "listCurrentApiSessionCertificates", 200, "", func() error {
		_, err := cur.ListCurrentAPISessionCertificates(
			&current_api_session.ListCurrentAPISessionCertificatesParams{}, r.alice.Auth)
		return err
	})
	r.want(t, "detailCurrentApiSessionCertificate", 200, "", func() error {
		_, err := cur.DetailCurrentAPISessionCertificate(
			&current_api_session.DetailCurrentAPISessionCertificateParams{ID: r.aliceCert.ID}, r.alice.Auth)
		return err
	})

	// Another session's certificate is not found, not forbidden.
	r.want(t, "detailCurrentApiSessionCertificate", 404, "NOT_FOUND", func() error {
		_, err := cur.DetailCurrentAPISessionCertificate(
			&current_api_session.DetailCurrentAPISessionCertificateParams{ID: r.aliceCert.ID}, r.admin.Auth)
		return err
	})

	var doomed *servertest.Issued
	r.want(t, "createCurrentApiSessionCertificate", 201, "", func() error {
		doomed = r.env.IssueCertificate(t, r.alice)
		return nil
	})
	r.want(t, "deleteCurrentApiSessionCertificate", 200, "", func() error {
		_, err := cur.DeleteCurrentAPISessionCertificate(
			&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: doomed.ID}, r.alice.Auth)
		return err
	})
	r.want(t, "deleteCurrentApiSessionCertificate", 404, "NOT_FOUND", func() error {
		_, err := cur.DeleteCurrentAPISessionCertificate(
			&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: doomed.ID}, r.alice.Auth)
		return err
	})

	create := func(csr string) func() error {
		return func() error {
			_, err := cur.CreateCurrentAPISessionCertificate(
				&current_api_session.CreateCurrentAPISessionCertificateParams{
					SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
				}, r.alice.Auth)
			return err
		}
	}
	r.want(t, "createCurrentApiSessionCertificate", 400, "COULD_NOT_PROCESS_CSR", create("not a csr"))
	r.want(t, "createCurrentApiSessionCertificate", 400, "COULD_NOT_VALIDATE", func() error {
		return r.send(http.MethodPost, pCerts, r.alice.Token, `{}`)
	})

	// The cap of live certificates, on a session of its own. A deployment
	// with a higher cap or a rate limit answers 429 later; the bound only
	// keeps a broken server from looping forever.
	var capped *servertest.Session
	r.want(t, "authenticate", 200, "", func() error {
		capped = r.env.Login(t, "contract-alice-"+r.sfx, r.alicePassword)
		return nil
	})
	_, csr := servertest.NewCSR(t)
	r.want(t, "createCurrentApiSessionCertificate", 429, "RATE_LIMITED", func() error {
		for range 200 {
			x := r.try(t, func() error {
				_, err := cur.CreateCurrentAPISessionCertificate(
					&current_api_session.CreateCurrentAPISessionCertificateParams{
						SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
					}, capped.Auth)
				return err
			})
			if x == nil || x.status != http.StatusCreated {
				break
			}
		}
		return nil
	})
}

func (r *run) routerAPI(t *testing.T) {
	need(t, "the router's and alice's sessions and certificate", r.router != nil && r.aliceCert != nil)
	rt := r.c.Router
	admit := func(token, chain string) func() error {
		return func() error {
			_, err := rt.CreateAdmission(&router.CreateAdmissionParams{
				Body: &models.AdmissionRequest{Token: &token, Certificate: &chain},
			}, r.router.Auth)
			return err
		}
	}
	r.want(t, "createAdmission", 200, "", admit(r.alice.Token, r.aliceCert.Chain))
	r.want(t, "createAdmission", 403, "CERTIFICATE_NOT_BOUND", admit(r.admin.Token, r.aliceCert.Chain))
	r.want(t, "createAdmission", 403, "INVALID_API_SESSION",
		admit("contract-no-such-token", r.aliceCert.Chain))
	stranger := selfSignedClient(t, r.aliceID)
	strangerPEM := pemBlock("CERTIFICATE", stranger.Certificate[0])
	r.want(t, "createAdmission", 403, "CERTIFICATE_UNTRUSTED", admit(r.alice.Token, strangerPEM))
	r.want(t, "createAdmission", 400, "COULD_NOT_VALIDATE", admit(r.alice.Token, "not a certificate"))
	r.want(t, "listRouterCas", 200, "", func() error {
		res, err := rt.ListRouterCas(&router.ListRouterCasParams{}, r.router.Auth)
		if err == nil && *res.Payload.Data.Cas != r.aliceCert.CAs {
			t.Errorf("the router's CA bundle differs from the cas of an issued certificate")
		}
		return err
	})

	// The event stream: where to start, then one event after a delete.
	events := func(after *string) (cursor string, err error) {
		res, err := rt.ListEvents(&router.ListEventsParams{After: after}, r.router.Auth)
		if err == nil {
			cursor = *res.Payload.Meta.Cursor
		}
		return cursor, err
	}
	var start string
	r.want(t, "listEvents", 200, "", func() (err error) {
		start, err = events(nil)
		return err
	})
	need(t, "an event cursor", start != "")
	doomed := r.env.IssueCertificate(t, r.alice)
	r.deleteCert(t, r.alice, doomed.ID)
	r.want(t, "listEvents", 200, "", func() error {
		res, err := rt.ListEvents(&router.ListEventsParams{After: &start}, r.router.Auth)
		if err == nil && len(res.Payload.Data) == 0 {
			t.Errorf("no event after a certificate was deleted")
		}
		return err
	})
	r.want(t, "listEvents", 400, "COULD_NOT_VALIDATE", func() error {
		_, err := events(ptr("not-a-cursor"))
		return err
	})
	r.cursorExpired(t, start)

	r.want(t, "createHeartbeat", 200, "", func() error {
		res, err := rt.CreateHeartbeat(&router.CreateHeartbeatParams{
			Body: &models.Heartbeat{APISessionIds: []string{r.alice.ID, unknownID}},
		}, r.router.Auth)
		if err == nil && !slices.Equal(res.Payload.Data.EndedAPISessionIds, []string{unknownID}) {
			t.Errorf("heartbeat: ended %v, want only %s", res.Payload.Data.EndedAPISessionIds, unknownID)
		}
		return err
	})
	r.want(t, "createHeartbeat", 400, "COULD_NOT_VALIDATE", func() error {
		ids := make([]string, 10001)
		for i := range ids {
			ids[i] = "s"
		}
		_, err := rt.CreateHeartbeat(
			&router.CreateHeartbeatParams{Body: &models.Heartbeat{APISessionIds: ids}}, r.router.Auth)
		return err
	})
}

// cursorExpired pushes the start cursor out of the retained history with
// certificate deletes, each one event. An external deployment may keep
// more history than the budget; the in-process server keeps two events.
func (r *run) cursorExpired(t *testing.T, start string) {
	const budget = 5
	for range budget {
		doomed := r.env.IssueCertificate(t, r.alice)
		r.deleteCert(t, r.alice, doomed.ID)
		x := r.try(t, func() error {
			_, err := r.c.Router.ListEvents(&router.ListEventsParams{After: &start}, r.router.Auth)
			return err
		})
		switch {
		case x == nil:
			t.Fatal("listEvents: no response")
		case x.status == http.StatusGone:
			if x.code != "CURSOR_EXPIRED" {
				t.Errorf("listEvents: %s %s, want CURSOR_EXPIRED", x, x.code)
			}
			return
		case x.status != http.StatusOK:
			t.Fatalf("listEvents: %s %s, want 200 or 410", x, x.code)
		}
	}
	if !r.tg.external {
		t.Errorf("listEvents: the cursor did not expire after %d events with a history of 2", budget)
		return
	}
	r.notRun[pair{"listEvents", 410}] = "the deployment keeps more event history than the " +
		"suite's budget of 5 events (run it with --event-history 2)"
}

func (r *run) deleteCert(t *testing.T, s *servertest.Session, id string) {
	t.Helper()
	r.want(t, "deleteCurrentApiSessionCertificate", 200, "", func() error {
		_, err := r.c.CurrentAPISession.DeleteCurrentAPISessionCertificate(
			&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: id}, s.Auth)
		return err
	})
}

func (r *run) apiSessions(t *testing.T) {
	need(t, "alice's sessions", r.alice != nil && r.certLogin != nil)
	as := r.c.APISessions
	r.want(t, "listAPISessions", 200, "", func() error {
		_, err := as.ListAPISessions(
			&api_sessions.ListAPISessionsParams{Limit: ptr(int64(500))}, r.admin.Auth)
		return err
	})
	r.want(t, "detailAPISession", 200, "", func() error {
		_, err := as.DetailAPISession(
			&api_sessions.DetailAPISessionParams{ID: r.certLogin.ID}, r.admin.Auth)
		return err
	})
	r.want(t, "deleteAPISession", 200, "", func() error {
		_, err := as.DeleteAPISession(
			&api_sessions.DeleteAPISessionParams{ID: r.certLogin.ID}, r.admin.Auth)
		return err
	})
	r.want(t, "detailAPISession", 404, "NOT_FOUND", func() error {
		_, err := as.DetailAPISession(
			&api_sessions.DetailAPISessionParams{ID: r.certLogin.ID}, r.admin.Auth)
		return err
	})
}

// tokenFor returns a token of the kind the operation needs.
func (r *run) tokenFor(op *operation) string {
	switch {
	case strings.HasPrefix(op.template, "/edge/management/"):
		return r.admin.Token
	case strings.HasPrefix(op.template, "/edge/router/"):
		return r.router.Token
	default:
		return r.alice.Token
	}
}

// pathOf fills the operation's path parameters with id.
func pathOf(op *operation, id string) string {
	segs := slices.Clone(op.segments)
	for i, s := range segs {
		if isParam(s) {
			segs[i] = id
		}
	}
	return "/" + strings.Join(segs, "/")
}

// everySecured derives its requests from the spec, so an operation added
// later gets them without a line here: 401 without a token, with a token
// that names no session and with a session of the wrong kind; 404 for an
// unknown id; 400 for a page out of range; 413 for a body over the cap.
func (r *run) everySecured(t *testing.T) {
	need(t, "the sessions", r.admin != nil && r.alice != nil && r.router != nil)
	for _, op := range r.spec.ops {
		path := pathOf(op, unknownID)
		body := ""
		if op.method == http.MethodPost || op.method == http.MethodPatch {
			body = "{}"
		}
		if op.secured && op.responses[401] != nil {
			r.want(t, op.id, 401, "UNAUTHORIZED", func() error { return r.send(op.method, path, "", body) })
			r.want(t, op.id, 401, "UNAUTHORIZED", func() error {
				return r.send(op.method, path, "contract-no-such-token", body)
			})
			if !strings.HasPrefix(op.template, "/edge/client/") {
				r.want(t, op.id, 401, "UNAUTHORIZED", func() error {
					return r.send(op.method, path, r.alice.Token, body)
				})
			}
		}
		if op.responses[404] != nil && strings.Contains(op.template, "{") {
			r.want(t, op.id, 404, "NOT_FOUND", func() error {
				return r.send(op.method, path, r.tokenFor(op), body)
			})
		}
		if r.spec.lists[op.id] {
			for _, q := range []string{"?limit=501", "?limit=0", "?offset=-1", "?offset=100001"} {
				r.want(t, op.id, 400, "INVALID_PAGINATION", func() error {
					return r.send(op.method, path+q, r.tokenFor(op), "")
				})
			}
		}
		if op.responses[413] != nil {
			token := ""
			if op.secured {
				token = r.tokenFor(op)
			}
			path := path
			if op.id == "authenticate" {
				path += "?method=password"
			}
			r.want(t, op.id, 413, "REQUEST_ENTITY_TOO_LARGE", func() error {
				return r.send(op.method, path, token, oversized)
			})
		}
	}
}

func (r *run) cleanup(t *testing.T) {
	need(t, "alice's session", r.alice != nil)
	r.want(t, "deleteCurrentAPISession", 200, "", func() error {
		_, err := r.c.CurrentAPISession.DeleteCurrentAPISession(
			&current_api_session.DeleteCurrentAPISessionParams{}, r.alice.Auth)
		return err
	})
	r.want(t, "deleteAuthenticator", 200, "", func() error {
		_, err := r.c.Authenticators.DeleteAuthenticator(
			&authenticators.DeleteAuthenticatorParams{ID: r.aliceCertAuthID}, r.admin.Auth)
		return err
	})
	r.want(t, "deleteExternalJWTSigner", 200, "", func() error {
		_, err := r.c.ExternalJwtSigners.DeleteExternalJWTSigner(
			&external_jwt_signers.DeleteExternalJWTSignerParams{ID: r.signerID}, r.admin.Auth)
		return err
	})
	// The router stays for the last step; deleting alice ends her
	// sessions, which the heartbeat then reports.
	r.deleteIdentity(t, r.aliceID)
	r.want(t, "createHeartbeat", 200, "", func() error {
		res, err := r.c.Router.CreateHeartbeat(&router.CreateHeartbeatParams{
			Body: &models.Heartbeat{APISessionIds: []string{r.alice.ID}},
		}, r.router.Auth)
		if err == nil && !slices.Equal(res.Payload.Data.EndedAPISessionIds, []string{r.alice.ID}) {
			t.Errorf("heartbeat after alice was deleted: ended %v, want her session",
				res.Payload.Data.EndedAPISessionIds)
		}
		return err
	})
}

func (r *run) deleteIdentity(t *testing.T, id string) {
	t.Helper()
	r.want(t, "deleteIdentity", 200, "", func() error {
		_, err := r.c.Identities.DeleteIdentity(&identities.DeleteIdentityParams{ID: id}, r.admin.Auth)
		return err
	})
}

// rateLimits runs late: after the login limit trips, this source cannot log
// in with a password until the limit refills.
func (r *run) rateLimits(t *testing.T) {
	r.want(t, "authenticate", 429, "RATE_LIMITED", func() error {
		for range 100 {
			x := r.try(t, func() error {
				_, err := r.c.Authentication.Authenticate(&authentication.AuthenticateParams{
					Method: "password",
					Auth:   &models.Authenticate{Username: "contract-limit-" + r.sfx, Password: "wrong-password"},
				})
				return err
			})
			if x == nil || x.status != http.StatusUnauthorized {
				break
			}
		}
		return nil
	})
}

// storeClosed closes the store under the in-process server: the health
// check turns 503, and so does every operation that needs the store. It is
// the last step; the server serves nothing useful afterwards. The external
// mode cannot close a store and deletes the router identity instead.
func (r *run) storeClosed(t *testing.T) {
	need(t, "the admin's and the router's sessions", r.admin != nil && r.router != nil)
	if r.tg.external {
		r.deleteIdentity(t, r.routerID)
		for _, op := range r.spec.ops {
			if op.responses[503] != nil {
				r.notRun[pair{op.id, 503}] = "needs the store closed under the server, which only " +
					"the in-process mode can do"
			}
		}
		return
	}
	_, csr := servertest.NewCSR(t)
	bodies := r.probeBodies(csr)
	// The password logins of this source are rate limited by now, and the
	// limit is checked before the store: an ext-jwt login reaches it.
	jwtLogin, err := r.signJWT(r.aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.tg.env.Server.Store().Close(); err != nil {
		t.Fatal(err)
	}

	// The health report is cached for a second.
	r.want(t, "listHealthChecks", 503, "", func() error {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			x := r.try(t, func() error {
				_, err := r.c.Informational.ListHealthChecks(&informational.ListHealthChecksParams{})
				return err
			})
			if x == nil || x.status != http.StatusOK {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})

	for _, op := range r.spec.ops {
		if op.responses[503] == nil || op.id == "listHealthChecks" {
			continue
		}
		token := r.admin.Token
		if strings.HasPrefix(op.template, "/edge/router/") {
			token = r.router.Token
		}
		path := pathOf(op, unknownID)
		var header []string
		switch op.id {
		case "authenticate":
			path += "?method=ext-jwt"
			header = []string{"Authorization", "Bearer " + jwtLogin}
		case "listEvents":
			path += "?after=0"
		}
		probe := func(token string) func() error {
			return func() error { return r.send(op.method, path, token, bodies[op.id], header...) }
		}
		// A session the server holds in memory needs no store; a token it
		// does not know sends it to the store.
		if x := r.try(t, probe(token)); x != nil && x.status < 300 {
			token = "contract-no-such-token"
		}
		r.want(t, op.id, 503, "SERVICE_UNAVAILABLE", probe(token))
	}
}

// probeBodies are valid bodies for the operations that take one, so that a
// request passes validation and reaches the store.
func (r *run) probeBodies(csr string) map[string]string {
	login := `{"username":` + js(r.tg.adminUser) + `,"password":` + js(r.tg.adminPass) + `}`
	authenticator := `{"method":"updb","identityId":` + js(r.routerID) +
		`,"username":"contract-probe","password":"long enough"}`
	signer := `{"name":"contract-probe","issuer":"https://probe.invalid",` +
		`"audience":"a","jwksEndpoint":"https://probe.invalid/jwks"}`
	return map[string]string{
		"authenticate":                       login,
		"createIdentity":                     `{"name":"contract-probe","type":"User"}`,
		"patchIdentity":                      `{"name":"contract-probe"}`,
		"createAuthenticator":                authenticator,
		"patchAuthenticator":                 `{"password":"long enough"}`,
		"createExternalJWTSigner":            signer,
		"patchExternalJWTSigner":             `{"enabled":false}`,
		"createCurrentApiSessionCertificate": `{"csr":` + js(csr) + `}`,
		"createAdmission":                    `{"token":"x","certificate":` + js(r.aliceCert.Chain) + `}`,
		"createHeartbeat":                    `{"apiSessionIds":["x"]}`,
	}
}

// selfSignedClient returns a client certificate of a CA nobody trusts.
func selfSignedClient(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
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

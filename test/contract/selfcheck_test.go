package contract

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessioncert/sessioncert/restapi"
)

// The tests in this file check the checker: a suite that passes because its
// checks never fire proves nothing.

func mustEmbeddedSpec(t *testing.T) *apiSpec {
	t.Helper()
	s, err := embeddedSpec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMatchPath(t *testing.T) {
	t.Parallel()
	s := mustEmbeddedSpec(t)
	tests := []struct {
		method, path string
		op           string
		known        bool
	}{
		{"GET", "/edge/management/v1/identities", "listIdentities", true},
		{"POST", "/edge/management/v1/identities", "createIdentity", true},
		{"GET", "/edge/management/v1/identities/abc", "detailIdentity", true},
		{"PATCH", "/edge/management/v1/identities/abc", "patchIdentity", true},
		{"GET", "/edge/management/v1/identities/a%2Fb", "detailIdentity", true},
		{"GET", "/edge/management/v1/identities/a/b", "", false},
		{"PUT", "/edge/management/v1/identities/abc", "", true},
		{"GET", "/edge/management/v1/identities/", "", false},
		{"GET", pCerts, "listCurrentApiSessionCertificates", true},
		{"DELETE", "/edge/client/v1/current-api-session", "deleteCurrentAPISession", true},
		{"GET", "/health-checks", "listHealthChecks", true},
		{"GET", "/swagger.json", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			op, known := s.match(tt.method, tt.path)
			got := ""
			if op != nil {
				got = op.id
			}
			if got != tt.op || known != tt.known {
				t.Errorf("match = %q, path known %v; want %q, %v", got, known, tt.op, tt.known)
			}
		})
	}
}

const (
	versionBody = `{"data":{"version":"v","revision":"r","buildDate":"d","runtimeVersion":"go",` +
		`"apiVersions":{},"capabilities":[]},"meta":{}}`
	errorMeta = `"meta":{"apiEnrollmentVersion":"0.0.1","apiVersion":"0.0.1"}`
	identity  = `{"id":"i","createdAt":"2026-12-03T18:35:25.000Z",` +
		`"updatedAt":"2026-12-03T18:35:25.000Z","_links":{"self":{"href":"./identities/i"}},` +
		`"tags":{},"name":"n","type":"User","isAdmin":false}`
	pagination = `"pagination":{"limit":10,"offset":0,"totalCount":1}`
)

func apiError(code, requestID string) string {
	return `{"error":{"code":"` + code + `","message":"m","requestId":"` + requestID + `"},` +
		errorMeta + `}`
}

func TestCheckFindsProblems(t *testing.T) {
	t.Parallel()
	s := mustEmbeddedSpec(t)
	const (
		version    = "/edge/client/v1/version"
		current    = "/edge/client/v1/current-api-session"
		login      = "/edge/client/v1/authenticate?method="
		identities = "/edge/management/v1/identities"
		unknown    = identities + "/x"
		known      = identities + "/i"
	)
	jt := http.Header{"Content-Type": {"application/json"}}
	with := func(kv ...string) http.Header {
		h := jt.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	data := func(v string) string { return `{"data":` + v + `,"meta":{}}` }
	list := func(meta string) string { return `{"data":[` + identity + `],"meta":{` + meta + `}}` }
	badCause := `{"error":{"code":"INVALID_PAGINATION","message":"m","requestId":"r",` +
		`"cause":{"x":1}},` + errorMeta + `}`
	tests := []struct {
		name         string
		method, url  string
		token        string
		status       int
		header       http.Header
		body         string
		wantProblem  string // a substring of one problem; "" wants none
		wantOp, code string
	}{
		{name: "a valid version reply", method: "GET", url: version, status: 200, header: jt,
			body: versionBody, wantOp: "listVersion"},
		{name: "a required field missing", method: "GET", url: version, status: 200, header: jt,
			body:        strings.Replace(versionBody, `"capabilities":[]`, `"x":1`, 1),
			wantProblem: "capabilities"},
		{name: "a field of the wrong type", method: "GET", url: version, status: 200, header: jt,
			body:        strings.Replace(versionBody, `"capabilities":[]`, `"capabilities":"x"`, 1),
			wantProblem: "capabilities"},
		{name: "an undeclared status", method: "GET", url: version, status: 404, header: jt,
			body: apiError("NOT_FOUND", "r"), wantProblem: "not declared"},
		{name: "a redirect", method: "GET", url: unknown, status: 301, header: http.Header{},
			wantProblem: "not declared"},
		{name: "a path outside the spec", method: "GET", url: "/edge/nothing", status: 404, header: jt,
			body: apiError("NOT_FOUND", "r"), wantProblem: "no path of the spec"},
		{name: "a method outside the spec", method: "PUT", url: unknown, status: 405, header: jt,
			body: apiError("METHOD_NOT_ALLOWED", "r"), wantProblem: "declares no PUT"},
		{name: "not JSON", method: "GET", url: version, status: 200,
			header: http.Header{"Content-Type": {"text/plain"}}, body: versionBody,
			wantProblem: "Content-Type"},
		{name: "a 500", method: "GET", url: version, status: 500, header: jt,
			body: apiError("UNHANDLED", "r"), wantProblem: "server fault", code: "UNHANDLED"},
		{name: "a 401 without the challenge", method: "GET", url: current, status: 401, header: jt,
			body: apiError("UNAUTHORIZED", "r"), wantProblem: "WWW-Authenticate is missing"},
		{name: "a 401 with the missing challenge for a token", method: "GET", url: current, token: "t",
			status: 401, header: with("WWW-Authenticate", challengeMissing),
			body: apiError("UNAUTHORIZED", "r"), wantProblem: "with a token"},
		{name: "a 401 with the right challenge", method: "GET", url: current, token: "t", status: 401,
			header: with("WWW-Authenticate", challengeInvalid), body: apiError("UNAUTHORIZED", "r"),
			wantOp: "getCurrentAPISession", code: "UNAUTHORIZED"},
		{name: "a challenge where none is declared", method: "GET", url: version, status: 200,
			header: with("WWW-Authenticate", challengeInvalid), body: versionBody,
			wantProblem: "not declared"},
		{name: "a password login answered with a challenge", method: "POST", url: login + "password",
			status: 401, header: with("WWW-Authenticate", `Bearer realm="x" error="invalid"`),
			body: apiError("INVALID_AUTH", "r"), wantProblem: "only ext-jwt"},
		{name: "an ext-jwt login refused without a challenge", method: "POST", url: login + "ext-jwt",
			status: 401, header: jt, body: apiError("INVALID_AUTH", "r"),
			wantProblem: "WWW-Authenticate is missing"},
		{name: "a login without the zt-session header", method: "POST", url: login + "password",
			status: 200, header: jt, body: data(`{"token":"t"}`), wantProblem: "zt-session is missing"},
		{name: "an error without a request id", method: "GET", url: unknown, token: "t", status: 404,
			header: jt, body: apiError("NOT_FOUND", ""), wantProblem: "requestId"},
		{name: "an error code of another status", method: "GET", url: unknown, token: "t", status: 404,
			header: jt, body: apiError("INVALID_PAGINATION", "r"), wantProblem: "goes with status 400"},
		{name: "an unknown error code", method: "GET", url: unknown, token: "t", status: 404,
			header: jt, body: apiError("NOPE", "r"), wantProblem: "not a code"},
		{name: "an error without its meta", method: "GET", url: unknown, token: "t", status: 404,
			header: jt, body: `{"error":{"code":"NOT_FOUND","message":"m","requestId":"r"},"meta":{}}`,
			wantProblem: "apiEnrollmentVersion"},
		{name: "an error that is not the envelope", method: "GET", url: unknown, token: "t",
			status: 404, header: jt, body: `{"message":"not found"}`,
			wantProblem: "without the error envelope"},
		{name: "a cause of neither kind", method: "GET", url: identities + "?limit=0", token: "t",
			status: 400, header: jt, body: badCause, wantProblem: "neither a field error"},
		{name: "a valid detail", method: "GET", url: known, token: "t", status: 200, header: jt,
			body: data(identity), wantOp: "detailIdentity"},
		{name: "a date without milliseconds", method: "GET", url: known, token: "t", status: 200,
			header: jt, body: data(strings.Replace(identity, "25.000Z", "25Z", 1)),
			wantProblem: "with milliseconds"},
		{name: "a date with an offset", method: "GET", url: known, token: "t", status: 200,
			header: jt, body: data(strings.Replace(identity, "25.000Z", "25.000+01:00", 1)),
			wantProblem: "UTC date"},
		{name: "a link map without self", method: "GET", url: known, token: "t", status: 200,
			header: jt, body: data(strings.Replace(identity, `"self"`, `"other"`, 1)),
			wantProblem: "no self href"},
		{name: "a plain success with meta", method: "GET", url: known, token: "t", status: 200,
			header: jt, body: `{"data":` + identity + `,"meta":{` + pagination + `}}`,
			wantProblem: "meta of a plain success"},
		{name: "a valid list", method: "GET", url: identities, token: "t", status: 200, header: jt,
			body: list(pagination + `,"filterableFields":[]`), wantOp: "listIdentities"},
		{name: "a list without pagination", method: "GET", url: identities, token: "t", status: 200,
			header: jt, body: list(`"filterableFields":[]`), wantProblem: "without meta.pagination"},
		{name: "a list without filterableFields", method: "GET", url: identities, token: "t", status: 200,
			header: jt, body: list(pagination), wantProblem: "meta.filterableFields in body is required"},
		{name: "a list that is not the page asked for", method: "GET", url: identities + "?limit=5",
			token: "t", status: 200, header: jt, body: list(pagination + `,"filterableFields":[]`),
			wantProblem: "pagination.limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.url, nil)
			if tt.token != "" {
				req.Header.Set("zt-session", tt.token)
			}
			x := s.check(req, tt.status, tt.header, []byte(tt.body))
			all := strings.Join(x.problems, "\n")
			switch {
			case tt.wantProblem == "" && len(x.problems) > 0:
				t.Errorf("problems found in a valid reply:\n%s", all)
			case tt.wantProblem != "" && !strings.Contains(all, tt.wantProblem):
				t.Errorf("no problem mentions %q; found:\n%s", tt.wantProblem, all)
			}
			if tt.wantOp != "" && x.op != tt.wantOp {
				t.Errorf("operation %q, want %q", x.op, tt.wantOp)
			}
			if tt.code != "" && x.code != tt.code {
				t.Errorf("code %q, want %q", x.code, tt.code)
			}
		})
	}
}

// TestCheckerRequestIDsUnique shows the checker notices a request id used
// twice, across requests.
func TestCheckerRequestIDsUnique(t *testing.T) {
	t.Parallel()
	s := mustEmbeddedSpec(t)
	fake := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: http.StatusNotFound,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(apiError("NOT_FOUND", "same-id"))),
		}, nil
	})
	chk := newChecker(s)
	hc := chk.wrap(&http.Client{Transport: fake})
	for range 2 {
		resp, err := hc.Get("https://example.invalid/edge/management/v1/identities/x")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	xs := chk.since(0)
	if len(xs) != 2 || len(xs[0].problems) != 0 ||
		!strings.Contains(strings.Join(xs[1].problems, " "), "already used") {
		t.Errorf("a repeated requestId was not noticed: %+v", xs)
	}
}

// TestCoverageCatchesNewOperation adds an operation to the spec with no
// scenario behind it: the coverage must name each of its statuses but the
// allow-listed 500.
func TestCoverageCatchesNewOperation(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(restapi.SwaggerJSON, &doc); err != nil {
		t.Fatal(err)
	}
	before := mustEmbeddedSpec(t)
	seen := map[pair]map[string]bool{}
	for _, op := range before.ops {
		for _, st := range op.statuses() {
			seen[pair{op.id, st}] = map[string]bool{}
		}
	}

	doc["paths"].(map[string]any)["/edge/client/v1/widgets"] = map[string]any{
		"get": map[string]any{
			"operationId": "listWidgets",
			"responses": map[string]any{
				"200": map[string]any{"description": "ok"},
				"401": map[string]any{"$ref": "#/responses/unauthorized"},
				"500": map[string]any{"$ref": "#/responses/unhandled"},
			},
		},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	after, err := loadSpec(raw)
	if err != nil {
		t.Fatal(err)
	}

	if got := computeCoverage(before, seen, nil).missing(); len(got) != 0 {
		t.Fatalf("the spec as tested has missing pairs %v", got)
	}
	got := computeCoverage(after, seen, nil).missing()
	want := []pair{{"listWidgets", 200}, {"listWidgets", 401}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("missing = %v, want %v", got, want)
	}

	notRun := map[pair]string{{"listWidgets", 401}: "external"}
	if got := computeCoverage(after, seen, notRun).missing(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("with 401 not run, missing = %v, want only %v", got, want[0])
	}
}

// TestExternalTarget checks how the external mode reads its variables: off
// without a URL, a clear error when it is asked for but incomplete.
func TestExternalTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	leaf := selfSignedClient(t, "ca")
	caPEM := pemBlock("CERTIFICATE", leaf.Certificate[0])
	if err := os.WriteFile(ca, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{envURL: "https://127.0.0.1:1280/", envCA: ca, envAdminPass: "pw"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(full)
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr string // a substring of the error; "" wants none
		wantOff bool
	}{
		{name: "no URL", vars: map[string]string{envCA: ca}, wantOff: true},
		{name: "complete", vars: full},
		{name: "plain http", vars: with(envURL, "http://127.0.0.1:1280"), wantErr: "https://host"},
		{name: "a path", vars: with(envURL, "https://127.0.0.1:1280/api"), wantErr: "no path"},
		{name: "no CA", vars: with(envCA, ""), wantErr: envCA},
		{name: "no password", vars: with(envAdminPass, ""), wantErr: envAdminPass},
		{name: "a CA file that is missing", vars: with(envCA, filepath.Join(dir, "nope")),
			wantErr: envCA},
		{name: "a CA file that is not PEM", vars: with(envCA, notPEM), wantErr: "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := externalTarget(func(k string) string { return tt.vars[k] })
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tt.wantOff != (tg == nil):
				t.Fatalf("target %+v, want off: %v", tg, tt.wantOff)
			case tg != nil && (tg.env.Host != "127.0.0.1:1280" || tg.adminUser != "admin" || !tg.external):
				t.Errorf("target %+v %+v", tg, tg.env)
			}
		})
	}
}

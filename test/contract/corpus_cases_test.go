package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bodyOp is an operation that takes a JSON body, with the session it needs.
type bodyOp struct {
	op, method, path, as string
}

// idOp is an operation with an id in its path.
type idOp struct {
	op, method, prefix, as, body string
}

// corpus returns every malformed request. Families come first, each applied
// to every operation it fits: body formats, pagination, id shapes and token
// shapes. The cases of single operations follow.
func corpus(t *testing.T, f *fixture) []badRequest {
	t.Helper()
	var cs []badRequest
	cs = append(cs, bodyFormatCases(f)...)
	cs = append(cs, paginationCases()...)
	cs = append(cs, idCases(f)...)
	cs = append(cs, tokenCases()...)
	cs = append(cs, authenticateCases(t, f)...)
	cs = append(cs, certificateCases(t, f)...)
	cs = append(cs, identityCases(f)...)
	cs = append(cs, authenticatorCases(t, f)...)
	cs = append(cs, signerCases(f)...)
	cs = append(cs, routerCases(t, f)...)
	cs = append(cs, outsideCases()...)
	return cs
}

// bodyFormatCases sends bodies that are not the JSON object an operation
// takes, to every operation that takes one.
func bodyFormatCases(f *fixture) []badRequest {
	ops := []bodyOp{
		{"authenticate", "POST", pLogin, ""},
		{"createCurrentApiSessionCertificate", "POST", pCerts, "alice"},
		{"createIdentity", "POST", pIdentities, "admin"},
		{"patchIdentity", "PATCH", pIdentities + "/" + f.aliceID, "admin"},
		{"createAuthenticator", "POST", pAuthenticators, "admin"},
		{"patchAuthenticator", "PATCH", pAuthenticators + "/" + f.aliceAuthID, "admin"},
		{"createExternalJWTSigner", "POST", pSigners, "admin"},
		{"patchExternalJWTSigner", "PATCH", pSigners + "/" + f.signerID, "admin"},
		{"createAdmission", "POST", pAdmissions, "router"},
		{"createHeartbeat", "POST", pHeartbeats, "router"},
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	formats := []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"broken json", "", `{"name":`, 400, cParse},
		{"truncated object", "", `{`, 400, cParse},
		{"single quotes", "", `{'name':'x'}`, 400, cParse},
		{"trailing comma", "", `{"name":"x",}`, 400, cParse},
		{"json array", "", `[]`, 400, cValidate},
		{"json string", "", `"x"`, 400, cValidate},
		{"json number", "", `42`, 400, cValidate},
		{"nested 20000 deep", "", deep, 400, cParse},
		{"text/plain", "text/plain", `{}`, 400, cParse},
		{"form", "application/x-www-form-urlencoded", `a=b`, 400, cParse},
		{"no content type", noType, `{}`, 400, cParse},
		{"xml", "application/xml", `<a/>`, 400, cParse},
		{"over 1 MiB", "", oversized, 413, cTooBig},
		// A Content-Type that is malformed, a wildcard, another type with
		// json in its name, or said twice does not declare a JSON body:
		// the reply of text/plain, whatever the body.
		{"content type with empty parameters", "application/json;;", `{}`, 400, cParse},
		{"content type parameter without a value", "application/json; x", `{}`, 400, cParse},
		{"content type without a subtype", "application/", `{}`, 400, cParse},
		{"content type listing two types", "application/json, text/plain", `{}`, 400, cParse},
		{"content type application/jsonx", "application/jsonx", `{}`, 400, cParse},
		{"content type of another +json type", "application/merge-patch+json", `{}`, 400, cParse},
		{"content type */*", "*/*", `{}`, 400, cParse},
		{"content type application/*", "application/*", `{}`, 400, cParse},
	}
	// Two Content-Type headers are ambiguous, even when one of them, or
	// both, say JSON.
	twice := []struct{ name, first, second string }{
		{"json, then text/plain", "application/json", "text/plain"},
		{"text/plain, then json", "text/plain", "application/json"},
		{"json twice", "application/json", "application/json"},
	}
	var cs []badRequest
	for _, o := range ops {
		for _, fm := range formats {
			cs = append(cs, badRequest{
				name: o.op + "/" + fm.name, op: o.op, method: o.method, path: o.path, as: o.as,
				ctype: fm.ctype, body: fm.body, status: fm.status, code: fm.code,
			})
		}
		for _, tw := range twice {
			cs = append(cs, badRequest{
				name: o.op + "/content type " + tw.name, op: o.op, method: o.method, path: o.path, as: o.as,
				ctype: tw.first, header: http.Header{"Content-Type": {tw.second}}, body: `{}`,
				status: 400, code: cParse,
			})
		}
		// A JSON value followed by more text is not JSON: refused whole,
		// so that nothing of it is applied.
		cs = append(cs, badRequest{
			name: o.op + "/trailing data", op: o.op, method: o.method, path: o.path, as: o.as,
			body: `{} trailing`, status: 400, code: cParse,
		}, badRequest{
			name: o.op + "/two values", op: o.op, method: o.method, path: o.path, as: o.as,
			body: `{}{}`, status: 400, code: cParse,
		})
	}
	return cs
}

// paginationCases sends out-of-range and unparsable pages to every list.
func paginationCases() []badRequest {
	lists := []bodyOp{
		{"listCurrentApiSessionCertificates", "GET", pCerts, "alice"},
		{"listIdentities", "GET", pIdentities, "admin"},
		{"listAuthenticators", "GET", pAuthenticators, "admin"},
		{"listExternalJWTSigners", "GET", pSigners, "admin"},
		{"listAPISessions", "GET", pSessions, "admin"},
	}
	pages := []struct {
		query, code, field string
	}{
		{"limit=0", cPage, "limit"},
		{"limit=-1", cPage, "limit"},
		{"limit=501", cPage, "limit"},
		{"limit=99999999999999999999", cPage, "limit"},
		{"limit=abc", cPage, "limit"},
		{"limit=1.5", cPage, "limit"},
		{"limit=%00", cPage, "limit"},
		{"offset=-1", cPage, "offset"},
		{"offset=100001", cPage, "offset"},
		{"offset=-9223372036854775808", cPage, "offset"},
		{"offset=abc", cPage, "offset"},
		{"offset=1e3", cPage, "offset"},
	}
	var cs []badRequest
	for _, l := range lists {
		for _, p := range pages {
			cs = append(cs, badRequest{
				name: l.op + "/" + p.query, op: l.op, method: l.method, path: l.path + "?" + p.query, as: l.as,
				status: 400, code: p.code, field: p.field,
			})
		}
	}
	return cs
}

// idCases sends ids of every odd shape to every operation with an id.
func idCases(f *fixture) []badRequest {
	long := strings.Repeat("a", 4096)
	shapes := []struct{ name, id string }{
		{"unknown id", "nope"},
		{"encoded slash", "a%2Fb"},
		{"NUL", "%00"},
		{"id with NUL", "a%00b"},
		{"unicode", "%C3%BCn%C3%AFc%C3%B6d%C3%A9"},
		{"emoji", "%F0%9F%94%91"},
		{"4 KiB id", long},
		{"space", "a%20b"},
		{"encoded dot dot", "%2E%2E"},
		{"dot dot", ".."},
		{"dot", "."},
	}
	detail := []idOp{
		{"detailCurrentApiSessionCertificate", "GET", pCerts, "alice", ""},
		{"detailIdentity", "GET", pIdentities, "admin", ""},
		{"detailAuthenticator", "GET", pAuthenticators, "admin", ""},
		{"detailExternalJWTSigner", "GET", pSigners, "admin", ""},
		{"detailAPISession", "GET", pSessions, "admin", ""},
	}
	change := []idOp{
		{"deleteCurrentApiSessionCertificate", "DELETE", pCerts, "alice", ""},
		{"deleteIdentity", "DELETE", pIdentities, "admin", ""},
		{"deleteAuthenticator", "DELETE", pAuthenticators, "admin", ""},
		{"deleteExternalJWTSigner", "DELETE", pSigners, "admin", ""},
		{"deleteAPISession", "DELETE", pSessions, "admin", ""},
		{"patchIdentity", "PATCH", pIdentities, "admin", `{"name":"renamed"}`},
		{"patchAuthenticator", "PATCH", pAuthenticators, "admin", `{"password":"long enough"}`},
		{"patchExternalJWTSigner", "PATCH", pSigners, "admin", `{"enabled":false}`},
	}
	var cs []badRequest
	add := func(o idOp, name, id string) {
		cs = append(cs, badRequest{
			name: o.op + "/" + name, op: o.op, method: o.method, path: o.prefix + "/" + id, as: o.as,
			body: o.body, status: 404, code: cNotFound,
		})
	}
	for _, o := range detail {
		for _, s := range shapes {
			add(o, s.name, s.id)
		}
	}
	for _, o := range change {
		for _, s := range shapes[:4] {
			add(o, s.name, s.id)
		}
		add(o, "4 KiB id", long)
	}

	// Ids that exist, but not for this caller or not of this kind: never
	// reveal that they exist.
	cs = append(cs,
		badRequest{name: "detailCurrentApiSessionCertificate/another session's",
			op: "detailCurrentApiSessionCertificate", method: "GET", path: pCerts + "/" + f.adminCt.ID,
			as: "alice", status: 404, code: cNotFound},
		badRequest{name: "deleteCurrentApiSessionCertificate/another session's",
			op: "deleteCurrentApiSessionCertificate", method: "DELETE", path: pCerts + "/" + f.adminCt.ID,
			as: "alice", status: 404, code: cNotFound},
		badRequest{name: "detailIdentity/a signer's id", op: "detailIdentity", method: "GET",
			path: pIdentities + "/" + f.signerID, as: "admin", status: 404, code: cNotFound},
		badRequest{name: "deleteAuthenticator/an identity's id", op: "deleteAuthenticator",
			method: "DELETE", path: pAuthenticators + "/" + f.aliceID, as: "admin", status: 404,
			code: cNotFound},
		badRequest{name: "deleteAPISession/a certificate's id", op: "deleteAPISession", method: "DELETE",
			path: pSessions + "/" + f.aliceCert.ID, as: "admin", status: 404, code: cNotFound},
	)
	return cs
}

// tokenCases send zt-session headers of every odd shape.
func tokenCases() []badRequest {
	tok := func(vs ...string) http.Header { return http.Header{"Zt-Session": vs} }
	cur := func(name string, h http.Header, code string) badRequest {
		return badRequest{name: "getCurrentAPISession/" + name, op: "getCurrentAPISession", method: "GET",
			path: pCurrent, header: h, status: 401, code: code}
	}
	cs := []badRequest{
		cur("no token", nil, cUnauth),
		cur("empty token", tok(""), cUnauth),
		cur("garbage token", tok("garbage"), cUnauth),
		cur("token with a space", tok("abc def"), cUnauth),
		cur("8 KiB token", tok(strings.Repeat("z", 8<<10)), cUnauth),
		cur("unicode token", tok("tökén-🔑"), cUnauth),
		cur("quoted token", tok(`"abc"`), cUnauth),
		cur("two garbage tokens", tok("garbage", "rubbish"), cUnauth),
		cur("token as a bearer", http.Header{"Authorization": {"Bearer garbage"}}, cUnauth),
		{name: "getCurrentAPISession/token in the query", op: "getCurrentAPISession", method: "GET",
			path: pCurrent + "?zt-session=garbage", status: 401, code: cUnauth},
		{name: "getCurrentAPISession/ended session", op: "getCurrentAPISession", method: "GET",
			path: pCurrent, as: "ended", status: 401, code: cUnauth},
		{name: "getCurrentAPISession/valid token then garbage", op: "getCurrentAPISession", method: "GET",
			path: pCurrent, as: "alice", header: tok("garbage"), status: 401, code: cUnauth},
		{name: "getCurrentAPISession/garbage then valid token", op: "getCurrentAPISession", method: "GET",
			path: pCurrent, header: tok("garbage", "{alice}"), status: 401, code: cUnauth},
		{name: "deleteCurrentAPISession/garbage then valid token", op: "deleteCurrentAPISession",
			method: "DELETE", path: pCurrent, header: tok("garbage", "{alice}"), status: 401, code: cUnauth},
		{name: "deleteCurrentAPISession/ended session", op: "deleteCurrentAPISession", method: "DELETE",
			path: pCurrent, as: "ended", status: 401, code: cUnauth},
		{name: "getCurrentAPISession/token just under the header limit", op: "getCurrentAPISession",
			method: "GET", path: pCurrent, header: tok(strings.Repeat("z", 60<<10)), status: 401,
			code: cUnauth, http1: true},
		{name: "getCurrentAPISession/header over 64 KiB", op: "getCurrentAPISession", method: "GET",
			path: pCurrent, header: tok(strings.Repeat("z", 70<<10)),
			status: http.StatusRequestHeaderFieldsTooLarge,
			transport: "net/http refuses a header over --max-header-size before any handler runs, " +
				"with a fixed plain-text reply; the limit bounds what one connection makes the " +
				"server buffer, so it is kept rather than raised to give an envelope"},

		// Sessions of the wrong kind.
		{name: "createIdentity/user session", op: "createIdentity", method: "POST", path: pIdentities,
			as: "alice", body: `{"name":"mallory","type":"User","isAdmin":true}`, status: 401,
			code: cUnauth},
		{name: "createIdentity/router session", op: "createIdentity", method: "POST", path: pIdentities,
			as: "router", body: `{"name":"mallory","type":"User"}`, status: 401, code: cUnauth},
		{name: "listAPISessions/router session", op: "listAPISessions", method: "GET", path: pSessions,
			as: "router", status: 401, code: cUnauth},
		{name: "createAdmission/admin session", op: "createAdmission", method: "POST", path: pAdmissions,
			as: "admin", body: `{"token":"x","certificate":"x"}`, status: 401, code: cUnauth},
		{name: "listEvents/user session", op: "listEvents", method: "GET", path: pEvents, as: "alice",
			status: 401, code: cUnauth},
		{name: "createHeartbeat/ended session", op: "createHeartbeat", method: "POST", path: pHeartbeats,
			as: "ended", body: `{"apiSessionIds":[]}`, status: 401, code: cUnauth},
		{name: "createIdentity/garbage then admin token", op: "createIdentity", method: "POST",
			path: pIdentities, header: tok("garbage", "{admin}"), body: `{"name":"mallory","type":"User"}`,
			status: 401, code: cUnauth},
		{name: "createHeartbeat/user session", op: "createHeartbeat", method: "POST", path: pHeartbeats,
			as: "alice", body: `{"apiSessionIds":[]}`, status: 401, code: cUnauth},
	}
	return append(cs, uncleanPathCases()...)
}

// uncleanPathCases send a user's and a router's token to the management and
// router APIs by paths that are not clean. The API's router would clean
// them and serve the operation they name; they must be refused without
// reaching it, whatever the session.
func uncleanPathCases() []badRequest {
	mallory := `{"name":"mallory","type":"User","isAdmin":true}`
	paths := []struct{ name, method, path, as, body string }{
		{"listIdentities/user session, doubled slash", "GET", "/edge//management/v1/identities", "alice", ""},
		{"createIdentity/user session, doubled slash", "POST", "/edge//management/v1/identities", "alice",
			mallory},
		{"createIdentity/user session, slash inside", "POST", "/edge/management/v1//identities", "alice",
			mallory},
		{"createIdentity/user session, leading slashes", "POST", "//edge/management/v1/identities", "alice",
			mallory},
		{"createIdentity/router session, doubled slash", "POST", "/edge//management/v1/identities", "router",
			mallory},
		{"createIdentity/user session, dot segment", "POST", "/edge/./management/v1/identities", "alice",
			mallory},
		{"createIdentity/user session, from the client API", "POST",
			"/edge/client/v1/../../management/v1/identities", "alice", mallory},
		{"listAPISessions/user session, doubled slash", "GET", "/edge//management/v1/api-sessions", "alice",
			""},
		{"listEvents/user session, doubled slash", "GET", "/edge//router/v1/events", "alice", ""},
		{"createHeartbeat/user session, doubled slash", "POST", "/edge//router/v1/heartbeats", "alice",
			`{"apiSessionIds":[]}`},
		{"createAdmission/admin session, doubled slash", "POST", "/edge/router//v1/admissions", "admin",
			`{"token":"x","certificate":"x"}`},
	}
	cs := make([]badRequest, 0, len(paths))
	for _, p := range paths {
		cs = append(cs, badRequest{name: p.name, method: p.method, path: p.path, as: p.as, body: p.body,
			status: 404, code: cNotFound})
	}
	return cs
}

func authenticateCases(t *testing.T, f *fixture) []badRequest {
	t.Helper()
	login := func(name, body, code, field string) badRequest {
		return badRequest{name: "authenticate/" + name, op: "authenticate", method: "POST", path: pLogin,
			body: body, status: 400, code: code, field: field}
	}
	huge := strings.Repeat("u", 900<<10)
	cs := []badRequest{
		login("empty body", "", cValidate, "username"),
		login("null body", `null`, cValidate, "username"),
		login("empty object", `{}`, cValidate, "username"),
		login("username is a number", `{"username":5,"password":"x"}`, cValidate, "username"),
		login("username is null", `{"username":null,"password":"x"}`, cValidate, "username"),
		login("username is an array", `{"username":["admin"],"password":"x"}`, cValidate, "username"),
		login("password is a number", `{"username":"admin","password":5}`, cValidate, "password"),
		login("password is an object", `{"username":"admin","password":{}}`, cValidate, "password"),
		login("password is empty", `{"username":"admin","password":""}`, cValidate, "password"),
		login("configTypes is a string", `{"username":"a","password":"b","configTypes":"x"}`, cValidate,
			"configTypes"),
		login("configTypes holds a number", `{"username":"a","password":"b","configTypes":[1]}`,
			cValidate, "configTypes"),
		login("envInfo is a string", `{"username":"a","password":"b","envInfo":"x"}`, cValidate, "envInfo"),
		login("sdkInfo is an array", `{"username":"a","password":"b","sdkInfo":[]}`, cValidate, "sdkInfo"),
		{name: "authenticate/900 KiB username", op: "authenticate", method: "POST", path: pLogin,
			body: `{"username":"` + huge + `","password":"x"}`, status: 401, code: cAuth},
		{name: "authenticate/unknown user", op: "authenticate", method: "POST", path: pLogin,
			body: `{"username":"nobody","password":"nothing"}`, status: 401, code: cAuth},
	}
	method := func(name, query string) badRequest {
		return badRequest{name: "authenticate/method " + name, op: "authenticate", method: "POST",
			path: pAuth + query, body: `{"username":"admin","password":"x"}`, status: 400, code: cValidate,
			field: "method"}
	}
	cs = append(cs,
		method("missing", ""),
		method("empty", "?method="),
		method("upper case", "?method=PASSWORD"),
		method("unknown", "?method=kerberos"),
		method("unicode", "?method=p%C3%A4ssword"),
		method("NUL", "?method=password%00"),
	)

	bearer := func(name, header string) badRequest {
		h := http.Header{}
		if header != "" {
			h.Set("Authorization", header)
		}
		return badRequest{name: "authenticate/ext-jwt " + name, op: "authenticate", method: "POST",
			path: pAuth + "?method=ext-jwt", body: `{}`, header: h, status: 401, code: cAuth}
	}
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unknownIssuer := f.claims(time.Minute)
	unknownIssuer["iss"] = "https://stranger.invalid"
	wrongAudience := f.claims(time.Minute)
	wrongAudience["aud"] = "someone-else"
	noSubject := f.claims(time.Minute)
	delete(noSubject, "sub")
	cs = append(cs,
		bearer("without a token", ""),
		bearer("with an empty bearer", "Bearer"),
		bearer("with basic auth", "Basic YWRtaW46eA=="),
		bearer("with garbage", "Bearer garbage"),
		bearer("with three dots", "Bearer ..."),
		bearer("with a 20 KiB token", "Bearer "+strings.Repeat("a", 20<<10)),
		bearer("unsigned (alg none)", "Bearer "+jwtOf(t, nil, f.claims(time.Minute))),
		bearer("expired", "Bearer "+jwtOf(t, f.signerKey, f.claims(-time.Hour))),
		bearer("signed by a stranger", "Bearer "+jwtOf(t, stranger, f.claims(time.Minute))),
		bearer("of an unknown issuer", "Bearer "+jwtOf(t, f.signerKey, unknownIssuer)),
		bearer("for another audience", "Bearer "+jwtOf(t, f.signerKey, wrongAudience)),
		bearer("without a subject", "Bearer "+jwtOf(t, f.signerKey, noSubject)),
		badRequest{name: "authenticate/cert without a client certificate", op: "authenticate",
			method: "POST", path: pAuth + "?method=cert", body: `{}`, status: 401, code: cAuth},
	)
	return cs
}

func certificateCases(t *testing.T, f *fixture) []badRequest {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := csrPEM(t, ec)
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-1] ^= 0xff
	// A weak key is the point: the server must refuse it.
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: see above

	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pem.Decode([]byte(f.aliceCert.Chain))
	junk := make([]byte, 70<<10)
	if _, err := rand.Read(junk); err != nil {
		t.Fatal(err)
	}

	create := func(name, body, code, field string) badRequest {
		return badRequest{name: "createCurrentApiSessionCertificate/" + name,
			op: "createCurrentApiSessionCertificate", method: "POST", path: pCerts, as: "alice",
			body: body, status: 400, code: code, field: field}
	}
	csr := func(name, value string) badRequest {
		return create("csr "+name, `{"csr":`+js(value)+`}`, cCSR, "")
	}
	return []badRequest{
		create("empty body", "", cValidate, "sessionCertificate"),
		create("null body", `null`, cValidate, "csr"),
		create("no csr", `{}`, cValidate, "csr"),
		create("csr is null", `{"csr":null}`, cValidate, "csr"),
		create("csr is a number", `{"csr":42}`, cValidate, "csr"),
		create("csr is an array", `{"csr":[`+js(good)+`]}`, cValidate, "csr"),
		create("csr under another name", `{"pem":`+js(good)+`}`, cValidate, "csr"),
		csr("empty", ""),
		csr("not PEM", "hello"),
		csr("two blocks", good+good),
		csr("a certificate", pemBlock("CERTIFICATE", leaf.Bytes)),
		csr("garbage DER", pemBlock("CERTIFICATE REQUEST", []byte("garbage"))),
		csr("trailing bytes", good+"trailing"),
		csr("a bad signature", pemBlock("CERTIFICATE REQUEST", tampered)),
		csr("of an RSA 1024 key", csrPEM(t, weakRSA)),
		csr("of a P-224 key", csrPEM(t, p224)),
		csr("over 64 KiB", pemBlock("CERTIFICATE REQUEST", junk)),
		csr("a 900 KiB string", strings.Repeat("c", 900<<10)),
		csr("of a private key", pemBlock("EC PRIVATE KEY", []byte("not really"))),
	}
}

func identityCases(f *fixture) []badRequest {
	create := func(name, body, field string) badRequest {
		return badRequest{name: "createIdentity/" + name, op: "createIdentity", method: "POST",
			path: pIdentities, as: "admin", body: body, status: 400, code: cValidate, field: field}
	}
	patch := func(name, body, field string) badRequest {
		return badRequest{name: "patchIdentity/" + name, op: "patchIdentity", method: "PATCH",
			path: pIdentities + "/" + f.aliceID, as: "admin", body: body, status: 400, code: cValidate,
			field: field}
	}
	long := strings.Repeat("n", 256)
	huge := strings.Repeat("n", 900<<10)
	return []badRequest{
		create("empty body", "", "body"),
		create("null body", `null`, "name"),
		create("no name", `{"type":"User"}`, "name"),
		create("no type", `{"name":"x"}`, "type"),
		create("name is null", `{"name":null,"type":"User"}`, "name"),
		create("name is a number", `{"name":5,"type":"User"}`, "name"),
		create("name is an array", `{"name":["x"],"type":"User"}`, "name"),
		create("name is empty", `{"name":"","type":"User"}`, "name"),
		create("name of 256 characters", `{"name":"`+long+`","type":"User"}`, "name"),
		create("name of 900 KiB", `{"name":"`+huge+`","type":"User"}`, "name"),
		create("type unknown", `{"name":"x","type":"Robot"}`, "type"),
		create("type in lower case", `{"name":"x","type":"user"}`, "type"),
		create("type is a number", `{"name":"x","type":1}`, "type"),
		create("type is null", `{"name":"x","type":null}`, "type"),
		create("isAdmin is a string", `{"name":"x","type":"User","isAdmin":"yes"}`, "isAdmin"),
		create("isAdmin is a number", `{"name":"x","type":"User","isAdmin":1}`, "isAdmin"),
		create("externalId is a number", `{"name":"x","type":"User","externalId":7}`, "externalId"),
		create("externalId of 256 characters", `{"name":"x","type":"User","externalId":"`+long+`"}`,
			"externalId"),
		create("name taken", `{"name":"alice","type":"User"}`, "name"),
		create("externalId taken", `{"name":"x","type":"User","externalId":"alice-ext"}`, "externalId"),
		patch("empty body", "", "body"),
		patch("name is empty", `{"name":""}`, "name"),
		patch("name is a number", `{"name":5}`, "name"),
		patch("name of 256 characters", `{"name":"`+long+`"}`, "name"),
		patch("name taken", `{"name":"admin"}`, "name"),
		patch("type unknown", `{"type":"Robot"}`, "type"),
		patch("type is a number", `{"type":2}`, "type"),
		patch("isAdmin is a string", `{"isAdmin":"true"}`, "isAdmin"),
		patch("isAdmin is a number", `{"isAdmin":0}`, "isAdmin"),
		patch("externalId is a number", `{"externalId":7}`, "externalId"),
		patch("externalId of 256 characters", `{"externalId":"`+long+`"}`, "externalId"),
	}
}

func authenticatorCases(t *testing.T, f *fixture) []badRequest {
	t.Helper()
	create := func(name, body, field string) badRequest {
		return badRequest{name: "createAuthenticator/" + name, op: "createAuthenticator", method: "POST",
			path: pAuthenticators, as: "admin", body: body, status: 400, code: cValidate, field: field}
	}
	patch := func(name, body, field string) badRequest {
		return badRequest{name: "patchAuthenticator/" + name, op: "patchAuthenticator", method: "PATCH",
			path: pAuthenticators + "/" + f.aliceAuthID, as: "admin", body: body, status: 400,
			code: cValidate, field: field}
	}
	id := js(f.aliceID)
	updb := func(extra string) string {
		return `{"method":"updb","identityId":` + id + `,"username":"zed","password":"long enough"` +
			extra + `}`
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := csrPEM(t, ec)
	cert := `{"method":"cert","identityId":` + id
	long := strings.Repeat("p", 1025)
	return []badRequest{
		create("empty body", "", "body"),
		create("no method", `{"identityId":`+id+`}`, "method"),
		create("method unknown", `{"method":"ldap","identityId":`+id+`}`, "method"),
		create("method is a number", `{"method":1,"identityId":`+id+`}`, "method"),
		create("no identityId", `{"method":"updb","username":"zed","password":"long enough"}`,
			"identityId"),
		create("identityId is empty",
			`{"method":"updb","identityId":"","username":"z","password":"long enough"}`, "identityId"),
		create("identityId is a number", `{"method":"updb","identityId":3}`, "identityId"),
		create("identityId unknown",
			`{"method":"updb","identityId":"nope","username":"zed","password":"long enough"}`, "identityId"),
		create("username is a number",
			`{"method":"updb","identityId":`+id+`,"username":1,"password":"long enough"}`, "username"),
		create("password is a number",
			`{"method":"updb","identityId":`+id+`,"username":"zed","password":1}`, "password"),
		create("password of 1025 characters",
			`{"method":"updb","identityId":`+id+`,"username":"zed","password":"`+long+`"}`, "password"),
		create("password too short",
			`{"method":"updb","identityId":`+id+`,"username":"zed","password":"short"}`, "password"),
		create("updb without username", `{"method":"updb","identityId":`+id+`,"password":"long enough"}`,
			"username"),
		create("updb without password", `{"method":"updb","identityId":`+id+`,"username":"zed"}`,
			"password"),
		create("updb with certPem", updb(`,"certPem":"x"`), "certPem"),
		create("username taken",
			`{"method":"updb","identityId":`+id+`,"username":"edge","password":"long enough"}`, "username"),
		create("cert without certPem", cert+`}`, "certPem"),
		create("cert with garbage", cert+`,"certPem":"garbage"}`, "certPem"),
		create("cert with a CSR", cert+`,"certPem":`+js(csr)+`}`, "certPem"),
		create("cert with a username", cert+`,"certPem":`+js(f.aliceCert.Chain)+`,"username":"zed"}`,
			"username"),
		patch("empty body", "", "body"),
		patch("username is empty", `{"username":""}`, "username"),
		patch("username is a number", `{"username":1}`, "username"),
		patch("username of 256 characters", `{"username":"`+strings.Repeat("u", 256)+`"}`, "username"),
		patch("username taken", `{"username":"edge"}`, "username"),
		patch("password is empty", `{"password":""}`, "password"),
		patch("password is a number", `{"password":12345678}`, "password"),
		patch("password too short", `{"password":"short"}`, "password"),
		patch("password of 1025 characters", `{"password":"`+long+`"}`, "password"),
	}
}

func signerCases(f *fixture) []badRequest {
	create := func(name, body, field string) badRequest {
		return badRequest{name: "createExternalJWTSigner/" + name, op: "createExternalJWTSigner",
			method: "POST", path: pSigners, as: "admin", body: body, status: 400, code: cValidate,
			field: field}
	}
	patch := func(name, body, field string) badRequest {
		return badRequest{name: "patchExternalJWTSigner/" + name, op: "patchExternalJWTSigner",
			method: "PATCH", path: pSigners + "/" + f.signerID, as: "admin", body: body, status: 400,
			code: cValidate, field: field}
	}
	jwks := `"jwksEndpoint":"https://keys.invalid/jwks"`
	base := func(extra string) string {
		return `{"name":"s2","issuer":"i","audience":"a",` + extra + `}`
	}
	return []badRequest{
		create("empty body", "", "body"),
		create("no name", `{"issuer":"i","audience":"a",`+jwks+`}`, "name"),
		create("no issuer", `{"name":"s2","audience":"a",`+jwks+`}`, "issuer"),
		create("no audience", `{"name":"s2","issuer":"i",`+jwks+`}`, "audience"),
		create("name is empty", `{"name":"","issuer":"i","audience":"a",`+jwks+`}`, "name"),
		create("issuer is empty", `{"name":"s2","issuer":"","audience":"a",`+jwks+`}`, "issuer"),
		create("name is a number", `{"name":2,"issuer":"i","audience":"a",`+jwks+`}`, "name"),
		create("name of 256 characters",
			`{"name":"`+strings.Repeat("s", 256)+`","issuer":"i","audience":"a",`+jwks+`}`, "name"),
		create("enabled is a string", base(jwks+`,"enabled":"yes"`), "enabled"),
		create("useExternalId is a string", base(jwks+`,"useExternalId":"no"`), "useExternalId"),
		create("claimsProperty is a number", base(jwks+`,"claimsProperty":5`), "claimsProperty"),
		create("no key", `{"name":"s2","issuer":"i","audience":"a"}`, "jwksEndpoint"),
		create("plain http jwks", base(`"jwksEndpoint":"http://keys.invalid/jwks"`), "jwksEndpoint"),
		create("jwks not a URL", base(`"jwksEndpoint":"not a url"`), "jwksEndpoint"),
		create("both keys", base(jwks+`,"certPem":`+js(f.signerPEM)), "certPem"),
		create("garbage certPem", base(`"certPem":"garbage"`), "certPem"),
		create("name taken", `{"name":"corpus-signer","issuer":"i","audience":"a",`+jwks+`}`, "name"),
		patch("empty body", "", "body"),
		patch("name is empty", `{"name":""}`, "name"),
		patch("issuer is empty", `{"issuer":""}`, "issuer"),
		patch("audience is empty", `{"audience":""}`, "audience"),
		patch("name is a number", `{"name":3}`, "name"),
		patch("enabled is a string", `{"enabled":"x"}`, "enabled"),
		patch("garbage certPem", `{"certPem":"garbage"}`, "certPem"),
		patch("plain http jwks instead of the certPem",
			`{"jwksEndpoint":"http://keys.invalid/jwks","certPem":""}`, "jwksEndpoint"),
		patch("a second key", `{`+jwks+`}`, "certPem"),
	}
}

func routerCases(t *testing.T, f *fixture) []badRequest {
	t.Helper()
	admit := func(name, body string, status int, code, field string) badRequest {
		return badRequest{name: "createAdmission/" + name, op: "createAdmission", method: "POST",
			path: pAdmissions, as: "router", body: body, status: status, code: code, field: field}
	}
	chain := js(f.aliceCert.Chain)
	tok := js(f.alice.Token)
	stranger := selfSignedClient(t, f.aliceID)
	strangerPEM := pemBlock("CERTIFICATE", stranger.Certificate[0])
	csr := csrPEM(t, stranger.PrivateKey)
	events := func(name, query, field string) badRequest {
		return badRequest{name: "listEvents/" + name, op: "listEvents", method: "GET",
			path: pEvents + "?" + query, as: "router", status: 400, code: cValidate, field: field}
	}
	beat := func(name, body, field string) badRequest {
		return badRequest{name: "createHeartbeat/" + name, op: "createHeartbeat", method: "POST",
			path: pHeartbeats, as: "router", body: body, status: 400, code: cValidate, field: field}
	}
	many := `"s"` + strings.Repeat(`,"s"`, 10000)
	return []badRequest{
		admit("empty body", "", 400, cValidate, "body"),
		admit("no token", `{"certificate":`+chain+`}`, 400, cValidate, "token"),
		admit("no certificate", `{"token":`+tok+`}`, 400, cValidate, "certificate"),
		admit("token is empty", `{"token":"","certificate":`+chain+`}`, 400, cValidate, "token"),
		admit("token is null", `{"token":null,"certificate":`+chain+`}`, 400, cValidate, "token"),
		admit("token is a number", `{"token":1,"certificate":`+chain+`}`, 400, cValidate, "token"),
		admit("token of 1025 characters",
			`{"token":"`+strings.Repeat("t", 1025)+`","certificate":`+chain+`}`, 400, cValidate, "token"),
		admit("certificate is empty", `{"token":`+tok+`,"certificate":""}`, 400, cValidate,
			"certificate"),
		admit("certificate is a number", `{"token":`+tok+`,"certificate":1}`, 400, cValidate,
			"certificate"),
		admit("certificate is garbage", `{"token":`+tok+`,"certificate":"garbage"}`, 400, cValidate,
			"certificate"),
		admit("certificate of garbage DER", `{"token":`+tok+`,"certificate":`+
			js(pemBlock("CERTIFICATE", []byte("garbage")))+`}`, 400, cValidate, "certificate"),
		admit("certificate is a CSR", `{"token":`+tok+`,"certificate":`+js(csr)+`}`, 400, cValidate,
			"certificate"),
		admit("certificate of 900 KiB",
			`{"token":`+tok+`,"certificate":"`+strings.Repeat("c", 900<<10)+`"}`, 400, cValidate,
			"certificate"),
		admit("unknown token", `{"token":"garbage","certificate":`+chain+`}`, 403,
			"INVALID_API_SESSION", ""),
		admit("ended session's token", `{"token":`+js(f.tokens["ended"])+`,"certificate":`+chain+`}`, 403,
			"INVALID_API_SESSION", ""),
		admit("another session's certificate",
			`{"token":`+tok+`,"certificate":`+js(f.adminCt.Chain)+`}`, 403, "CERTIFICATE_NOT_BOUND", ""),
		admit("a stranger's certificate", `{"token":`+tok+`,"certificate":`+js(strangerPEM)+`}`, 403,
			"CERTIFICATE_UNTRUSTED", ""),

		events("after is a word", "after=abc", "after"),
		events("after is negative", "after=-1", "after"),
		events("after is a fraction", "after=1.5", "after"),
		events("after over uint64", "after=99999999999999999999", "after"),
		events("after of 21 digits", "after=123456789012345678901", "after"),
		events("after is empty", "after=", "after"),
		events("after with NUL", "after=1%00", "after"),
		events("wait is negative", "wait=-1", "wait"),
		events("wait over 60", "wait=61", "wait"),
		events("wait is a word", "wait=abc", "wait"),
		page(events("limit is 0", "limit=0", "limit")),
		page(events("limit over 1000", "limit=1001", "limit")),
		page(events("limit is a word", "limit=abc", "limit")),

		beat("empty body", "", "body"),
		beat("no ids", `{}`, "apiSessionIds"),
		beat("ids is null", `{"apiSessionIds":null}`, "apiSessionIds"),
		beat("ids is a string", `{"apiSessionIds":"s"}`, "apiSessionIds"),
		beat("ids is an object", `{"apiSessionIds":{}}`, "apiSessionIds"),
		beat("ids hold numbers", `{"apiSessionIds":[1,2]}`, "apiSessionIds"),
		beat("ids hold arrays", `{"apiSessionIds":[["s"]]}`, "apiSessionIds"),
		beat("10001 ids", `{"apiSessionIds":[`+many+`]}`, "apiSessionIds"),
	}
}

// outsideCases aim at paths and methods the spec does not have, and at
// operations without a body.
func outsideCases() []badRequest {
	return []badRequest{
		{name: "listVersion/body over 1 MiB", op: "listVersion", method: "GET", path: pVersion,
			body: oversized, status: 413, code: cTooBig},
		{name: "listIdentities/body over 1 MiB", op: "listIdentities", method: "GET", path: pIdentities,
			as: "admin", body: oversized, status: 413, code: cTooBig},
		{name: "deleteCurrentAPISession/body over 1 MiB", op: "deleteCurrentAPISession", method: "DELETE",
			path: pCurrent, as: "alice", body: oversized, status: 413, code: cTooBig},
		{name: "listHealthChecks/body over 1 MiB", op: "listHealthChecks", method: "GET", path: pHealth,
			body: oversized, status: 413, code: cTooBig},
		{name: "no operation/unknown path", method: "GET", path: "/edge/client/v1/nothing", status: 404,
			code: cNotFound},
		{name: "no operation/unknown version", method: "GET", path: "/edge/client/v2/version",
			status: 404, code: cNotFound},
		{name: "no operation/extra segment", method: "GET", path: pCerts + "/a/b", as: "alice",
			status: 404, code: cNotFound},
		{name: "no operation/PUT an identity", method: "PUT", path: pIdentities + "/x", as: "admin",
			body: `{}`, status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "no operation/POST the version", method: "POST", path: pVersion, body: `{}`, status: 405,
			code: "METHOD_NOT_ALLOWED"},
		{name: "no operation/DELETE the health checks", method: "DELETE", path: pHealth, status: 405,
			code: "METHOD_NOT_ALLOWED"},
	}
}

// page expects INVALID_PAGINATION: the server gives every refused limit or
// offset that code, the events' limit included.
func page(c badRequest) badRequest {
	c.code = cPage
	return c
}

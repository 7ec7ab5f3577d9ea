package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	oaerrors "github.com/go-openapi/errors"
	"github.com/go-openapi/spec"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
)

// The zt-session challenges of the wire contract. A live session of the
// wrong kind gets a third, insufficient_scope, which the contract leaves
// open; only its prefix is checked.
const (
	challengeMissing = `zt-session realm="zt-session" error="missing" ` +
		`error_description="no matching token was provided"`
	challengeInvalid = `zt-session realm="zt-session" error="invalid" ` +
		`error_description="token is invalid"`
	challengeScopePrefix  = `zt-session realm="zt-session" error="insufficient_scope"`
	challengeBearerPrefix = `Bearer realm=`
)

// codeStatus is the status each error code goes with. The first block is
// contract.md's table and the router section; the last two codes are the
// server's own, for replies the contract does not name a code for.
var codeStatus = map[string]int{
	"UNAUTHORIZED":             401,
	"INVALID_AUTH":             401,
	"INVALID_AUTH_METHOD":      400,
	"COULD_NOT_VALIDATE":       400,
	"COULD_NOT_PARSE_BODY":     400,
	"COULD_NOT_PROCESS_CSR":    400,
	"INVALID_PAGINATION":       400,
	"NOT_FOUND":                404,
	"REQUEST_ENTITY_TOO_LARGE": 413,
	"RATE_LIMITED":             429,
	"UNHANDLED":                500,
	"INVALID_API_SESSION":      403,
	"CERTIFICATE_NOT_BOUND":    403,
	"CERTIFICATE_EXPIRED":      403,
	"CERTIFICATE_UNTRUSTED":    403,
	"CURSOR_EXPIRED":           410,

	"SERVICE_UNAVAILABLE": 503,
	"METHOD_NOT_ALLOWED":  405,
}

// wireDate is the contract's date: RFC 3339, milliseconds, UTC.
var wireDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// exchange is one request and the verdict on its response.
type exchange struct {
	method   string
	path     string // escaped, without the query
	op       string // operationId; "" when no operation of the spec matched
	status   int
	code     string // error code of an error envelope, if any
	problems []string
	reported bool
}

func (x *exchange) String() string {
	op := x.op
	if op == "" {
		op = "no operation"
	}
	return x.method + " " + x.path + " (" + op + ") → " + strconv.Itoa(x.status)
}

// checker checks every response that passes through a client it wrapped
// against the spec and the wire contract, and keeps the verdicts. The
// response goes on to the caller unchanged.
type checker struct {
	spec *apiSpec

	mu         sync.Mutex
	exchanges  []*exchange
	requestIDs map[string]string // requestId → the exchange that carried it
}

func newChecker(s *apiSpec) *checker {
	return &checker{spec: s, requestIDs: map[string]string{}}
}

// wrap returns a client like hc whose transport goes through the checker.
// Redirects are not followed: a redirect is a response to judge, not a
// detour to take.
func (c *checker) wrap(hc *http.Client) *http.Client {
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	return &http.Client{
		Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return c.roundTrip(next, req)
		}),
		Timeout: hc.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *checker) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	x := c.spec.check(req, resp.StatusCode, resp.Header, body)
	if err != nil {
		x.problems = append(x.problems, "reading the body: "+err.Error())
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if id := requestID(body); id != "" {
		if prev, dup := c.requestIDs[id]; dup {
			x.problems = append(x.problems, "requestId "+id+" was already used by "+prev)
		}
		c.requestIDs[id] = x.String()
	}
	c.exchanges = append(c.exchanges, x)
	return resp, nil
}

// mark returns a position in the exchange log for since.
func (c *checker) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.exchanges)
}

// since returns the exchanges after mark.
func (c *checker) since(mark int) []*exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*exchange(nil), c.exchanges[mark:]...)
}

// unreported returns the exchanges with problems not yet reported, and
// marks them reported.
func (c *checker) unreported() []*exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*exchange
	for _, x := range c.exchanges {
		if len(x.problems) > 0 && !x.reported {
			x.reported = true
			out = append(out, x)
		}
	}
	return out
}

// seen returns the (operation, status) pairs exercised, with the error
// codes seen for each.
func (c *checker) seen() map[pair]map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[pair]map[string]bool{}
	for _, x := range c.exchanges {
		if x.op == "" {
			continue
		}
		p := pair{x.op, x.status}
		if out[p] == nil {
			out[p] = map[string]bool{}
		}
		if x.code != "" {
			out[p][x.code] = true
		}
	}
	return out
}

func requestID(body []byte) string {
	var env struct {
		Error *struct {
			RequestID string `json:"requestId"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		return ""
	}
	return env.Error.RequestID
}

// check judges one response: the operation, the status, the body against
// the declared schema, the declared headers, and the contract's envelope
// rules.
func (s *apiSpec) check(req *http.Request, status int, header http.Header, body []byte) *exchange {
	x := &exchange{method: req.Method, path: req.URL.EscapedPath(), status: status}
	fail := func(format string, args ...any) {
		x.problems = append(x.problems, fmt.Sprintf(format, args...))
	}

	var data any
	if len(body) > 0 {
		if ct := header.Get("Content-Type"); !isJSON(ct) {
			fail("Content-Type is %q, want application/json", ct)
		}
		if err := json.Unmarshal(body, &data); err != nil {
			fail("body is not JSON: %v: %.200q", err, body)
			data = nil
		}
	}
	x.code = errorCode(data)
	if status >= 500 && status != http.StatusServiceUnavailable {
		// Declared or not, a 5xx other than an outage means a server fault
		// that some request could provoke.
		fail("a %s reply is a server fault", statusText(status))
	}

	op, pathKnown := s.match(req.Method, x.path)
	if op == nil {
		if pathKnown {
			fail("the spec declares no %s on this path", req.Method)
		} else {
			fail("no path of the spec matches")
		}
		checkEnvelope(fail, nil, false, req, status, data)
		return x
	}
	x.op = op.id

	resp, ok := op.responses[status]
	if !ok {
		fail("status %s is not declared for %s (declared: %v)", statusText(status), op.id, op.statuses())
		checkEnvelope(fail, op, s.lists[op.id], req, status, data)
		return x
	}

	if resp.Schema != nil {
		if len(body) == 0 {
			fail("empty body; the spec declares one")
		} else if data != nil || string(body) == "null" {
			if err := validate.AgainstSchema(resp.Schema, data, strfmt.Default); err != nil {
				for _, e := range flatten(err) {
					fail("schema: %v", e)
				}
			}
			checkDates(fail, resp.Schema, data, "body")
		}
	}
	checkHeaders(fail, op, resp, req, status, header, data)
	checkEnvelope(fail, op, s.lists[op.id], req, status, data)
	return x
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// flatten lists the errors inside a go-openapi composite error.
func flatten(err error) []error {
	var ce *oaerrors.CompositeError
	if !errors.As(err, &ce) {
		return []error{err}
	}
	var out []error
	for _, e := range ce.Errors {
		out = append(out, flatten(e)...)
	}
	return out
}

// headerRequired decides whether a declared response header must be there.
// Swagger 2.0 cannot say that a response header is optional, so the rules
// come from the contract: the token of a login always comes back in
// zt-session; a 401 of an operation that takes a token always carries the
// zt-session challenge; the 401 of a failed login carries a Bearer
// challenge for ext-jwt logins only and no challenge otherwise, because
// operations that need no session send none.
func headerRequired(op *operation, status int, name string, req *http.Request) bool {
	if op.id == "authenticate" && status == http.StatusUnauthorized &&
		strings.EqualFold(name, "WWW-Authenticate") {
		return req.URL.Query().Get("method") == "ext-jwt"
	}
	return true
}

func checkHeaders(
	fail func(string, ...any),
	op *operation,
	resp *spec.Response,
	req *http.Request,
	status int,
	header http.Header,
	data any,
) {
	declaredChallenge := false
	for name := range resp.Headers {
		if strings.EqualFold(name, "WWW-Authenticate") {
			declaredChallenge = true
		}
		if !headerRequired(op, status, name, req) {
			continue
		}
		if header.Get(name) == "" {
			fail("declared header %s is missing", name)
		}
	}
	challenge := header.Get("WWW-Authenticate")
	switch {
	case challenge != "" && !declaredChallenge:
		fail("WWW-Authenticate %q is not declared for %s %d", challenge, op.id, status)
	case challenge != "" && op.id == "authenticate" &&
		!headerRequired(op, status, "WWW-Authenticate", req):
		fail("a %s login answered with WWW-Authenticate %q; only ext-jwt logins carry one",
			req.URL.Query().Get("method"), challenge)
	}

	if status == http.StatusUnauthorized && op.secured {
		// An empty value is no token; the server answers it as missing.
		hasToken := slices.ContainsFunc(req.Header.Values("zt-session"),
			func(v string) bool { return v != "" })
		switch {
		case !hasToken && challenge != challengeMissing:
			fail("without a token WWW-Authenticate is %q, want %q", challenge, challengeMissing)
		case hasToken && challenge != challengeInvalid &&
			!strings.HasPrefix(challenge, challengeScopePrefix):
			fail("with a token WWW-Authenticate is %q, want %q or insufficient_scope",
				challenge, challengeInvalid)
		}
	}
	if op.id == "authenticate" && status == http.StatusUnauthorized && challenge != "" &&
		!strings.HasPrefix(challenge, challengeBearerPrefix) {
		fail("an ext-jwt login challenge %q is not a Bearer challenge", challenge)
	}
	if op.id == "authenticate" && status == http.StatusOK {
		tok, _ := dig(data, "data", "token").(string)
		if got := header.Get("zt-session"); got != tok {
			fail("zt-session header %q differs from the body's token", got)
		}
	}
}

// checkEnvelope checks the contract's envelope rules beyond the schema:
// errors carry the error envelope with a request id and the error meta; a
// plain success has an empty meta and a list says which page it is.
func checkEnvelope(
	fail func(string, ...any),
	op *operation,
	list bool,
	req *http.Request,
	status int,
	data any,
) {
	obj, _ := data.(map[string]any)
	healthReport := op != nil && op.id == "listHealthChecks" && status == http.StatusServiceUnavailable
	switch {
	case status >= 400 && !healthReport:
		checkErrorEnvelope(fail, status, obj)
		return
	case op == nil || status >= 300:
		return
	}
	checkLinks(fail, obj["data"], "data")
	meta, ok := obj["meta"].(map[string]any)
	switch {
	case !ok:
		// A missing meta is the schema's to report.
	case op.id == "listEvents":
		// The event stream's meta is its cursor, which the schema checks.
	case list:
		checkPagination(fail, req, meta)
	case len(meta) != 0:
		fail("meta of a plain success is %v, want {}", meta)
	}
}

func checkErrorEnvelope(fail func(string, ...any), status int, obj map[string]any) {
	e, ok := obj["error"].(map[string]any)
	if !ok {
		fail("a %d reply without the error envelope", status)
		return
	}
	code, _ := e["code"].(string)
	if want, known := codeStatus[code]; !known {
		fail("error code %q is not a code of the contract", code)
	} else if want != status {
		fail("error code %s goes with status %d, not %d", code, want, status)
	}
	if id, _ := e["requestId"].(string); id == "" {
		fail("error without a requestId")
	}
	meta, _ := obj["meta"].(map[string]any)
	for _, k := range []string{"apiEnrollmentVersion", "apiVersion"} {
		if v, _ := meta[k].(string); v != "0.0.1" {
			fail("error meta.%s is %q, want 0.0.1", k, v)
		}
	}
	if cause, ok := e["cause"].(map[string]any); ok {
		_, field := cause["field"]
		_, nested := cause["code"]
		if !field && !nested {
			fail("error cause %v is neither a field error nor a nested error", cause)
		}
	}
}

// checkPagination checks that a list reply says which page it is: the
// limit and offset asked for, or the defaults (10, 0).
func checkPagination(fail func(string, ...any), req *http.Request, meta map[string]any) {
	p, ok := meta["pagination"].(map[string]any)
	if !ok {
		fail("a list reply without meta.pagination")
		return
	}
	for _, f := range []struct {
		name string
		def  float64
	}{{"limit", 10}, {"offset", 0}} {
		want := f.def
		if q := req.URL.Query().Get(f.name); q != "" {
			n, err := strconv.ParseFloat(q, 64)
			if err != nil {
				continue
			}
			want = n
		}
		if got, _ := p[f.name].(float64); got != want {
			fail("meta.pagination.%s is %v, want %v", f.name, p[f.name], want)
		}
	}
}

// checkLinks requires a self link of every _links map in a success body.
func checkLinks(fail func(string, ...any), v any, at string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if k == "_links" {
				links, _ := val.(map[string]any)
				self, _ := links["self"].(map[string]any)
				if href, _ := self["href"].(string); href == "" {
					fail("%s._links has no self href", at)
				}
				continue
			}
			checkLinks(fail, val, at+"."+k)
		}
	case []any:
		for i, val := range x {
			checkLinks(fail, val, at+"["+strconv.Itoa(i)+"]")
		}
	}
}

// checkDates requires the contract's date layout of every date-time value:
// the schema only asks for RFC 3339, which allows offsets and any
// precision.
func checkDates(fail func(string, ...any), s *spec.Schema, v any, at string) {
	if s == nil {
		return
	}
	switch x := v.(type) {
	case string:
		if s.Format == "date-time" && !wireDate.MatchString(x) {
			fail("%s is %q, want a UTC date with milliseconds", at, x)
		}
	case map[string]any:
		for k, val := range x {
			if p, ok := s.Properties[k]; ok {
				checkDates(fail, &p, val, at+"."+k)
			} else if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
				checkDates(fail, s.AdditionalProperties.Schema, val, at+"."+k)
			}
		}
	case []any:
		if s.Items == nil || s.Items.Schema == nil {
			return
		}
		for i, val := range x {
			checkDates(fail, s.Items.Schema, val, at+"["+strconv.Itoa(i)+"]")
		}
	}
}

// errorCode returns error.code of an error envelope, or "".
func errorCode(data any) string {
	code, _ := dig(data, "error", "code").(string)
	return code
}

// dig follows object keys into decoded JSON; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

package sdk

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"
)

// Error codes with which an edge router refuses a credential, in a 403
// reply. A Transport reports each of them, and the controller's 401
// CodeUnauthorized, to Invalidate.
const (
	// CodeInvalidAPISession: the token names no live session.
	CodeInvalidAPISession = "INVALID_API_SESSION"

	// CodeCertificateNotBound: the certificate is not a live certificate
	// of the token's session; it may have been deleted.
	CodeCertificateNotBound = "CERTIFICATE_NOT_BOUND"

	// CodeCertificateExpired: the certificate's validity has ended.
	CodeCertificateExpired = "CERTIFICATE_EXPIRED"

	// CodeCertificateUntrusted: the certificate does not chain to a CA the
	// controller issues from, for example after the CA was replaced.
	CodeCertificateUntrusted = "CERTIFICATE_UNTRUSTED"
)

// defaultIdleConnTimeout closes idle connections of a Transport whose base
// sets no limit: connections made with a replaced credential would
// otherwise stay open as long as the process.
const defaultIdleConnTimeout = 90 * time.Second

// maxRefusalBody bounds how much of a 401 or 403 reply a Transport reads to
// find its error code; error envelopes are far smaller.
const maxRefusalBody = 16 << 10

// Transport is an http.RoundTripper for requests to edge routers. Each
// request presents a certificate of the SDK in the TLS handshake and sends
// the token of that certificate's session as zt-session; a Transport never
// pairs a token with a connection made with another session's certificate.
// A refusal of the credential (a 401 UNAUTHORIZED or a 403 with one of the
// router's refusal codes, or a TLS alert refusing the certificate) is
// returned to the caller as it came and reported to Invalidate, so that the
// next request obtains a fresh credential. Requests are not retried.
//
// Create it with SDK.Transport; it is safe for concurrent use. After Close
// of the SDK, requests fail with ErrClosed.
type Transport struct {
	sdk  *SDK
	base *http.Transport

	mu  sync.Mutex
	iss *issued         // the credential tr presents
	tr  *http.Transport // nil before the first request
}

// Transport returns a Transport whose connections are made as base makes
// them: its proxy, timeouts and TLS settings, RootCAs among them, hold. Base
// is cloned, never modified; nil means http.DefaultTransport. The client
// certificate of base's TLS configuration is replaced by the SDK's, and an
// IdleConnTimeout of zero becomes 90 seconds, because connections of a
// replaced credential are closed only when they are idle.
func (s *SDK) Transport(base *http.Transport) *Transport {
	if base == nil {
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			base = dt
		} else {
			base = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		}
	}
	return &Transport{sdk: s, base: base}
}

// RoundTrip sends req with the current credential, renewing it first when
// it is due; see Transport. It refuses a URL that is not https, which would
// send the token in the clear. Otherwise it returns the errors of
// SDK.Credential before sending, and those of the underlying http.Transport
// after.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" {
		closeBody(req)
		return nil, errors.New("sdk: transport: only https requests carry a session token")
	}
	iss, err := t.sdk.current(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	tr := t.transportFor(iss)

	// A RoundTripper must not change the caller's request.
	out := req.Clone(req.Context())
	out.Header.Set("zt-session", iss.sess.token)
	res, err := tr.RoundTrip(out)
	if err != nil {
		if refusedHandshake(err) {
			t.sdk.Invalidate(iss.credential())
		}
		return nil, err
	}
	if refusedReply(res) {
		t.sdk.Invalidate(iss.credential())
	}
	return res, nil
}

// CloseIdleConnections closes the idle connections of the current
// credential; http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	tr := t.tr
	t.mu.Unlock()
	if tr != nil {
		tr.CloseIdleConnections()
	}
}

// transportFor returns the http.Transport whose connections present iss's
// certificate. Each credential has one of its own: a connection keeps the
// certificate of its handshake, so a connection pool shared across
// credentials would carry a new session's token over an old session's
// certificate.
func (t *Transport) transportFor(iss *issued) *http.Transport {
	t.mu.Lock()
	if t.iss == iss {
		tr := t.tr
		t.mu.Unlock()
		return tr
	}
	old := t.tr
	t.iss, t.tr = iss, t.newTransport(iss.cert)
	tr := t.tr
	t.mu.Unlock()

	// Requests in flight on old connections finish; those connections
	// close once idle, by IdleConnTimeout.
	if old != nil {
		old.CloseIdleConnections()
	}
	return tr
}

func (t *Transport) newTransport(cert *tls.Certificate) *http.Transport {
	tr := t.base.Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig // Clone cloned it
	}
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return cert, nil
	}
	tr.TLSClientConfig = cfg
	if tr.IdleConnTimeout == 0 {
		tr.IdleConnTimeout = defaultIdleConnTimeout
	}
	return tr
}

// refusedAlerts are the TLS alerts with which a server refuses a client
// certificate.
var refusedAlerts = []tls.AlertError{
	42, // bad_certificate
	44, // certificate_revoked
	45, // certificate_expired
	46, // certificate_unknown
	48, // unknown_ca
	49, // access_denied
}

// refusedHandshake reports whether err is a TLS alert from the server that
// refuses the client's certificate. crypto/tls returns a received alert as a
// *net.OpError "remote error" around a value of an unexported type, whose
// text is that of the tls.AlertError of the same number.
func refusedHandshake(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	text := op.Err.Error()
	for _, a := range refusedAlerts {
		if text == a.Error() {
			return true
		}
	}
	return false
}

// refusedReply reports whether res refuses the credential: a 401 with
// CodeUnauthorized or a 403 with a router's refusal code. It reads at most
// maxRefusalBody bytes of such a reply and leaves res.Body whole.
func refusedReply(res *http.Response) bool {
	var want []string
	switch res.StatusCode {
	case http.StatusUnauthorized:
		want = []string{CodeUnauthorized}
	case http.StatusForbidden:
		want = []string{CodeInvalidAPISession, CodeCertificateNotBound, CodeCertificateExpired,
			CodeCertificateUntrusted}
	default:
		return false
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil ||
		mt != "application/json" {
		return false
	}

	head, err := io.ReadAll(io.LimitReader(res.Body, maxRefusalBody))
	res.Body = &replayedBody{Reader: io.MultiReader(bytes.NewReader(head), res.Body),
		Closer: res.Body}
	if err != nil {
		return false
	}
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(head, &env) != nil {
		return false
	}
	for _, c := range want {
		if env.Error.Code == c {
			return true
		}
	}
	return false
}

// replayedBody is a response body of which a part was read ahead.
type replayedBody struct {
	io.Reader
	io.Closer
}

// closeBody closes the body of a request that is not sent, as RoundTrip
// must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

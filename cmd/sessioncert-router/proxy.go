package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/gate"
)

// Headers the router reads and writes.
const (
	tokenHeader    = "zt-session"
	identityHeader = "X-Sessioncert-Identity"
	sessionHeader  = "X-Sessioncert-Session"
	// ownPrefix marks the headers only the router may set; a client's own
	// are dropped so that the upstream can trust them.
	ownPrefix = "X-Sessioncert-"
)

// Headers by which proxies tell the upstream who the client is and how it
// connected. A client's own are dropped, whatever the reverse proxy does
// with some of them already, and the router sets X-Forwarded-For, -Host and
// -Proto itself.
const forwardedPrefix = "X-Forwarded-"

var forwardingHeaders = []string{"Forwarded", "X-Real-Ip"}

// Codes of the router's own error replies.
const (
	codeSessionMismatch       = "CONNECTION_BOUND_TO_ANOTHER_SESSION"
	codeControllerUnavailable = "CONTROLLER_UNAVAILABLE"
	codeUpstreamUnavailable   = "UPSTREAM_UNAVAILABLE"
)

var refusalMessages = map[string]string{
	gate.CodeMissingToken:       "send the session token in the zt-session header",
	gate.CodeMissingCertificate: "present the session's client certificate",
	gate.CodeInvalidAPISession:  "the session token is not valid",
	gate.CodeCertificateNotBound: "the client certificate does not belong to the session " +
		"(or has been deleted)",
	gate.CodeCertificateExpired:   "the client certificate is expired",
	gate.CodeCertificateUntrusted: "the client certificate is not trusted",
	codeSessionMismatch:           "this connection carries another session; open a new connection",
}

// proxy admits each request through the gate and forwards the admitted
// ones to the upstream. Build it with newProxy; the server must use its
// connContext and connState hooks.
type proxy struct {
	gate *gate.Gate
	log  *slog.Logger
	rp   *httputil.ReverseProxy

	conns sync.Map // net.Conn → *boundConn
}

type (
	boundConnKey struct{}
	admissionKey struct{}
)

// boundConn is one client connection and the session it serves. The first
// admitted request binds it; from then on only that session may use it,
// and the gate closes it when the session or certificate is removed. A
// connection upgraded to another protocol (WebSocket, say) stays bound
// until the tunnel closes.
type boundConn struct {
	// conn is the connection as the server knows it, the key of
	// proxy.conns.
	conn net.Conn
	// raw is what the gate closes: the TCP connection under TLS, which
	// closes at once, without waiting to send a TLS alert to a client that
	// may not read.
	raw io.Closer

	mu       sync.Mutex
	session  string
	release  func()
	ended    bool
	hijacked bool // taken over by the reverse proxy for an upgrade
}

func newProxy(g *gate.Gate, upstream *url.URL, log *slog.Logger) *proxy {
	p := &proxy{gate: g, log: log}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			for name := range pr.Out.Header {
				canonical := http.CanonicalHeaderKey(name)
				if strings.HasPrefix(canonical, ownPrefix) ||
					strings.HasPrefix(canonical, forwardedPrefix) {
					pr.Out.Header.Del(name)
				}
			}
			for _, name := range forwardingHeaders {
				pr.Out.Header.Del(name)
			}
			pr.SetXForwarded()
			// The token is a bearer secret of the client's session; the
			// upstream has no use for it and must not be able to replay it.
			pr.Out.Header.Del(tokenHeader)
			adm := pr.In.Context().Value(admissionKey{}).(*gate.Admission)
			pr.Out.Header.Set(identityHeader, adm.IdentityID)
			pr.Out.Header.Set(sessionHeader, adm.APISessionID)
		},
		ErrorHandler: p.upstreamFailed,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return p
}

// connContext records a new connection, for http.Server.ConnContext.
func (p *proxy) connContext(ctx context.Context, c net.Conn) context.Context {
	bc := &boundConn{conn: c, raw: c}
	if tc, ok := c.(*tls.Conn); ok {
		bc.raw = tc.NetConn()
	}
	p.conns.Store(c, bc)
	return context.WithValue(ctx, boundConnKey{}, bc)
}

// connState releases a connection's tracking once it has closed, for
// http.Server.ConnState. A hijacked connection is still open, carrying an
// upgraded protocol: it stays tracked, so that a removal still closes it,
// and ServeHTTP releases it when the tunnel ends.
func (p *proxy) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateHijacked:
		if v, ok := p.conns.Load(c); ok {
			bc := v.(*boundConn)
			bc.mu.Lock()
			bc.hijacked = true
			bc.mu.Unlock()
		}
	case http.StateClosed:
		if v, ok := p.conns.Load(c); ok {
			p.end(v.(*boundConn))
		}
	}
}

// end forgets a closed connection and releases its tracking.
func (p *proxy) end(bc *boundConn) {
	p.conns.Delete(bc.conn)
	bc.mu.Lock()
	bc.ended = true
	release := bc.release
	bc.release = nil
	bc.mu.Unlock()
	if release != nil {
		release()
	}
}

// endUpgrade closes and releases a connection the reverse proxy hijacked
// for an upgrade, once the handler that ran the tunnel has returned: the
// server will not report its close. The proxy closes it already; closing
// the raw connection again makes sure nothing is left open untracked.
func (p *proxy) endUpgrade(bc *boundConn) {
	bc.mu.Lock()
	hijacked := bc.hijacked
	bc.mu.Unlock()
	if !hijacked {
		return
	}
	_ = bc.raw.Close()
	p.end(bc)
}

// ServeHTTP admits the request through the gate with the token of its
// zt-session header and the client's certificate chain, binds the
// connection to the admitted session, and forwards the request.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var chain []*x509.Certificate
	if r.TLS != nil {
		chain = r.TLS.PeerCertificates
	}

	bc, _ := r.Context().Value(boundConnKey{}).(*boundConn)
	adm, err := p.gate.Admit(r.Context(), r.Header.Get(tokenHeader), chain)
	if err == nil {
		err = p.bind(bc, adm)
	}
	if err != nil {
		p.refuse(w, r, err)
		return
	}

	p.log.Debug("request admitted", slog.String("apiSessionId", adm.APISessionID),
		slog.String("identityId", adm.IdentityID), slog.String("method", r.Method))
	// An upgrade's tunnel runs inside the reverse proxy's ServeHTTP and
	// has ended when it returns.
	defer p.endUpgrade(bc)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), admissionKey{}, adm)))
}

// bind ties the request's connection to the admission's session on its
// first admitted request, and refuses a request of another session on a
// connection already bound: the gate closes a connection per session, so
// one connection must not carry two.
func (p *proxy) bind(bc *boundConn, adm *gate.Admission) error {
	if bc == nil {
		return errors.New("router: no connection record; the server was not built by newServer")
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	switch {
	case bc.session == adm.APISessionID:
		return nil
	case bc.session != "":
		return &gate.RefusedError{Code: codeSessionMismatch}
	case bc.ended:
		return errors.New("router: connection already closed")
	}
	release, err := p.gate.Track(adm, bc.raw)
	if err != nil {
		return err
	}
	bc.session, bc.release = adm.APISessionID, release
	return nil
}

// refuse answers a request that may not pass: 403 for a refusal, 503 when
// no decision could be reached.
func (p *proxy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var refused *gate.RefusedError
	switch {
	case errors.As(err, &refused):
		p.log.Warn("request refused", slog.String("code", refused.Code),
			slog.String("remote", r.RemoteAddr), slog.String("fingerprint", leafFingerprint(r)))
		msg, ok := refusalMessages[refused.Code]
		if !ok {
			msg = "the client may not pass"
		}
		writeError(w, http.StatusForbidden, refused.Code, msg)
	case errors.Is(err, gate.ErrNotFollowing):
		// The gate lost its event stream and is taking a new cursor.
		p.log.Warn("admission not bound: the gate does not follow events yet",
			slog.String("remote", r.RemoteAddr))
		writeError(w, http.StatusServiceUnavailable, codeControllerUnavailable,
			"the router cannot reach a decision now; try again")
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
		p.log.Debug("client left during admission", slog.String("remote", r.RemoteAddr))
	default:
		p.log.Error("admission failed", slog.Any("error", err), slog.String("remote", r.RemoteAddr))
		writeError(w, http.StatusServiceUnavailable, codeControllerUnavailable,
			"the router cannot reach a decision now; try again")
	}
}

func (p *proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	p.log.Error("upstream failed", slog.Any("error", err), slog.String("path", r.URL.Path))
	writeError(w, http.StatusBadGateway, codeUpstreamUnavailable,
		"the upstream service did not answer")
}

// errorBody is the JSON of the router's error replies, in the shape of the
// controller's error envelope.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&b)
}

// leafFingerprint names the client's certificate in logs, or "" without one.
func leafFingerprint(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return ca.Fingerprint(r.TLS.PeerCertificates[0].Raw)
}

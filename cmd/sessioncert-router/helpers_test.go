package main

import (
	"bufio"
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
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// Credentials of the router identity the tests create.
const (
	routerName     = "edge1"
	routerPassword = "router-password"
)

// testLogger discards logs unless the test runs with -v.
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

// redialer sends every controller connection to a target the test can
// move, or refuses them all, so that the gate can be cut off and pointed at
// a controller that restarted on another port.
type redialer struct {
	mu     sync.Mutex
	target string
	down   bool
	conns  []net.Conn
}

func (d *redialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	d.mu.Lock()
	target, down := d.target, d.down
	d.mu.Unlock()
	if down {
		return nil, errors.New("test: controller unreachable")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, target)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

// cut refuses new connections and breaks the open ones.
func (d *redialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = true
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
}

// restore lets connections through again, to target.
func (d *redialer) restore(target string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down, d.target = false, target
}

// upstream is the service behind the router: /stream answers one line and
// then holds the response open until the client goes; /upgrade switches to
// a line echo protocol; /headers answers every header it received; any
// other path echoes what the router forwarded.
type upstream struct {
	srv  *httptest.Server
	stop chan struct{}
}

// echo is what the upstream saw of a forwarded request.
type echo struct {
	Identity string `json:"identity"`
	Session  string `json:"session"`
	Token    string `json:"token"`
	Extra    string `json:"extra"`
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{stop: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upgrade" {
			serveUpgrade(w, r)
			return
		}
		if r.URL.Path == "/headers" {
			_ = json.NewEncoder(w).Encode(r.Header)
			return
		}
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "open\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-u.stop:
			}
			return
		}
		_ = json.NewEncoder(w).Encode(echo{
			Identity: r.Header.Get(identityHeader),
			Session:  r.Header.Get(sessionHeader),
			Token:    r.Header.Get(tokenHeader),
			Extra:    r.Header.Get("X-Sessioncert-Extra"),
		})
	}))
	t.Cleanup(func() {
		close(u.stop)
		u.srv.Close()
	})
	return u
}

// upgradeProtocol is the protocol /upgrade switches to: each line the
// client sends comes back.
const upgradeProtocol = "line-echo"

// serveUpgrade answers 101 Switching Protocols to a request for the line
// echo protocol and echoes lines until the connection ends.
func serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), upgradeProtocol) {
		http.Error(w, "upgrade to "+upgradeProtocol+" only", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
		"Upgrade: " + upgradeProtocol + "\r\n\r\n")
	for brw.Flush() == nil {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString(line)
	}
}

// tunnel is a connection upgraded to the line echo protocol through the
// router.
type tunnel struct {
	conn *tls.Conn
	br   *bufio.Reader
}

// upgrade opens a connection presenting cert, asks with token for the line
// echo protocol and checks that a line comes back through the tunnel.
func (r *routerEnv) upgrade(t *testing.T, cert *tls.Certificate, token string) *tunnel {
	t.Helper()
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{
		RootCAs: r.rootCAs, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req, err := http.NewRequest(http.MethodGet, r.url+"/upgrade", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(tokenHeader, token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProtocol)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	tn := &tunnel{conn: conn, br: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(tn.br, req)
	if err != nil {
		t.Fatal(err)
	}
	// A 101 has no body; the tunnel follows on the connection.
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %d, want 101", resp.StatusCode)
	}
	tn.echo(t, "hello")
	return tn
}

// echo sends a line through the tunnel and checks it comes back.
func (tn *tunnel) echo(t *testing.T, line string) {
	t.Helper()
	_ = tn.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = tn.conn.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(tn.conn, line+"\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := tn.br.ReadString('\n'); err != nil || got != line+"\n" {
		t.Fatalf("tunnel echoed %q, %v; want %q", got, err, line)
	}
}

// waitClosed fails the test unless the router closes the tunnel within a
// few seconds.
func (tn *tunnel) waitClosed(t *testing.T, what string) {
	t.Helper()
	_ = tn.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := tn.br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("%s: the tunnel is still open (%v)", what, err)
	}
}

// waitTracked waits until the gate tracks n connections.
func (r *routerEnv) waitTracked(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.gate.Stats().TrackedConnections
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d connections tracked, want %d", what, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// routerSetup says how to build a router for a test.
type routerSetup struct {
	client             *client.Sessioncert // default: the controller's, through the redialer
	username, password string

	serverCert, serverKey, clientCA string         // PEM files
	rootCAs                         *x509.CertPool // trusts serverCert
	gateConfig                      func(*gate.Config)

	// noWait returns from startRouter at once, before the gate is ready.
	noWait bool
}

// routerEnv is a running router in front of an upstream.
type routerEnv struct {
	url      string
	addr     string
	rootCAs  *x509.CertPool
	gate     *gate.Gate
	dialer   *redialer
	removals chan gate.Removal
	upstream *upstream
}

// startController starts a real controller with a Router identity.
func startController(t *testing.T, o servertest.Options) (*servertest.Env, *servertest.Session) {
	t.Helper()
	e := servertest.Start(t, o)
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, routerName, "Router", routerPassword)
	return e, admin
}

// controllerSetup is the setup of a router in front of a servertest
// controller, using its development PKI.
func controllerSetup(e *servertest.Env) routerSetup {
	pki := filepath.Join(e.DataDir, "pki")
	return routerSetup{
		username: routerName, password: routerPassword,
		serverCert: filepath.Join(pki, "server.pem"), serverKey: filepath.Join(pki, "server.key"),
		clientCA: filepath.Join(pki, "ca-bundle.pem"), rootCAs: e.RootCAs,
	}
}

// startRouter runs the router's gate and HTTPS server until the test ends.
// With controller set, the gate reaches it through a redialer.
func startRouter(t *testing.T, controller *servertest.Env, s routerSetup) *routerEnv {
	t.Helper()
	log := testLogger(t)
	r := &routerEnv{
		rootCAs: s.rootCAs, removals: make(chan gate.Removal, 1000), upstream: startUpstream(t),
	}
	if controller != nil {
		r.dialer = &redialer{target: controller.Host}
		s.client = newControllerClient(&url.URL{Scheme: "https", Host: controller.Host},
			controller.RootCAs, r.dialer.dial)
	}
	cfg := gate.Config{
		Client: s.client, Username: s.username, Password: s.password, Logger: log,
		EventWait:  5 * time.Second,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnRemoved: func(rm gate.Removal) { r.removals <- rm },
	}
	if s.gateConfig != nil {
		s.gateConfig(&cfg)
	}
	g, err := gate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.gate = g
	tlsCfg, err := serverTLSConfig(s.serverCert, s.serverKey, s.clientCA)
	if err != nil {
		t.Fatal(err)
	}
	upstreamURL, _ := url.Parse(r.upstream.srv.URL)
	rt := &router{
		gate: g, srv: newServer(newProxy(g, upstreamURL, log), tlsCfg, log), log: log,
		shutdownWait: 2 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr, r.url = ln.Addr().String(), "https://"+ln.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = rt.run(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		if runErr != nil {
			t.Errorf("router: %v", runErr)
		}
	})
	if s.noWait {
		return r
	}
	select {
	case <-g.Ready():
	case <-finished:
		t.Fatalf("the router stopped: %v", runErr)
	case <-time.After(10 * time.Second):
		t.Fatal("the gate never followed the event stream")
	}
	return r
}

// client returns an HTTP client of the router presenting cert (none when
// nil), over HTTP/2 when h2 is set.
func (r *routerEnv) client(cert *tls.Certificate, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: r.rootCAs, MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Send the certificate whatever CAs the router names: left to
		// itself, crypto/tls would keep back one the router does not
		// trust, and the router would never see it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: cfg, ForceAttemptHTTP2: h2, DisableKeepAlives: !h2,
	}}
}

// result is the router's answer to one request.
type result struct {
	status int
	code   string // of a refusal
	echo   echo   // of an admitted request
	err    error  // a failed request, such as a refused handshake
}

// get sends one request on a new connection, with token unless empty and
// with the extra headers given as name, value pairs.
func (r *routerEnv) get(
	t *testing.T,
	cert *tls.Certificate,
	token string,
	headers ...string,
) result {
	t.Helper()
	c := r.client(cert, false)
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, r.url+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(tokenHeader, token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	out := result{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&out.echo)
	} else {
		var body errorBody
		err = json.NewDecoder(resp.Body).Decode(&body)
		out.code = body.Error.Code
	}
	if err != nil {
		t.Fatalf("status %d with an unreadable body: %v", resp.StatusCode, err)
	}
	return out
}

// waitRefused polls until a request with cert and token is refused with
// code, and fails the test after two seconds: removals must reach the
// router within the event latency.
func (r *routerEnv) waitRefused(t *testing.T, cert *tls.Certificate, token, code string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		res := r.get(t, cert, token)
		if res.status == http.StatusForbidden && res.code == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %q (%v) two seconds later, want 403 %s",
				res.status, res.code, res.err, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stream is an open streaming response through the router.
type stream struct {
	closed chan struct{}
}

// openStream starts a streaming request and watches for its end.
func (r *routerEnv) openStream(t *testing.T, cert *tls.Certificate, token string, h2 bool) *stream {
	t.Helper()
	c := r.client(cert, h2)
	req, err := http.NewRequest(http.MethodGet, r.url+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(tokenHeader, token)
	c.Timeout = 0 // the stream outlives any client timeout
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	if h2 != (resp.ProtoMajor == 2) {
		t.Fatalf("stream over %s, want h2=%v", resp.Proto, h2)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "open\n" {
		t.Fatalf("stream: first line %q, %v", line, err)
	}
	s := &stream{closed: make(chan struct{})}
	go func() {
		_, _ = io.Copy(io.Discard, br)
		close(s.closed)
	}()
	t.Cleanup(func() {
		_ = resp.Body.Close()
		c.CloseIdleConnections()
	})
	return s
}

func (s *stream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// waitClosed fails the test unless the stream ends within a few seconds.
func (s *stream) waitClosed(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the connection is still open", what)
	}
}

// waitRemoval returns the next removal of kind k the gate applied.
func (r *routerEnv) waitRemoval(t *testing.T, k gate.RemovalKind) gate.Removal {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case rm := <-r.removals:
			if rm.Kind == k {
				return rm
			}
		case <-deadline:
			t.Fatalf("no removal of kind %s", k)
		}
	}
}

// logout ends a session at the controller.
func logout(t *testing.T, e *servertest.Env, s *servertest.Session) {
	t.Helper()
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
		t.Fatalf("logout: %v", err)
	}
}

// testPKI is a CA the test makes, for cases the controller's PKI cannot
// stage.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.key = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p.key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	if p.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.file("ca.pem"), "CERTIFICATE", der)
	return p
}

func (p *testPKI) file(name string) string { return filepath.Join(p.dir, name) }

// pool trusts the test CA.
func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// issue returns a certificate of the test CA: a client certificate, or a
// server certificate for 127.0.0.1 written to server.pem and server.key.
func (p *testPKI) issue(t *testing.T, server bool) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(12 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.Subject.CommonName = "router"
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if server {
		writePEM(t, p.file("server.pem"), "CERTIFICATE", der)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, p.file("server.key"), "PRIVATE KEY", keyDER)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

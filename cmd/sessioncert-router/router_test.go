package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/gate/gatetest"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// TestClientCAsFromController starts the router without --client-ca: it
// reads the controller's CA bundle after logging in, so that a session
// certificate passes the handshake and one of another CA does not.
func TestClientCAsFromController(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	certA := e.IssueCertificate(t, a).TLSCert
	stranger := newTestPKI(t).issue(t, false)
	setup := controllerSetup(e)
	setup.clientCA = ""
	r := startRouter(t, e, setup)

	if res := r.get(t, &certA, a.Token); res.err != nil || res.status != http.StatusOK {
		t.Errorf("a session certificate with its token: %d %q (%v), want 200", res.status, res.code, res.err)
	}
	if res := r.get(t, &stranger, a.Token); res.err == nil ||
		!strings.Contains(res.err.Error(), "tls: unknown certificate authority") {
		t.Errorf("a certificate of another CA: %d (%v), want the handshake to fail", res.status, res.err)
	}
}

// TestAdmissionRules shows each admission rule with the router in front:
// only the certificate of the very session named by the token passes, and
// what passes reaches the upstream with the router's headers and without
// the token.
func TestAdmissionRules(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	e.CreateIdentity(t, admin, "bob", "User", "bob-password")
	a := e.Login(t, "alice", "alice-password")
	a2 := e.Login(t, "alice", "alice-password") // same identity, another session
	b := e.Login(t, "bob", "bob-password")
	certA := e.IssueCertificate(t, a).TLSCert
	stranger := newTestPKI(t).issue(t, false)
	r := startRouter(t, e, controllerSetup(e))

	for _, tc := range []struct {
		name      string
		cert      *tls.Certificate
		token     string
		status    int    // 0: the handshake fails
		code      string // of a refusal; for a failed handshake, the TLS alert
		sessionID string // of an admission
	}{
		{"A's certificate with A's token", &certA, a.Token, http.StatusOK, "", a.ID},
		{"A's certificate with the token of A's identity's other session", &certA, a2.Token,
			http.StatusForbidden, gate.CodeCertificateNotBound, ""},
		{"A's certificate with B's token", &certA, b.Token, http.StatusForbidden,
			gate.CodeCertificateNotBound, ""},
		{"A's certificate without a token", &certA, "", http.StatusForbidden,
			gate.CodeMissingToken, ""},
		{"A's certificate with an unknown token", &certA, "no-such-token", http.StatusForbidden,
			gate.CodeInvalidAPISession, ""},
		{"A's token without a certificate", nil, a.Token, 0, "certificate required", ""},
		{"A's token with a certificate of another CA", &stranger, a.Token, 0,
			"unknown certificate authority", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.get(t, tc.cert, tc.token,
				identityHeader, "spoofed", "X-Sessioncert-Extra", "spoofed")
			if tc.status == 0 {
				if res.err == nil || !strings.Contains(res.err.Error(), "tls: "+tc.code) {
					t.Fatalf("status %d (%v), want the handshake to fail with %q",
						res.status, res.err, tc.code)
				}
				return
			}
			if res.err != nil || res.status != tc.status || res.code != tc.code {
				t.Fatalf("got %d %q (%v), want %d %q",
					res.status, res.code, res.err, tc.status, tc.code)
			}
			if tc.status != http.StatusOK {
				return
			}
			want := echo{Identity: a.IdentityID, Session: tc.sessionID}
			if res.echo != want {
				t.Errorf("upstream saw %+v, want %+v (no token, no client X-Sessioncert- headers)",
					res.echo, want)
			}
		})
	}
}

// TestForwardingHeadersAreTheRouters sends the headers by which proxies
// name the client, with made-up values: the upstream receives none of the
// client's, only those the router sets from the connection, so that it can
// trust them.
func TestForwardingHeadersAreTheRouters(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	certA := e.IssueCertificate(t, a).TLSCert
	r := startRouter(t, e, controllerSetup(e))

	for _, tc := range []struct {
		header, sent, want string // want "": not forwarded
	}{
		{"Forwarded", "for=203.0.113.9;proto=https", ""},
		{"X-Forwarded-For", "203.0.113.9", "127.0.0.1"},
		{"X-Forwarded-Host", "admin.example", r.addr},
		{"X-Forwarded-Proto", "http", "https"},
		{"X-Forwarded-Client-Cert", "Hash=0;Subject=\"CN=admin\"", ""},
		{"X-Forwarded-Port", "80", ""},
		{"X-Real-Ip", "203.0.113.9", ""},
	} {
		t.Run(tc.header, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, r.url+"/headers", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(tokenHeader, a.Token)
			req.Header.Set(tc.header, tc.sent)
			c := r.client(&certA, false)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var got http.Header
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil ||
				resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			if v := got.Values(tc.header); (tc.want == "" && len(v) > 0) ||
				(tc.want != "" && (len(v) != 1 || v[0] != tc.want)) {
				t.Errorf("upstream got %s %q, want %q", tc.header, v, tc.want)
			}
		})
	}
}

// TestCertificateDeleteRefusedAtOnce deletes one of A's certificates: it is
// refused within the event latency and its open connection is closed, while
// A and its other certificate live on.
func TestCertificateDeleteRefusedAtOnce(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	deleted, kept := e.IssueCertificate(t, a), e.IssueCertificate(t, a)
	r := startRouter(t, e, controllerSetup(e))

	// Warm the cache: a refusal after the delete must come from the event,
	// not from a miss.
	for _, c := range []*servertest.Issued{deleted, kept} {
		if res := r.get(t, &c.TLSCert, a.Token); res.status != http.StatusOK {
			t.Fatalf("before the delete: %d %s %v", res.status, res.code, res.err)
		}
	}
	onDeleted := r.openStream(t, &deleted.TLSCert, a.Token, false)
	onKept := r.openStream(t, &kept.TLSCert, a.Token, false)

	params := &current_api_session.DeleteCurrentAPISessionCertificateParams{ID: deleted.ID}
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISessionCertificate(
		params, a.Auth); err != nil {
		t.Fatal(err)
	}
	r.waitRefused(t, &deleted.TLSCert, a.Token, gate.CodeCertificateNotBound)
	onDeleted.waitClosed(t, "stream of the deleted certificate")

	if res := r.get(t, &kept.TLSCert, a.Token); res.status != http.StatusOK {
		t.Errorf("A's other certificate: %d %s %v, want admitted", res.status, res.code, res.err)
	}
	if onKept.isClosed() {
		t.Error("the stream of A's other certificate was closed")
	}
}

// TestLogoutClosesConnections logs A out while A has a streaming response
// open, over HTTP/1.1 and HTTP/2: the stream is cut and A is refused, while
// B's stream stays.
func TestLogoutClosesConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		h2   bool
	}{{"http/1.1", false}, {"h2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e, admin := startController(t, servertest.Options{})
			e.CreateIdentity(t, admin, "alice", "User", "alice-password")
			e.CreateIdentity(t, admin, "bob", "User", "bob-password")
			a, b := e.Login(t, "alice", "alice-password"), e.Login(t, "bob", "bob-password")
			certA, certB := e.IssueCertificate(t, a).TLSCert, e.IssueCertificate(t, b).TLSCert
			r := startRouter(t, e, controllerSetup(e))

			streamA := r.openStream(t, &certA, a.Token, tc.h2)
			streamB := r.openStream(t, &certB, b.Token, tc.h2)
			logout(t, e, a)
			streamA.waitClosed(t, "A's stream after logout")
			r.waitRefused(t, &certA, a.Token, gate.CodeInvalidAPISession)
			if streamB.isClosed() {
				t.Error("B's stream was closed by A's logout")
			}
		})
	}
}

// TestUpgradedConnections upgrades connections through the router to a
// line echo protocol, as a WebSocket client would. While the tunnel is open
// it stays tracked with its session: logout or the delete of its
// certificate closes it. Its end, whoever closes it, releases the tracking.
func TestUpgradedConnections(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	r := startRouter(t, e, controllerSetup(e))

	for _, tc := range []struct {
		name string
		end  func(t *testing.T, a *servertest.Session, cert *servertest.Issued, tn *tunnel)
		// byRouter says the router must close the tunnel; otherwise the
		// client does.
		byRouter bool
	}{
		{"logout", func(t *testing.T, a *servertest.Session, _ *servertest.Issued, _ *tunnel) {
			logout(t, e, a)
		}, true},
		{"certificate deleted", func(t *testing.T, a *servertest.Session, c *servertest.Issued,
			_ *tunnel) {
			params := &current_api_session.DeleteCurrentAPISessionCertificateParams{ID: c.ID}
			if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISessionCertificate(
				params, a.Auth); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"client closes", func(_ *testing.T, _ *servertest.Session, _ *servertest.Issued,
			tn *tunnel) {
			_ = tn.conn.Close()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.Login(t, "alice", "alice-password")
			cert := e.IssueCertificate(t, a)
			tn := r.upgrade(t, &cert.TLSCert, a.Token)
			if n := r.gate.Stats().TrackedConnections; n != 1 {
				t.Errorf("%d connections tracked with the tunnel open, want 1", n)
			}

			tc.end(t, a, cert, tn)
			if tc.byRouter {
				tn.waitClosed(t, "after "+tc.name)
			}
			r.waitTracked(t, 0, "after the tunnel ended")
		})
	}
}

// TestExpiryClosesConnections lets A's session expire at the controller:
// the sweep's removal event cuts A's open connection and A is refused.
func TestExpiryClosesConnections(t *testing.T) {
	clock := &servertest.Clock{}
	e, admin := startController(t, servertest.Options{Clock: clock})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	certA := e.IssueCertificate(t, a).TLSCert
	r := startRouter(t, e, controllerSetup(e))

	stream := r.openStream(t, &certA, a.Token, false)
	clock.Advance(e.Server.Registry().Timeout() + time.Minute)
	if _, err := e.Server.Registry().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	stream.waitClosed(t, "A's stream after expiry")
	r.waitRefused(t, &certA, a.Token, gate.CodeInvalidAPISession)
}

// TestConnectionBoundToOneSession sends requests of two sessions that share
// a certificate on one connection: the first binds it, the second is
// refused, and removing the first session closes the connection. Only a
// cert login can put one certificate in two sessions, so a fake controller
// stages it.
func TestConnectionBoundToOneSession(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	pki := newTestPKI(t)
	pki.issue(t, true)
	shared := pki.issue(t, false)
	fake.Admit("token-1", shared.Leaf, gatetest.Grant{APISessionID: "S1", IdentityID: "I",
		SessionExpiresAt: time.Now().Add(time.Hour), CertificateValidTo: time.Now().Add(time.Hour)})
	fake.Admit("token-2", shared.Leaf, gatetest.Grant{APISessionID: "S2", IdentityID: "I",
		SessionExpiresAt: time.Now().Add(time.Hour), CertificateValidTo: time.Now().Add(time.Hour)})
	r := startRouter(t, nil, routerSetup{
		client: fake.Client, username: gatetest.Username, password: gatetest.Password,
		serverCert: pki.file("server.pem"), serverKey: pki.file("server.key"),
		clientCA: pki.file("ca.pem"),
		rootCAs:  pki.pool(),
	})

	conn, err := tls.Dial("tcp", r.addr, &tls.Config{
		RootCAs: pki.pool(), Certificates: []tls.Certificate{shared},
		NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	br := bufio.NewReader(conn)
	send := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, r.url+"/echo", nil)
		req.Header.Set(tokenHeader, token)
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct {
			Error   struct{ Code string } `json:"error"`
			Session string                `json:"session"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body.Error.Code + body.Session
	}

	for _, step := range []struct {
		token  string
		status int
		got    string // the refusal's code, or the session the upstream saw
	}{
		{"token-1", http.StatusOK, "S1"},
		{"token-2", http.StatusForbidden, codeSessionMismatch},
		{"token-1", http.StatusOK, "S1"},
	} {
		if status, got := send(step.token); status != step.status || got != step.got {
			t.Fatalf("%s: %d %q, want %d %q", step.token, status, got, step.status, step.got)
		}
	}

	fake.RemoveSession("S1")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection of S1 after its removal: %v, want closed", err)
	}
}

// TestNoTrafficBeforeTheGateIsReady connects a client while the gate cannot
// take its first cursor, and deletes the client's certificate before that
// cursor: the delete's event will never reach the gate. The router serves
// nothing until the gate is ready, so the request is decided afterwards and
// refused, rather than admitted early and left open for good.
func TestNoTrafficBeforeTheGateIsReady(t *testing.T) {
	fake := gatetest.Start(t, gatetest.Options{})
	pki := newTestPKI(t)
	pki.issue(t, true)
	deleted, kept := pki.issue(t, false), pki.issue(t, false)
	for _, c := range []tls.Certificate{deleted, kept} {
		fake.Admit("token-a", c.Leaf, gatetest.Grant{APISessionID: "A", IdentityID: "I",
			SessionExpiresAt: time.Now().Add(time.Hour), CertificateValidTo: time.Now().Add(time.Hour)})
	}
	fake.SetEventsDown(true)
	r := startRouter(t, nil, routerSetup{
		client: fake.Client, username: gatetest.Username, password: gatetest.Password,
		serverCert: pki.file("server.pem"), serverKey: pki.file("server.key"),
		clientCA: pki.file("ca.pem"), rootCAs: pki.pool(), noWait: true,
	})

	type reply struct {
		status int
		code   string
		closed chan struct{} // of an admitted stream, closed when it ends
		err    error
	}
	replies := make(chan reply, 1)
	go func() {
		c := r.client(&deleted, false)
		c.Timeout = 0 // the request waits for the gate
		req, _ := http.NewRequest(http.MethodGet, r.url+"/stream", nil)
		req.Header.Set(tokenHeader, "token-a")
		resp, err := c.Do(req)
		if err != nil {
			replies <- reply{err: err}
			return
		}
		rep := reply{status: resp.StatusCode, closed: make(chan struct{})}
		if resp.StatusCode != http.StatusOK {
			var body errorBody
			rep.err = json.NewDecoder(resp.Body).Decode(&body)
			rep.code = body.Error.Code
			_ = resp.Body.Close()
			replies <- rep
			return
		}
		replies <- rep
		_, _ = io.Copy(io.Discard, resp.Body)
		close(rep.closed)
	}()
	// Give a router that serves too early the time to admit the stream.
	var early *reply
	select {
	case rep := <-replies:
		early = &rep
	case <-time.After(500 * time.Millisecond):
	}

	fake.DeleteCertificate("A", deleted.Leaf)
	fake.SetEventsDown(false)
	rep := early
	if rep == nil {
		select {
		case got := <-replies:
			rep = &got
		case <-time.After(10 * time.Second):
			t.Fatal("no answer after the gate became ready")
		}
	}
	if rep.status == http.StatusOK {
		select {
		case <-rep.closed:
			t.Fatal("admitted before the gate was ready (closed only by luck)")
		case <-time.After(2 * time.Second):
			t.Fatal("admitted before the gate was ready, and still open after the delete")
		}
	}
	if rep.err != nil || rep.status != http.StatusForbidden || rep.code != gate.CodeCertificateNotBound {
		t.Fatalf("early request: %d %q (%v), want 403 %s once the gate is ready",
			rep.status, rep.code, rep.err, gate.CodeCertificateNotBound)
	}
	if res := r.get(t, &kept, "token-a"); res.status != http.StatusOK {
		t.Errorf("the session's other certificate: %d %s %v, want admitted",
			res.status, res.code, res.err)
	}
}

// TestResumesAfterControllerRestart cuts the router off, restarts the
// controller on another port and logs A out while the router cannot see
// it: once reconnected, the gate resumes from its cursor, the removal
// arrives and A's connection is closed.
func TestResumesAfterControllerRestart(t *testing.T) {
	e, admin := startController(t, servertest.Options{})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	certA := e.IssueCertificate(t, a).TLSCert
	r := startRouter(t, e, controllerSetup(e))
	stream := r.openStream(t, &certA, a.Token, false)

	r.dialer.cut()
	e.Stop()
	e2 := servertest.Start(t, servertest.Options{DataDir: e.DataDir})
	logout(t, e2, a)
	time.Sleep(300 * time.Millisecond) // reconnects fail meanwhile
	if stream.isClosed() {
		t.Fatal("A's stream closed before the router could hear of the logout")
	}

	r.dialer.restore(e2.Host)
	stream.waitClosed(t, "A's stream after the router reconnected")
	rm := r.waitRemoval(t, gate.RemovedSession)
	if rm.APISessionID != a.ID || rm.Source != "event" {
		t.Errorf("removal = %+v, want A's from the event stream", rm)
	}
	r.waitRefused(t, &certA, a.Token, gate.CodeInvalidAPISession)
}

// TestCursorExpiredResets cuts the router off while more removals happen
// than the controller keeps: the gate drops its cache, closes every tracked
// connection (it cannot tell which sessions ended) and follows again.
func TestCursorExpiredResets(t *testing.T) {
	e, admin := startController(t, servertest.Options{
		Config: func(c *server.Config) { c.Store.EventHistory = 2 },
	})
	e.CreateIdentity(t, admin, "alice", "User", "alice-password")
	a := e.Login(t, "alice", "alice-password")
	certA := e.IssueCertificate(t, a).TLSCert
	r := startRouter(t, e, controllerSetup(e))
	stream := r.openStream(t, &certA, a.Token, false)

	r.dialer.cut()
	for range 3 {
		logout(t, e, e.Admin(t))
	}
	r.dialer.restore(e.Host)

	rm := r.waitRemoval(t, gate.RemovedAll)
	if rm.Source != "cursor expired" || rm.Admissions != 1 || rm.Connections != 1 {
		t.Errorf("reset = %+v, want A's admission and connection dropped", rm)
	}
	stream.waitClosed(t, "A's stream after the reset")

	// Following again: A (still live) is admitted, and A's logout arrives.
	deadline := time.Now().Add(5 * time.Second)
	for !r.gate.Stats().Following && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if res := r.get(t, &certA, a.Token); res.status != http.StatusOK {
		t.Fatalf("A after the reset: %d %s %v", res.status, res.code, res.err)
	}
	again := r.openStream(t, &certA, a.Token, false)
	logout(t, e, a)
	again.waitClosed(t, "A's new stream after logout")
}

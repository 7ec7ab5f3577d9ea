package sdk_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/sdk"
)

// router is an edge router for tests: a TLS server that requires a client
// certificate from the controller's CA and admits each request through a
// real pkg/gate asking the controller, as cmd/sessioncert-router does. It
// answers an admitted request with "<api session id> <serial>", and a
// refusal with the router's 403 and code.
type router struct {
	srv *httptest.Server

	mu      sync.Mutex
	refused map[string]bool // serials refused in the TLS handshake
}

func startRouter(t *testing.T, w *world) *router {
	t.Helper()
	const name, password = "edge-router", "edge-router-password"
	w.e.CreateIdentity(t, w.e.Admin(t), name, "Router", password)
	g, err := gate.New(gate.Config{
		Client: w.e.Client(nil), Username: name, Password: password, Now: w.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	rt := &router{refused: map[string]bool{}}
	admit := func(rw http.ResponseWriter, r *http.Request) {
		adm, err := g.Admit(r.Context(), r.Header.Get("zt-session"), r.TLS.PeerCertificates)
		var refusal *gate.RefusedError
		switch {
		case errors.As(err, &refusal):
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(rw).Encode(map[string]any{
				"error": map[string]string{"code": refusal.Code, "message": "refused"}})
		case err != nil:
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
		default:
			//nolint:gosec // G705: a plain-text reply to a test client, not a page
			_, _ = fmt.Fprintf(rw, "%s %s", adm.APISessionID,
				r.TLS.PeerCertificates[0].SerialNumber)
		}
	}
	bundle, err := os.ReadFile(filepath.Join(w.e.DataDir, "pki", "ca-bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(bundle) {
		t.Fatal("no certificate in the ca bundle")
	}
	rt.srv = httptest.NewUnstartedServer(http.HandlerFunc(admit))
	rt.srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  clientCAs,
		Time:       w.clock.Now, // the certificates live on the controller's clock
		VerifyConnection: func(cs tls.ConnectionState) error {
			rt.mu.Lock()
			defer rt.mu.Unlock()
			if rt.refused[cs.PeerCertificates[0].SerialNumber.String()] {
				return errors.New("test router: certificate refused")
			}
			return nil
		},
	}
	rt.srv.Config.ErrorLog = discardLog()
	rt.srv.StartTLS()
	t.Cleanup(rt.srv.Close)
	return rt
}

// refuse makes the router refuse the certificate in TLS handshakes.
func (rt *router) refuse(cert *tls.Certificate) {
	rt.mu.Lock()
	rt.refused[cert.Leaf.SerialNumber.String()] = true
	rt.mu.Unlock()
}

// base is an http.Transport that trusts the router.
func (rt *router) base() *http.Transport {
	roots := x509.NewCertPool()
	roots.AddCert(rt.srv.Certificate())
	return &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}
}

// reply is what one request through the router got.
type reply struct {
	status  int
	body    string // an admitted request's "<session> <serial>"
	session string
	serial  string
	err     error
}

func get(t *testing.T, hc *http.Client, url string) reply {
	t.Helper()
	res, err := hc.Get(url)
	if err != nil {
		return reply{err: err}
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: res.StatusCode, body: string(b)}
	if r.status == http.StatusOK {
		if _, err := fmt.Sscan(r.body, &r.session, &r.serial); err != nil {
			t.Fatalf("reply %q: %v", r.body, err)
		}
	}
	return r
}

// TestTransportThroughRouter sends requests through an edge router with a
// Transport that keeps its connections alive. When the session or the
// certificate ends on the controller, the first request meets the router's
// refusal, and the next one passes with a fresh credential, over a new
// connection that presents the new certificate with its own session's token.
func TestTransportThroughRouter(t *testing.T) {
	// Certificates renew 39m40s after issue (1m backdate); sessions are
	// checked after 80m idle, so not in this test.
	w := startWorld(t, time.Hour, 2*time.Hour)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
	rt := startRouter(t, w)
	hc := &http.Client{Transport: s.Transport(rt.base())}
	t.Cleanup(hc.CloseIdleConnections)

	steps := []struct {
		name       string
		before     func(t *testing.T, c sdk.Credential) // c: the sdk's credential now
		advance    time.Duration
		wantStatus int
		wantBody   string // the refusal's code, for a 403
		wantReqs   []string
		newSession bool
		newCert    bool
	}{
		{name: "first request logs in", wantStatus: http.StatusOK,
			wantReqs: []string{reqLogin, reqIssue}, newSession: true, newCert: true},
		{name: "next request reuses the credential", wantStatus: http.StatusOK},
		{name: "session deleted: the router refuses",
			before:     func(t *testing.T, c sdk.Credential) { adminDeletesSession(t, w.e, c) },
			wantStatus: http.StatusForbidden, wantBody: gate.CodeInvalidAPISession},
		{name: "the next request logs in again", wantStatus: http.StatusOK,
			wantReqs: []string{reqIssue, reqLogin, reqIssue}, newSession: true, newCert: true},
		// A minute on, past the least time between two forced renewals.
		{name: "certificate deleted: the router refuses", advance: time.Minute,
			before:     func(t *testing.T, c sdk.Credential) { deleteCertificate(t, w.e, c) },
			wantStatus: http.StatusForbidden, wantBody: gate.CodeCertificateNotBound},
		{name: "the next request has a new certificate", wantStatus: http.StatusOK,
			wantReqs: []string{reqIssue}, newCert: true},
		{name: "renewal at 2/3 of the window", advance: 40 * time.Minute,
			wantStatus: http.StatusOK, wantReqs: []string{reqIssue}, newCert: true},
	}
	var last reply
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before(t, credential(t, s))
			}
			w.clock.Advance(st.advance)
			w.rec.take()

			got := get(t, hc, rt.srv.URL)

			if got.err != nil || got.status != st.wantStatus {
				t.Fatalf("status %d (%v), body %q; want %d", got.status, got.err, got.body,
					st.wantStatus)
			}
			if reqs := w.rec.take(); !slices.Equal(reqs, st.wantReqs) {
				t.Errorf("requests to the controller = %q, want %q", reqs, st.wantReqs)
			}
			if got.status != http.StatusOK {
				var env struct{ Error struct{ Code string } }
				if err := json.Unmarshal([]byte(got.body), &env); err != nil ||
					env.Error.Code != st.wantBody {
					t.Errorf("refusal %q, want code %s (the caller sees the body whole)",
						got.body, st.wantBody)
				}
				return
			}
			if newSession := got.session != last.session; newSession != st.newSession {
				t.Errorf("new session = %v, want %v", newSession, st.newSession)
			}
			if newCert := got.serial != last.serial; newCert != st.newCert {
				t.Errorf("new certificate = %v, want %v", newCert, st.newCert)
			}
			last = got
		})
	}
}

// TestTransportHandshakeRefused has the router refuse the certificate in
// the TLS handshake: the request fails with the TLS alert, and the next one
// passes with a new certificate.
func TestTransportHandshakeRefused(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
	rt := startRouter(t, w)
	base := rt.base()
	base.DisableKeepAlives = true // every request is a new handshake
	hc := &http.Client{Transport: s.Transport(base)}

	first := get(t, hc, rt.srv.URL)
	if first.status != http.StatusOK {
		t.Fatalf("first request: %d %q %v", first.status, first.body, first.err)
	}
	rt.refuse(credential(t, s).Certificate)
	w.rec.take()

	refused := get(t, hc, rt.srv.URL)
	var op *net.OpError
	if !errors.As(refused.err, &op) || op.Op != "remote error" {
		t.Fatalf("request with the refused certificate: %d %q %v, want a TLS alert",
			refused.status, refused.body, refused.err)
	}
	again := get(t, hc, rt.srv.URL)
	if again.status != http.StatusOK {
		t.Fatalf("request after the refusal: %d %q %v", again.status, again.body, again.err)
	}
	if again.serial == first.serial || again.session != first.session {
		t.Errorf("after the refusal: session %s serial %s; before: session %s serial %s",
			again.session, again.serial, first.session, first.serial)
	}
	if reqs := w.rec.take(); !slices.Equal(reqs, []string{reqIssue}) {
		t.Errorf("requests to the controller = %q, want one certificate", reqs)
	}
}

func discardLog() *log.Logger { return slog.NewLogLogger(slog.DiscardHandler, slog.LevelError) }

package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// clientCert is a self-signed client certificate, as a PKI other than ours
// would issue it.
type clientCert struct {
	leaf *x509.Certificate
	key  crypto.Signer
	pem  string
}

func newClientCert(tb testing.TB, cn string, serial int64, from, to time.Time) *clientCert {
	tb.Helper()
	key := newECKey(tb, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    from,
		NotAfter:     to,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("CreateCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("ParseCertificate: %v", err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &clientCert{leaf: leaf, key: key, pem: string(p)}
}

// certFixture is a store holding alice with one registered certificate.
type certFixture struct {
	store      store.Store
	clock      *testClock
	registered *clientCert
	authID     string
}

func newCertFixture(tb testing.TB) *certFixture {
	tb.Helper()
	s := openBoltStore(tb)
	createIdentities(tb, s, alice, bob)
	cc := newClientCert(tb, "alice", 0x1a2b3c, fixNow.Add(-time.Hour), fixNow.Add(time.Hour))
	a := &store.Authenticator{
		ID: "authaaaaaaaaaaaa", IdentityID: alice.ID, Method: store.AuthMethodCert,
		CertPEM: cc.pem, Fingerprint: ca.Fingerprint(cc.leaf.Raw),
		CreatedAt: fixNow, UpdatedAt: fixNow,
	}
	if err := s.CreateAuthenticator(context.Background(), a); err != nil {
		tb.Fatalf("CreateAuthenticator: %v", err)
	}
	return &certFixture{store: s, clock: newTestClock(), registered: cc, authID: a.ID}
}

func (f *certFixture) auth() *Cert {
	// Zero bytes make the certificate record's id known in advance.
	zeros := bytes.NewReader(make([]byte, 64))
	return NewCert(CertConfig{Store: f.store, Now: f.clock.Now, Rand: zeros})
}

// registeredPeer presents the fixture's registered certificate.
func registeredPeer(f *certFixture) []*x509.Certificate {
	return []*x509.Certificate{f.registered.leaf}
}

// chainOf presents cc whatever the fixture.
func chainOf(cc *clientCert) func(*certFixture) []*x509.Certificate {
	return func(*certFixture) []*x509.Certificate { return []*x509.Certificate{cc.leaf} }
}

func TestCertAuthenticate(t *testing.T) {
	t.Parallel()

	stranger := newClientCert(t, "mallory", 7, fixNow.Add(-time.Hour), fixNow.Add(time.Hour))
	cases := []struct {
		name  string
		peer  func(f *certFixture) []*x509.Certificate
		now   func(leaf *x509.Certificate) time.Time
		setup func(t *testing.T, f *certFixture)
		want  Reason
	}{
		{
			name: "registered and valid",
			peer: registeredPeer,
		},
		{
			name: "intermediates sent along are ignored",
			peer: func(f *certFixture) []*x509.Certificate {
				return []*x509.Certificate{f.registered.leaf, stranger.leaf}
			},
		},
		{
			name: "valid from its first instant",
			peer: registeredPeer,
			now:  func(l *x509.Certificate) time.Time { return l.NotBefore },
		},
		{
			name: "no certificate",
			peer: func(*certFixture) []*x509.Certificate { return nil },
			want: ReasonNoCertificate,
		},
		{
			name: "empty chain",
			peer: func(*certFixture) []*x509.Certificate { return []*x509.Certificate{} },
			want: ReasonNoCertificate,
		},
		{
			name: "unregistered",
			peer: chainOf(stranger),
			want: ReasonUnknownCert,
		},
		{
			name: "unregistered leaf with the registered one as intermediate",
			peer: func(f *certFixture) []*x509.Certificate {
				return []*x509.Certificate{stranger.leaf, f.registered.leaf}
			},
			want: ReasonUnknownCert,
		},
		{
			name: "expired",
			peer: registeredPeer,
			now:  func(l *x509.Certificate) time.Time { return l.NotAfter.Add(time.Second) },
			want: ReasonCertNotValid,
		},
		{
			name: "at NotAfter",
			peer: registeredPeer,
			now:  func(l *x509.Certificate) time.Time { return l.NotAfter },
			want: ReasonCertNotValid,
		},
		{
			name: "not yet valid",
			peer: registeredPeer,
			now:  func(l *x509.Certificate) time.Time { return l.NotBefore.Add(-time.Second) },
			want: ReasonCertNotValid,
		},
		{
			// Deleting an identity deletes its authenticators with it.
			name: "identity deleted",
			peer: registeredPeer,
			setup: func(t *testing.T, f *certFixture) {
				_, err := f.store.DeleteIdentity(context.Background(), alice.ID, fixNow)
				if err != nil {
					t.Fatalf("DeleteIdentity: %v", err)
				}
			},
			want: ReasonUnknownCert,
		},
		{
			// The identity vanishes between the two reads.
			name: "identity deleted after the authenticator was read",
			peer: registeredPeer,
			setup: func(_ *testing.T, f *certFixture) {
				f.store = &failingStore{Store: f.store, err: store.ErrNotFound, failIdentity: true}
			},
			want: ReasonUnknownIdentity,
		},
		{
			// Stands in for a SHA-1 collision: same fingerprint, other
			// bytes.
			name: "fingerprint matches but the certificate differs",
			peer: chainOf(stranger),
			setup: func(t *testing.T, f *certFixture) {
				a := &store.Authenticator{
					ID: "authbbbbbbbbbbbb", IdentityID: bob.ID, Method: store.AuthMethodCert,
					CertPEM: f.registered.pem, Fingerprint: ca.Fingerprint(stranger.leaf.Raw),
					CreatedAt: fixNow, UpdatedAt: fixNow,
				}
				if err := f.store.CreateAuthenticator(context.Background(), a); err != nil {
					t.Fatalf("CreateAuthenticator: %v", err)
				}
			},
			want: ReasonUnknownCert,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCertFixture(t)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			if tc.now != nil {
				f.clock.Set(tc.now(f.registered.leaf))
			}

			res, err := f.auth().Authenticate(context.Background(), tc.peer(f))

			checkLogin(t, res, err, tc.want)
			if tc.want != "" {
				return
			}
			leaf := f.registered.leaf
			want := store.Certificate{
				ID:          "aaaaaaaaaaaaaaaa", // ten zero bytes from the injected reader
				IdentityID:  alice.ID,
				Fingerprint: ca.Fingerprint(leaf.Raw),
				Subject:     "CN=alice",
				Serial:      "1a2b3c",
				ChainPEM:    f.registered.pem,
				ValidFrom:   leaf.NotBefore,
				ValidTo:     leaf.NotAfter,
				CreatedAt:   f.clock.Now(),
			}
			got := [3]string{res.Identity.ID, res.Authenticator.ID, res.Method}
			if got != [3]string{alice.ID, f.authID, MethodCert} {
				t.Errorf("identity, authenticator, method = %v, want %s, %s, %s",
					got, alice.ID, f.authID, MethodCert)
			}
			if res.Certificate == nil || *res.Certificate != want {
				t.Errorf("certificate = %+v\nwant %+v", res.Certificate, want)
			}
		})
	}
}

func TestCertAuthenticateStoreFailure(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		fail func(f *failingStore)
	}{
		{name: "find authenticator", fail: func(f *failingStore) { f.failFindByFpr = true }},
		{name: "get identity", fail: func(f *failingStore) { f.failIdentity = true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCertFixture(t)
			fs := &failingStore{Store: f.store, err: fmt.Errorf("bolt: %w", store.ErrUnavailable)}
			tc.fail(fs)
			f.store = fs

			_, err := f.auth().Authenticate(context.Background(), registeredPeer(f))

			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("error = %v, want one matching store.ErrUnavailable", err)
			}
			if errors.Is(err, ErrInvalidAuth) {
				t.Fatalf("a store failure must not read as bad credentials: %v", err)
			}
		})
	}
}

// TestCertAuthenticateTLS logs in over a real TLS handshake with a listener
// that requests but does not require a client certificate, as the server's
// does.
func TestCertAuthenticateTLS(t *testing.T) {
	t.Parallel()

	f := newCertFixture(t)
	f.clock.Set(time.Now())
	now := time.Now()
	f.registered = newClientCert(t, "alice", 99, now.Add(-time.Hour), now.Add(time.Hour))
	a := &store.Authenticator{
		ID: "authcccccccccccc", IdentityID: alice.ID, Method: store.AuthMethodCert,
		CertPEM: f.registered.pem, Fingerprint: ca.Fingerprint(f.registered.leaf.Raw),
	}
	if err := f.store.CreateAuthenticator(context.Background(), a); err != nil {
		t.Fatalf("CreateAuthenticator: %v", err)
	}
	certAuth := f.auth()

	handler := func(w http.ResponseWriter, r *http.Request) {
		res, err := certAuth.Authenticate(r.Context(), r.TLS.PeerCertificates)
		// The outcome travels in a header, so that nothing from the
		// store is echoed into a body.
		var le *LoginError
		switch {
		case errors.As(err, &le):
			w.Header().Set("X-Outcome", string(le.Reason))
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Header().Set("X-Outcome", res.Identity.Name)
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(handler))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	cases := []struct {
		name   string
		client *clientCert
		want   string
	}{
		{name: "registered certificate", client: f.registered, want: "alice"},
		{name: "no certificate", want: string(ReasonNoCertificate)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			if tc.client != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{{
					Certificate: [][]byte{tc.client.leaf.Raw},
					PrivateKey:  tc.client.key,
					Leaf:        tc.client.leaf,
				}}
			}
			c := &http.Client{Transport: tr}
			t.Cleanup(c.CloseIdleConnections)

			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			_ = resp.Body.Close()

			if got := resp.Header.Get("X-Outcome"); got != tc.want {
				t.Fatalf("server said %q, want %q", got, tc.want)
			}
		})
	}
}

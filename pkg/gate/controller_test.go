package gate_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// TestRealController checks the gate against the real controller: a Router
// identity is admitted and cached, and an identity of type User cannot use
// the router API, which Run and Admit report as ErrNotRouter rather than
// as a refusal or an outage.
func TestRealController(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	admin := e.Admin(t)
	e.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	e.CreateIdentity(t, admin, "bob", "User", "bob-password")
	bob := e.Login(t, "bob", "bob-password")
	cert := e.IssueCertificate(t, bob)
	chain := []*x509.Certificate{cert.Leaf}

	for _, tc := range []struct {
		name, username, password string
		want                     error
	}{
		{"router identity", "edge1", "router-password", nil},
		{"user identity", "bob", "bob-password", gate.ErrNotRouter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := gate.New(gate.Config{
				Client: e.Client(nil), Username: tc.username, Password: tc.password,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()

			if tc.want != nil {
				if err := <-done; !errors.Is(err, tc.want) {
					t.Errorf("Run: %v, want %v", err, tc.want)
				}
				if _, err := g.Admit(ctx, bob.Token, chain); !errors.Is(err, tc.want) {
					t.Errorf("Admit: %v, want %v", err, tc.want)
				}
				return
			}
			<-g.Ready()
			adm, err := g.Admit(ctx, bob.Token, chain)
			if err != nil || adm.APISessionID != bob.ID || adm.CertificateID != cert.ID ||
				adm.IdentityName != "bob" {
				t.Fatalf("Admit: %+v, %v", adm, err)
			}
			if again, err := g.Admit(ctx, bob.Token, chain); err != nil || again != adm {
				t.Errorf("second Admit: %p %v, want the cached %p", again, err, adm)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

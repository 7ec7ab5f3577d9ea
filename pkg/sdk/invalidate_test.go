package sdk_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/pkg/sdk"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// endSession ends the SDK's session or certificate behind its back, as
// someone else would.
type endSession func(t *testing.T, e *servertest.Env, c sdk.Credential)

// logoutElsewhere logs the session out with its token, as another process
// holding the same token would.
func logoutElsewhere(t *testing.T, e *servertest.Env, c sdk.Credential) {
	t.Helper()
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, tokenAuth(c.Token)); err != nil {
		t.Fatalf("logout: %v", err)
	}
}

func adminDeletesSession(t *testing.T, e *servertest.Env, c sdk.Credential) {
	t.Helper()
	deleteSession(t, e, c.SessionID)
}

// deleteCertificate deletes the one certificate, leaving its session live.
func deleteCertificate(t *testing.T, e *servertest.Env, c sdk.Credential) {
	t.Helper()
	if _, err := e.Client(nil).CurrentAPISession.DeleteCurrentAPISessionCertificate(
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: c.CertificateID},
		tokenAuth(c.Token)); err != nil {
		t.Fatalf("delete certificate %s: %v", c.CertificateID, err)
	}
}

func tokenAuth(token string) runtime.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", token)
}

// TestInvalidate ends the SDK's session or certificate on the controller
// between the SDK's own checks. The SDK keeps handing out the dead
// credential without asking, until Invalidate reports it refused; the next
// use then replaces it at once, in a new session when the old one ended.
func TestInvalidate(t *testing.T) {
	tests := []struct {
		name           string
		end            endSession
		wantReqs       []string // of the use after Invalidate
		wantNewSession bool
	}{
		{"logout elsewhere", logoutElsewhere,
			[]string{reqIssue, reqLogin, reqIssue}, true},
		{"administrator deletes the session", adminDeletesSession,
			[]string{reqIssue, reqLogin, reqIssue}, true},
		{"certificate deleted", deleteCertificate, []string{reqIssue}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Certificates renew after 40m and sessions are checked after
			// 20m idle: neither happens on its own in this test.
			w := startWorld(t, time.Hour, 30*time.Minute)
			s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
			ctx := context.Background()
			dead, err := s.Credential(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tt.end(t, w.e, dead)
			w.clock.Advance(time.Minute)
			w.rec.take()

			stale := credential(t, s)
			if stale.Certificate != dead.Certificate || stale.Token != dead.Token {
				t.Fatal("the sdk replaced the credential before it was reported refused")
			}
			if reqs := w.rec.take(); len(reqs) != 0 {
				t.Fatalf("requests before Invalidate: %q", reqs)
			}

			s.Invalidate(dead)
			fresh := credential(t, s)

			if reqs := w.rec.take(); !slices.Equal(reqs, tt.wantReqs) {
				t.Errorf("requests after Invalidate = %q, want %q", reqs, tt.wantReqs)
			}
			if fresh.Certificate == dead.Certificate {
				t.Fatal("the refused certificate is still handed out")
			}
			if newSession := fresh.SessionID != dead.SessionID; newSession != tt.wantNewSession {
				t.Errorf("new session = %v, want %v", newSession, tt.wantNewSession)
			}
			if newToken := fresh.Token != dead.Token; newToken != tt.wantNewSession {
				t.Errorf("new token = %v, want %v", newToken, tt.wantNewSession)
			}
			if got := sessionOf(t, fresh.Certificate.Leaf); got != fresh.SessionID {
				t.Errorf("certificate of session %s paired with session %s", got, fresh.SessionID)
			}

			// The refused credential is no longer current: reporting it
			// again, as a slower caller would, changes nothing, even once a
			// new forced renewal would be allowed.
			w.clock.Advance(10 * time.Second)
			s.Invalidate(dead)
			if again := credential(t, s); again.Certificate != fresh.Certificate {
				t.Error("a second report of the old credential replaced the new one")
			}
			if reqs := w.rec.take(); len(reqs) != 0 {
				t.Errorf("requests after the second report: %q", reqs)
			}
		})
	}
}

// TestInvalidateIsBounded has a peer refuse every certificate: the SDK
// replaces the first at once, but no more than one per 5 seconds after.
func TestInvalidateIsBounded(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
	steps := []struct {
		name        string
		advance     time.Duration
		wantReqs    []string
		wantNewCert bool
	}{
		{"first refusal renews at once", 0, []string{reqIssue}, true},
		{"a refusal right after waits", time.Second, nil, false},
		{"and renews 5s after the last forced renewal", 4 * time.Second,
			[]string{reqIssue}, true},
	}
	last := credential(t, s)
	w.rec.take()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			s.Invalidate(last)
			w.clock.Advance(st.advance)

			got := credential(t, s)

			if reqs := w.rec.take(); !slices.Equal(reqs, st.wantReqs) {
				t.Errorf("requests = %q, want %q", reqs, st.wantReqs)
			}
			if newCert := got.Certificate != last.Certificate; newCert != st.wantNewCert {
				t.Errorf("new certificate = %v, want %v", newCert, st.wantNewCert)
			}
			last = got
		})
	}
}

// TestInvalidateConcurrently has many callers meet the same refusal at
// once, each reporting it and asking for a credential: one login follows,
// and every caller ends up with the same new credential.
func TestInvalidateConcurrently(t *testing.T) {
	w := startWorld(t, time.Hour, 30*time.Minute)
	s := w.newSDK(t, sdk.Password{Username: "user", Password: userPassword})
	dead := credential(t, s)
	adminDeletesSession(t, w.e, dead)
	w.rec.take()

	const callers = 16
	got := make([]sdk.Credential, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			s.Invalidate(dead)
			got[i], errs[i] = s.Credential(context.Background())
		})
	}
	wg.Wait()

	if reqs := w.rec.take(); !slices.Equal(reqs, []string{reqIssue, reqLogin, reqIssue}) {
		t.Errorf("requests = %q, want one renewal with one login", reqs)
	}
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i].Certificate != got[0].Certificate || got[i].Token != got[0].Token {
			t.Errorf("caller %d got a credential other than caller 0's", i)
		}
	}
	if got[0].SessionID == dead.SessionID {
		t.Error("callers are still in the deleted session")
	}
}

func credential(t *testing.T, s *sdk.SDK) sdk.Credential {
	t.Helper()
	c, err := s.Credential(context.Background())
	if err != nil {
		t.Fatalf("credential: %v", err)
	}
	return c
}

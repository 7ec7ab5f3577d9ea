package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// testIdentities covers IdentityStore except the cascade of DeleteIdentity,
// which has a group of its own.
func testIdentities(t *testing.T, f Factory) {
	t.Run("CreateGetFind", func(t *testing.T) {
		h := open(t, f, Options{})
		want := h.identity("router-1")
		want.Type = store.IdentityTypeRouter
		want.IsAdmin = true
		want.ExternalID = "ext-router-1"
		want.UpdatedAt = t0.Add(1500)
		h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, want))

		got, err := h.s.GetIdentity(h.ctx, want.ID)
		h.must("GetIdentity", err)
		h.same("GetIdentity", got, want)
		got, err = h.s.FindIdentityByName(h.ctx, want.Name)
		h.must("FindIdentityByName", err)
		h.same("FindIdentityByName", got, want)
		got, err = h.s.FindIdentityByExternalID(h.ctx, want.ExternalID)
		h.must("FindIdentityByExternalID", err)
		h.same("FindIdentityByExternalID", got, want)

		n, err := h.s.CountIdentities(h.ctx)
		h.must("CountIdentities", err)
		if n != 1 {
			t.Errorf("CountIdentities = %d, want 1", n)
		}
		h.must("Ping", h.s.Ping(h.ctx))
	})

	t.Run("NotFound", func(t *testing.T) {
		h := open(t, f, Options{})
		// An identity without an external id must not be found by "".
		h.mustIdentity("no-external-id")
		ghost := h.identity("ghost")

		tests := []struct {
			name string
			call func() error
		}{
			{"GetIdentity", func() error {
				_, err := h.s.GetIdentity(h.ctx, "missing")
				return err
			}},
			{"FindIdentityByName", func() error {
				_, err := h.s.FindIdentityByName(h.ctx, "missing")
				return err
			}},
			{"FindIdentityByExternalID", func() error {
				_, err := h.s.FindIdentityByExternalID(h.ctx, "missing")
				return err
			}},
			{"FindIdentityByExternalID empty", func() error {
				_, err := h.s.FindIdentityByExternalID(h.ctx, "")
				return err
			}},
			{"UpdateIdentity", func() error { return h.s.UpdateIdentity(h.ctx, ghost) }},
			{"DeleteIdentity", func() error {
				_, err := h.s.DeleteIdentity(h.ctx, "missing", t0)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.name, tt.call(), store.ErrNotFound)
			})
		}
	})

	t.Run("CreateConflicts", func(t *testing.T) {
		h := open(t, f, Options{})
		taken := h.identity("taken")
		taken.ExternalID = "ext-taken"
		h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, taken))
		// Optional external ids are unique only when set.
		h.mustIdentity("no-ext-1")
		h.mustIdentity("no-ext-2")

		tests := []struct {
			name       string
			identity   func() *store.Identity
			wantField  string
			unaffected string // a name that must not have been stored
		}{
			{"name", func() *store.Identity { return h.identity("taken") }, "name", ""},
			{"externalId", func() *store.Identity {
				i := h.identity("fresh-name")
				i.ExternalID = "ext-taken"
				return i
			}, "externalId", "fresh-name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				i := tt.identity()
				wantConflict(t, "CreateIdentity", h.s.CreateIdentity(h.ctx, i), tt.wantField)
				_, err := h.s.GetIdentity(h.ctx, i.ID)
				wantErr(t, "GetIdentity of the refused identity", err, store.ErrNotFound)
				if tt.unaffected != "" {
					_, err := h.s.FindIdentityByName(h.ctx, tt.unaffected)
					wantErr(t, "FindIdentityByName of the refused name", err, store.ErrNotFound)
				}
			})
		}
		n, err := h.s.CountIdentities(h.ctx)
		h.must("CountIdentities", err)
		if n != 3 {
			t.Errorf("CountIdentities = %d after refused creates, want 3", n)
		}
	})

	t.Run("Update", func(t *testing.T) {
		h := open(t, f, Options{})
		a := h.identity("a")
		a.ExternalID = "ext-a"
		h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, a))
		b := h.identity("b")
		b.ExternalID = "ext-b"
		h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, b))

		// The steps run in order on one store: each starts from what the
		// previous one left.
		steps := []struct {
			name      string
			change    func(i *store.Identity)
			wantField string // "" when the update must succeed
			gone      []string
			found     []string
		}{
			{name: "same name, other fields", change: func(i *store.Identity) {
				i.IsAdmin = true
				i.UpdatedAt = t0.Add(3)
			}, found: []string{"a"}},
			{name: "onto a taken name", change: func(i *store.Identity) {
				i.Name = "b"
			}, wantField: "name"},
			{name: "onto a taken external id", change: func(i *store.Identity) {
				i.ExternalID = "ext-b"
			}, wantField: "externalId"},
			{name: "rename", change: func(i *store.Identity) {
				i.Name = "a2"
			}, gone: []string{"a"}, found: []string{"a2", "b"}},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				h := h.on(t)
				before, err := h.s.GetIdentity(h.ctx, a.ID)
				h.must("GetIdentity", err)
				next := *before
				st.change(&next)

				err = h.s.UpdateIdentity(h.ctx, &next)
				want := &next
				if st.wantField != "" {
					wantConflict(t, "UpdateIdentity", err, st.wantField)
					want = before
				} else {
					h.must("UpdateIdentity", err)
				}
				got, err := h.s.GetIdentity(h.ctx, a.ID)
				h.must("GetIdentity", err)
				h.same("identity after update", got, want)
				for _, name := range st.gone {
					_, err := h.s.FindIdentityByName(h.ctx, name)
					wantErr(t, "FindIdentityByName("+name+")", err, store.ErrNotFound)
				}
				for _, name := range st.found {
					_, err := h.s.FindIdentityByName(h.ctx, name)
					h.must("FindIdentityByName("+name+")", err)
				}
			})
		}

		t.Run("freed values are free", func(t *testing.T) {
			h := h.on(t)
			got, err := h.s.GetIdentity(h.ctx, a.ID)
			h.must("GetIdentity", err)
			got.ExternalID = ""
			h.must("UpdateIdentity", h.s.UpdateIdentity(h.ctx, got))
			_, err = h.s.FindIdentityByExternalID(h.ctx, "ext-a")
			wantErr(t, "FindIdentityByExternalID(old)", err, store.ErrNotFound)

			c := h.identity("a") // a's old name
			c.ExternalID = "ext-a"
			h.must("CreateIdentity with freed name and external id",
				h.s.CreateIdentity(h.ctx, c))
		})
	})

	t.Run("List", func(t *testing.T) {
		h := open(t, f, Options{})
		// Ids grow in creation order, which is not name order.
		for _, name := range []string{"delta", "alpha", "echo", "charlie", "bravo"} {
			h.mustIdentity(name)
		}
		tests := []struct {
			page store.Page
			want []string
		}{
			{store.Page{Offset: 0, Limit: 2}, []string{"alpha", "bravo"}},
			{store.Page{Offset: 2, Limit: 2}, []string{"charlie", "delta"}},
			{store.Page{Offset: 4, Limit: 2}, []string{"echo"}},
			{store.Page{Offset: 5, Limit: 2}, nil},
			{store.Page{Offset: 0, Limit: 500},
				[]string{"alpha", "bravo", "charlie", "delta", "echo"}},
		}
		for _, tt := range tests {
			t.Run(pageName(tt.page), func(t *testing.T) {
				h := h.on(t)
				got, total, err := h.s.ListIdentities(h.ctx, tt.page)
				h.must("ListIdentities", err)
				if total != 5 {
					t.Errorf("total = %d, want 5", total)
				}
				var names []string
				for _, i := range got {
					names = append(names, i.Name)
				}
				h.same("names", names, tt.want)
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		h := open(t, f, Options{})
		keep := h.mustIdentity("keep")
		gone := h.identity("gone")
		gone.ExternalID = "ext-gone"
		h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, gone))

		events, err := h.s.DeleteIdentity(h.ctx, gone.ID, t0)
		h.must("DeleteIdentity", err)
		if len(events) != 0 {
			t.Errorf("DeleteIdentity of an identity without sessions returned %d events",
				len(events))
		}
		_, err = h.s.GetIdentity(h.ctx, gone.ID)
		wantErr(t, "GetIdentity", err, store.ErrNotFound)
		_, err = h.s.FindIdentityByName(h.ctx, "gone")
		wantErr(t, "FindIdentityByName", err, store.ErrNotFound)
		_, err = h.s.FindIdentityByExternalID(h.ctx, "ext-gone")
		wantErr(t, "FindIdentityByExternalID", err, store.ErrNotFound)
		_, err = h.s.GetIdentity(h.ctx, keep.ID)
		h.must("GetIdentity of the other identity", err)

		list, total, err := h.s.ListIdentities(h.ctx, store.Page{Limit: 10})
		h.must("ListIdentities", err)
		if total != 1 || len(list) != 1 {
			t.Errorf("ListIdentities: %d items, total %d, want 1 and 1", len(list), total)
		}

		again := h.identity("gone")
		again.ExternalID = "ext-gone"
		h.must("CreateIdentity with the deleted name and external id",
			h.s.CreateIdentity(h.ctx, again))
	})
}

// pageName names a subtest after a page.
func pageName(p store.Page) string {
	return fmt.Sprintf("offset=%d,limit=%d", p.Offset, p.Limit)
}

// testAuthenticators covers AuthenticatorStore.
func testAuthenticators(t *testing.T, f Factory) {
	// newAuthenticators stores an identity with a updb and a cert
	// authenticator.
	newAuthenticators := func(h *harness, user string) (updb, cert *store.Authenticator) {
		i := h.mustIdentity("owner-of-" + user)
		updb = &store.Authenticator{ //nolint:gosec // G101: a made-up hash, no secret
			ID:           h.id("authenticator"),
			IdentityID:   i.ID,
			Method:       store.AuthMethodPassword,
			Username:     user,
			PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			CreatedAt:    t0,
			UpdatedAt:    t0.Add(7),
		}
		cert = &store.Authenticator{
			ID:          h.id("authenticator"),
			IdentityID:  i.ID,
			Method:      store.AuthMethodCert,
			CertPEM:     "-----BEGIN CERTIFICATE-----\n" + user + "\n-----END CERTIFICATE-----\n",
			Fingerprint: fingerprint("client-cert-of-" + user),
			CreatedAt:   t0,
			UpdatedAt:   t0,
		}
		h.must("CreateAuthenticator updb", h.s.CreateAuthenticator(h.ctx, updb))
		h.must("CreateAuthenticator cert", h.s.CreateAuthenticator(h.ctx, cert))
		return updb, cert
	}

	t.Run("CreateGetFind", func(t *testing.T) {
		h := open(t, f, Options{})
		updb, cert := newAuthenticators(h, "alice")

		for _, want := range []*store.Authenticator{updb, cert} {
			got, err := h.s.GetAuthenticator(h.ctx, want.ID)
			h.must("GetAuthenticator", err)
			h.same("GetAuthenticator", got, want)
		}
		got, err := h.s.FindAuthenticatorByUsername(h.ctx, "alice")
		h.must("FindAuthenticatorByUsername", err)
		h.same("FindAuthenticatorByUsername", got, updb)
		got, err = h.s.FindAuthenticatorByFingerprint(h.ctx, cert.Fingerprint)
		h.must("FindAuthenticatorByFingerprint", err)
		h.same("FindAuthenticatorByFingerprint", got, cert)
	})

	// An identity created with its first authenticators is stored with all
	// of them or not at all, so that a first admin never lacks its password.
	t.Run("CreateWithIdentity", func(t *testing.T) {
		h := open(t, f, Options{})
		_, taken := newAuthenticators(h, "alice")
		firstOf := func(i *store.Identity, username, fp string) []*store.Authenticator {
			return []*store.Authenticator{
				{ID: h.id("authenticator"), IdentityID: i.ID, Method: store.AuthMethodPassword,
					Username: username, PasswordHash: "hash", CreatedAt: t0, UpdatedAt: t0},
				{ID: h.id("authenticator"), IdentityID: i.ID, Method: store.AuthMethodCert,
					CertPEM: "pem", Fingerprint: fp, CreatedAt: t0, UpdatedAt: t0},
			}
		}

		t.Run("stored together", func(t *testing.T) {
			h := h.on(t)
			i := h.identity("admin")
			auths := firstOf(i, "admin", fingerprint("admin-cert"))
			h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, i, auths...))
			got, err := h.s.FindAuthenticatorByUsername(h.ctx, "admin")
			h.must("FindAuthenticatorByUsername", err)
			h.same("updb authenticator", got, auths[0])
			got, err = h.s.FindAuthenticatorByFingerprint(h.ctx, auths[1].Fingerprint)
			h.must("FindAuthenticatorByFingerprint", err)
			h.same("cert authenticator", got, auths[1])

			// They are the identity's own: they go with it.
			_, err = h.s.DeleteIdentity(h.ctx, i.ID, t0)
			h.must("DeleteIdentity", err)
			for _, a := range auths {
				_, err := h.s.GetAuthenticator(h.ctx, a.ID)
				wantErr(t, "GetAuthenticator after DeleteIdentity", err, store.ErrNotFound)
			}
		})

		tests := []struct {
			name      string
			username  string
			fp        string
			other     bool // an authenticator names another identity
			wantField string
		}{
			{"taken username", "alice", fingerprint("fresh"), false, "username"},
			{"taken fingerprint", "fresh", taken.Fingerprint, false, "fingerprint"},
			{"authenticator of another identity", "fresh", fingerprint("fresh"), true, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				i := h.identity("refused-" + tt.username)
				auths := firstOf(i, tt.username, tt.fp)
				if tt.other {
					auths[1].IdentityID = taken.IdentityID
				}
				err := h.s.CreateIdentity(h.ctx, i, auths...)
				if tt.wantField != "" {
					wantConflict(t, "CreateIdentity", err, tt.wantField)
				} else if err == nil {
					t.Error("CreateIdentity with an authenticator of another identity succeeded")
				}
				_, err = h.s.GetIdentity(h.ctx, i.ID)
				wantErr(t, "GetIdentity of the refused identity", err, store.ErrNotFound)
				_, err = h.s.FindIdentityByName(h.ctx, i.Name)
				wantErr(t, "FindIdentityByName of the refused identity", err, store.ErrNotFound)
				for _, a := range auths {
					_, err := h.s.GetAuthenticator(h.ctx, a.ID)
					wantErr(t, "GetAuthenticator of a refused authenticator", err, store.ErrNotFound)
				}
			})
		}
		n, err := h.s.CountIdentities(h.ctx)
		h.must("CountIdentities", err)
		_, total, err := h.s.ListAuthenticators(h.ctx, store.Page{Limit: 10})
		h.must("ListAuthenticators", err)
		if n != 1 || total != 2 {
			t.Errorf("%d identities and %d authenticators after refused creates, want 1 and 2", n, total)
		}
	})

	t.Run("CreateErrors", func(t *testing.T) {
		h := open(t, f, Options{})
		updb, cert := newAuthenticators(h, "alice")

		tests := []struct {
			name      string
			change    func(a *store.Authenticator)
			wantErr   error
			wantField string
		}{
			{"unknown identity", func(a *store.Authenticator) {
				a.IdentityID = "missing"
				a.Username = "bob"
			}, store.ErrNotFound, ""},
			{"taken username", func(a *store.Authenticator) {
				a.Username = "alice"
			}, nil, "username"},
			{"taken fingerprint", func(a *store.Authenticator) {
				a.Method = store.AuthMethodCert
				a.Username, a.PasswordHash = "", ""
				a.CertPEM, a.Fingerprint = cert.CertPEM, cert.Fingerprint
			}, nil, "fingerprint"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				a := *updb
				a.ID = h.id("authenticator")
				tt.change(&a)
				err := h.s.CreateAuthenticator(h.ctx, &a)
				if tt.wantField != "" {
					wantConflict(t, "CreateAuthenticator", err, tt.wantField)
				} else {
					wantErr(t, "CreateAuthenticator", err, tt.wantErr)
				}
				_, err = h.s.GetAuthenticator(h.ctx, a.ID)
				wantErr(t, "GetAuthenticator of the refused one", err, store.ErrNotFound)
			})
		}
		_, total, err := h.s.ListAuthenticators(h.ctx, store.Page{Limit: 10})
		h.must("ListAuthenticators", err)
		if total != 2 {
			t.Errorf("total = %d after refused creates, want 2", total)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		h := open(t, f, Options{})
		newAuthenticators(h, "alice")
		tests := []struct {
			name string
			call func() error
		}{
			{"GetAuthenticator", func() error {
				_, err := h.s.GetAuthenticator(h.ctx, "missing")
				return err
			}},
			{"FindAuthenticatorByUsername", func() error {
				_, err := h.s.FindAuthenticatorByUsername(h.ctx, "nobody")
				return err
			}},
			{"FindAuthenticatorByFingerprint", func() error {
				_, err := h.s.FindAuthenticatorByFingerprint(h.ctx, fingerprint("unknown"))
				return err
			}},
			{"UpdateAuthenticator", func() error {
				return h.s.UpdateAuthenticator(h.ctx, &store.Authenticator{
					ID: "missing", IdentityID: "missing", Method: store.AuthMethodPassword,
					Username: "ghost",
				})
			}},
			{"DeleteAuthenticator", func() error {
				_, err := h.s.DeleteAuthenticator(h.ctx, "missing", t0)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.name, tt.call(), store.ErrNotFound)
			})
		}
	})

	t.Run("Update", func(t *testing.T) {
		h := open(t, f, Options{})
		alice, _ := newAuthenticators(h, "alice")
		newAuthenticators(h, "bob")

		steps := []struct {
			name      string
			change    func(a *store.Authenticator)
			wantField string
		}{
			{"same username, new hash", func(a *store.Authenticator) {
				a.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3"
				a.UpdatedAt = t0.Add(11)
			}, ""},
			{"onto a taken username",
				func(a *store.Authenticator) { a.Username = "bob" }, "username"},
			{"rename", func(a *store.Authenticator) { a.Username = "alice2" }, ""},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				h := h.on(t)
				before, err := h.s.GetAuthenticator(h.ctx, alice.ID)
				h.must("GetAuthenticator", err)
				next := *before
				st.change(&next)
				err = h.s.UpdateAuthenticator(h.ctx, &next)
				want := &next
				if st.wantField != "" {
					wantConflict(t, "UpdateAuthenticator", err, st.wantField)
					want = before
				} else {
					h.must("UpdateAuthenticator", err)
				}
				got, err := h.s.FindAuthenticatorByUsername(h.ctx, want.Username)
				h.must("FindAuthenticatorByUsername", err)
				h.same("authenticator after update", got, want)
			})
		}
		_, err := h.s.FindAuthenticatorByUsername(h.ctx, "alice")
		wantErr(t, "FindAuthenticatorByUsername(old name)", err, store.ErrNotFound)
		got, err := h.s.FindAuthenticatorByUsername(h.ctx, "bob")
		h.must("FindAuthenticatorByUsername(bob)", err)
		if got.ID == alice.ID {
			t.Error("the refused rename took bob's username")
		}
	})

	t.Run("List", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("owner")
		// Created out of id order: the list is ordered by id.
		for _, id := range []string{"auth-c", "auth-a", "auth-e", "auth-b", "auth-d"} {
			h.must("CreateAuthenticator", h.s.CreateAuthenticator(h.ctx, &store.Authenticator{
				ID: id, IdentityID: i.ID, Method: store.AuthMethodPassword,
				Username: "user-" + id, CreatedAt: t0, UpdatedAt: t0,
			}))
		}
		tests := []struct {
			page store.Page
			want []string
		}{
			{store.Page{Offset: 0, Limit: 2}, []string{"auth-a", "auth-b"}},
			{store.Page{Offset: 2, Limit: 2}, []string{"auth-c", "auth-d"}},
			{store.Page{Offset: 4, Limit: 2}, []string{"auth-e"}},
			{store.Page{Offset: 9, Limit: 2}, nil},
		}
		for _, tt := range tests {
			t.Run(pageName(tt.page), func(t *testing.T) {
				h := h.on(t)
				got, total, err := h.s.ListAuthenticators(h.ctx, tt.page)
				h.must("ListAuthenticators", err)
				if total != 5 {
					t.Errorf("total = %d, want 5", total)
				}
				var ids []string
				for _, a := range got {
					ids = append(ids, a.ID)
				}
				h.same("ids", ids, tt.want)
			})
		}
	})

	// Deleting an authenticator ends the sessions that logged in with it,
	// and only those: the access a credential gave goes with it.
	t.Run("DeleteEndsItsSessions", func(t *testing.T) {
		h := open(t, f, Options{})
		updb, cert := newAuthenticators(h, "alice")
		_, bobCert := newAuthenticators(h, "bob")
		loginWith := func(a *store.Authenticator, initial bool) (*store.APISession, []*store.Certificate) {
			sess := h.session(a.IdentityID)
			sess.AuthenticatorID = a.ID
			var certs []*store.Certificate
			if initial {
				login := h.cert(sess)
				login.Fingerprint = a.Fingerprint
				certs = append(certs, login)
			}
			h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, certs))
			return sess, append(certs, h.mustCert(sess))
		}
		byCert1, certs1 := loginWith(cert, true)
		byCert2, certs2 := loginWith(cert, true)
		byPassword, passwordCerts := loginWith(updb, false)
		byBob, bobCerts := loginWith(bobCert, true)
		from := h.cursor()

		at := t0.Add(time.Minute)
		events, err := h.s.DeleteAuthenticator(h.ctx, cert.ID, at)
		h.must("DeleteAuthenticator", err)

		t.Run("events", func(t *testing.T) {
			h := h.on(t)
			want := map[string][]*store.Certificate{byCert1.ID: certs1, byCert2.ID: certs2}
			if len(events) != len(want) {
				t.Fatalf("%d events, want one per session of the authenticator (%d)", len(events), len(want))
			}
			for n, e := range events {
				if n > 0 && e.Cursor <= events[n-1].Cursor {
					t.Errorf("cursors not increasing: %s", cursors(events))
				}
				var fps []string
				for _, c := range want[e.APISessionID] {
					fps = append(fps, c.Fingerprint)
				}
				h.sameEvent("event of "+e.APISessionID, e, store.Event{
					Cursor: e.Cursor, Type: store.EventAPISessionRemoved, APISessionID: e.APISessionID,
					IdentityID: cert.IdentityID, Fingerprints: fps, Cause: store.CauseAdmin, At: at,
				})
			}
			h.sameEvents("Events", h.eventsAfter(from), events)
		})

		t.Run("removed", func(t *testing.T) {
			h := h.on(t)
			_, err := h.s.GetAuthenticator(h.ctx, cert.ID)
			wantErr(t, "GetAuthenticator", err, store.ErrNotFound)
			_, err = h.s.FindAuthenticatorByFingerprint(h.ctx, cert.Fingerprint)
			wantErr(t, "FindAuthenticatorByFingerprint", err, store.ErrNotFound)
			for s, certs := range map[*store.APISession][]*store.Certificate{byCert1: certs1, byCert2: certs2} {
				_, err := h.s.GetAPISession(h.ctx, s.ID)
				wantErr(t, "GetAPISession", err, store.ErrNotFound)
				_, err = h.s.FindAPISessionByTokenHash(h.ctx, s.TokenHash)
				wantErr(t, "FindAPISessionByTokenHash", err, store.ErrNotFound)
				for _, c := range certs {
					_, err := h.s.FindCertificateByFingerprint(h.ctx, s.ID, c.Fingerprint)
					wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
				}
			}
		})

		t.Run("others untouched", func(t *testing.T) {
			h := h.on(t)
			for _, a := range []*store.Authenticator{updb, bobCert} {
				got, err := h.s.GetAuthenticator(h.ctx, a.ID)
				h.must("GetAuthenticator", err)
				h.same("authenticator", got, a)
			}
			for s, certs := range map[*store.APISession][]*store.Certificate{
				byPassword: passwordCerts, byBob: bobCerts,
			} {
				got, err := h.s.GetAPISession(h.ctx, s.ID)
				h.must("GetAPISession of a session of another authenticator", err)
				h.same("session", got, s)
				for _, c := range certs {
					got, err := h.s.FindCertificateByFingerprint(h.ctx, s.ID, c.Fingerprint)
					h.must("FindCertificateByFingerprint", err)
					h.same("certificate", got, c)
				}
			}
		})

		t.Run("without sessions", func(t *testing.T) {
			h := h.on(t)
			again := *cert
			again.ID = h.id("authenticator")
			h.must("CreateAuthenticator with the freed fingerprint", h.s.CreateAuthenticator(h.ctx, &again))
			events, err := h.s.DeleteAuthenticator(h.ctx, again.ID, at)
			h.must("DeleteAuthenticator", err)
			if len(events) != 0 {
				t.Errorf("%d events for an authenticator without sessions, want none", len(events))
			}
		})
	})
}

// testSigners covers ExtJWTSignerStore.
func testSigners(t *testing.T, f Factory) {
	signer := func(h *harness, name string) *store.ExtJWTSigner {
		return &store.ExtJWTSigner{
			ID:             h.id("signer"),
			Name:           name,
			Issuer:         "https://issuer.example/" + name,
			Audience:       "sessioncert",
			JWKSEndpoint:   "https://issuer.example/" + name + "/jwks",
			ClaimsProperty: "email",
			UseExternalID:  true,
			Enabled:        true,
			CreatedAt:      t0,
			UpdatedAt:      t0.Add(9),
		}
	}

	t.Run("CreateGetUpdateDelete", func(t *testing.T) {
		h := open(t, f, Options{})
		a := signer(h, "a")
		a.JWKSEndpoint = ""
		a.CertPEM = "-----BEGIN PUBLIC KEY-----\nkey\n-----END PUBLIC KEY-----\n"
		b := signer(h, "b")
		h.must("CreateExtJWTSigner", h.s.CreateExtJWTSigner(h.ctx, a))
		h.must("CreateExtJWTSigner", h.s.CreateExtJWTSigner(h.ctx, b))

		got, err := h.s.GetExtJWTSigner(h.ctx, a.ID)
		h.must("GetExtJWTSigner", err)
		h.same("GetExtJWTSigner", got, a)

		dup := signer(h, "a")
		wantConflict(t, "CreateExtJWTSigner with a taken name",
			h.s.CreateExtJWTSigner(h.ctx, dup), "name")
		_, err = h.s.GetExtJWTSigner(h.ctx, dup.ID)
		wantErr(t, "GetExtJWTSigner of the refused signer", err, store.ErrNotFound)

		steps := []struct {
			name      string
			change    func(s *store.ExtJWTSigner)
			wantField string
		}{
			{"same name", func(s *store.ExtJWTSigner) { s.Enabled = false }, ""},
			{"onto a taken name", func(s *store.ExtJWTSigner) { s.Name = "b" }, "name"},
			{"rename", func(s *store.ExtJWTSigner) { s.Name = "a2" }, ""},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				h := h.on(t)
				before, err := h.s.GetExtJWTSigner(h.ctx, a.ID)
				h.must("GetExtJWTSigner", err)
				next := *before
				st.change(&next)
				err = h.s.UpdateExtJWTSigner(h.ctx, &next)
				want := &next
				if st.wantField != "" {
					wantConflict(t, "UpdateExtJWTSigner", err, st.wantField)
					want = before
				} else {
					h.must("UpdateExtJWTSigner", err)
				}
				got, err := h.s.GetExtJWTSigner(h.ctx, a.ID)
				h.must("GetExtJWTSigner", err)
				h.same("signer after update", got, want)
			})
		}
		h.must("CreateExtJWTSigner with the freed name",
			h.s.CreateExtJWTSigner(h.ctx, signer(h, "a")))

		h.must("DeleteExtJWTSigner", h.s.DeleteExtJWTSigner(h.ctx, b.ID))
		_, err = h.s.GetExtJWTSigner(h.ctx, b.ID)
		wantErr(t, "GetExtJWTSigner after delete", err, store.ErrNotFound)
		h.must("CreateExtJWTSigner with the deleted name",
			h.s.CreateExtJWTSigner(h.ctx, signer(h, "b")))
	})

	t.Run("NotFound", func(t *testing.T) {
		h := open(t, f, Options{})
		ghost := signer(h, "ghost")
		_, err := h.s.GetExtJWTSigner(h.ctx, "missing")
		wantErr(t, "GetExtJWTSigner", err, store.ErrNotFound)
		wantErr(t, "UpdateExtJWTSigner", h.s.UpdateExtJWTSigner(h.ctx, ghost), store.ErrNotFound)
		wantErr(t, "DeleteExtJWTSigner", h.s.DeleteExtJWTSigner(h.ctx, "missing"),
			store.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		h := open(t, f, Options{})
		for _, name := range []string{"okta", "azure", "keycloak", "google"} {
			h.must("CreateExtJWTSigner", h.s.CreateExtJWTSigner(h.ctx, signer(h, name)))
		}
		tests := []struct {
			page store.Page
			want []string
		}{
			{store.Page{Offset: 0, Limit: 3}, []string{"azure", "google", "keycloak"}},
			{store.Page{Offset: 3, Limit: 3}, []string{"okta"}},
			{store.Page{Offset: 4, Limit: 3}, nil},
		}
		for _, tt := range tests {
			t.Run(pageName(tt.page), func(t *testing.T) {
				h := h.on(t)
				got, total, err := h.s.ListExtJWTSigners(h.ctx, tt.page)
				h.must("ListExtJWTSigners", err)
				if total != 4 {
					t.Errorf("total = %d, want 4", total)
				}
				var names []string
				for _, s := range got {
					names = append(names, s.Name)
				}
				h.same("names", names, tt.want)
			})
		}
	})
}

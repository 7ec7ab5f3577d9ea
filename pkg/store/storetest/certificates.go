package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// testCertificates covers CertificateStore.
func testCertificates(t *testing.T, f Factory) {
	t.Run("CreateGetFind", func(t *testing.T) {
		h := open(t, f, Options{})
		sess := h.sessionWithIdentity()
		want := h.mustCert(sess)

		got, err := h.s.GetCertificate(h.ctx, sess.ID, want.ID)
		h.must("GetCertificate", err)
		h.same("GetCertificate", got, want)
		got, err = h.s.FindCertificateByFingerprint(h.ctx, want.APISessionID, want.Fingerprint)
		h.must("FindCertificateByFingerprint", err)
		h.same("FindCertificateByFingerprint", got, want)
	})

	t.Run("CreateErrors", func(t *testing.T) {
		h := open(t, f, Options{})
		a := h.sessionWithIdentity()
		held := h.mustCert(a)

		tests := []struct {
			name      string
			build     func() *store.Certificate
			wantErr   error
			wantField string
		}{
			{"unknown session", func() *store.Certificate {
				c := h.cert(a)
				c.APISessionID = "missing"
				return c
			}, store.ErrNotFound, ""},
			{"fingerprint held in the same session", func() *store.Certificate {
				c := h.cert(a)
				c.Fingerprint = held.Fingerprint
				return c
			}, nil, "fingerprint"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				c := tt.build()
				err := h.s.CreateCertificate(h.ctx, c, 0, t0)
				if tt.wantField != "" {
					wantConflict(t, "CreateCertificate", err, tt.wantField)
				} else {
					wantErr(t, "CreateCertificate", err, tt.wantErr)
				}
				_, err = h.s.GetCertificate(h.ctx, c.APISessionID, c.ID)
				wantErr(t, "GetCertificate of the refused certificate", err, store.ErrNotFound)
				got, err := h.s.FindCertificateByFingerprint(h.ctx, held.APISessionID, held.Fingerprint)
				h.must("FindCertificateByFingerprint of the held fingerprint", err)
				h.same("certificate holding the fingerprint", got, held)
			})
		}
	})

	// A fingerprint is unique only within a session: a client certificate
	// that logged in twice belongs to both sessions, and each session's
	// record lives and dies with that session.
	t.Run("FingerprintPerSession", func(t *testing.T) {
		h := open(t, f, Options{})
		a := h.sessionWithIdentity()
		inA := h.mustCert(a)
		inB := h.cert(h.session(a.IdentityID))
		inB.Fingerprint = inA.Fingerprint
		b := h.session(a.IdentityID)
		inB.APISessionID = b.ID
		h.must("CreateAPISession starting with a fingerprint another session holds",
			h.s.CreateAPISession(h.ctx, b, []*store.Certificate{inB}))
		inC := h.cert(h.mustSession(a.IdentityID))
		inC.Fingerprint = inA.Fingerprint
		h.must("CreateCertificate with a fingerprint another session holds",
			h.s.CreateCertificate(h.ctx, inC, 0, t0))

		for _, want := range []*store.Certificate{inA, inB, inC} {
			got, err := h.s.FindCertificateByFingerprint(h.ctx, want.APISessionID, want.Fingerprint)
			h.must("FindCertificateByFingerprint", err)
			h.same("certificate of its own session", got, want)
		}
		_, err := h.s.DeleteAPISession(h.ctx, a.ID, store.CauseLogout, t0)
		h.must("DeleteAPISession", err)
		_, err = h.s.FindCertificateByFingerprint(h.ctx, a.ID, inA.Fingerprint)
		wantErr(t, "FindCertificateByFingerprint in the ended session", err, store.ErrNotFound)
		got, err := h.s.FindCertificateByFingerprint(h.ctx, b.ID, inB.Fingerprint)
		h.must("FindCertificateByFingerprint in a session that lives on", err)
		h.same("certificate of the live session", got, inB)
	})

	t.Run("Cap", func(t *testing.T) {
		h := open(t, f, Options{})
		tick := h.tick()
		live, expired := t0.Add(time.Hour), t0.Add(-time.Hour)
		// farFuture is the NotAfter of certificates meant never to expire;
		// a client certificate used for a cert login may carry it.
		farFuture := time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)
		tests := []struct {
			name     string
			existing []time.Time // ValidTo of the certificates already held
			maxLive  int
			wantErr  error
		}{
			{"empty", nil, 1, nil},
			{"under the cap", []time.Time{live, live}, 3, nil},
			{"at the cap", []time.Time{live, live, live}, 3, store.ErrLimitReached},
			{"expired ones do not count",
				[]time.Time{expired, t0.Add(-tick), live, live}, 3, nil},
			{"ValidTo equal to now is not live", []time.Time{t0, t0}, 1, nil},
			{"a tick after now is live", []time.Time{t0.Add(tick)}, 1, store.ErrLimitReached},
			{"far future is live", []time.Time{farFuture}, 1, store.ErrLimitReached},
			{"zero means no limit", []time.Time{live, live, live, live}, 0, nil},
			{"negative means no limit", []time.Time{live, live, live, live}, -1, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				sess := h.sessionWithIdentity()
				for _, validTo := range tt.existing {
					h.mustCertValidTo(sess, validTo)
				}
				c := h.cert(sess)
				err := h.s.CreateCertificate(h.ctx, c, tt.maxLive, t0)
				_, getErr := h.s.GetCertificate(h.ctx, sess.ID, c.ID)
				if tt.wantErr != nil {
					wantErr(t, "CreateCertificate", err, tt.wantErr)
					wantErr(t, "GetCertificate of the refused certificate", getErr,
						store.ErrNotFound)
					return
				}
				h.must("CreateCertificate", err)
				h.must("GetCertificate", getErr)
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		h := open(t, f, Options{})
		a := h.sessionWithIdentity()
		b := h.mustSession(a.IdentityID)
		c := h.mustCert(a)
		tests := []struct {
			name      string
			sessionID string
			certID    string
		}{
			{"certificate of another session", b.ID, c.ID},
			{"unknown session", "missing", c.ID},
			{"unknown certificate", a.ID, "missing"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := h.s.GetCertificate(h.ctx, tt.sessionID, tt.certID)
				wantErr(t, "GetCertificate", err, store.ErrNotFound)
			})
		}
		_, err := h.s.FindCertificateByFingerprint(h.ctx, "no-such-session", fingerprint("unknown"))
		wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
	})

	// A session past its ExpiresAt that no sweep removed yet lists nothing:
	// the store refuses it as a caller's clock would.
	t.Run("ListOfExpiredSession", func(t *testing.T) {
		h := open(t, f, Options{})
		tick := h.tick()
		sess := h.sessionWithIdentity()
		h.mustCert(sess)
		tests := []struct {
			name string
			now  time.Time
			want error
		}{
			{"a tick before its expiry", sess.ExpiresAt.Add(-tick), nil},
			{"at its expiry", sess.ExpiresAt, store.ErrNotFound},
			{"after its expiry", sess.ExpiresAt.Add(time.Hour), store.ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := h.s.ListCertificates(h.ctx, sess.ID, tt.now, store.Page{Limit: 10})
				if tt.want == nil {
					h.on(t).must("ListCertificates", err)
					if total != 1 || len(got) != 1 {
						t.Errorf("%d listed, total %d, want 1 and 1", len(got), total)
					}
					return
				}
				wantErr(t, "ListCertificates", err, tt.want)
			})
		}
	})

	t.Run("List", func(t *testing.T) {
		h := open(t, f, Options{})
		// The session outlives every "now" the list is asked at.
		sess := h.session(h.mustIdentity(h.id("name")).ID)
		sess.ExpiresAt = t0.Add(3 * time.Hour)
		h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, nil))
		other := h.mustSession(sess.IdentityID)
		h.mustCert(other)

		// Created in this order, with ids that sort the other way round, so
		// that an id-ordered list is caught. Expired ones are left out.
		validTos := []time.Time{
			t0.Add(time.Hour), t0, t0.Add(time.Hour), t0.Add(-time.Hour),
			t0.Add(time.Hour), t0.Add(2 * time.Hour),
		}
		var live []string
		for n, validTo := range validTos {
			c := h.cert(sess)
			c.ID = fmt.Sprintf("z-%02d", 99-n)
			c.ValidTo = validTo
			h.must("CreateCertificate", h.s.CreateCertificate(h.ctx, c, 0, t0))
			if validTo.After(t0) {
				live = append(live, c.ID)
			}
		}
		tests := []struct {
			page store.Page
			want []string
		}{
			{store.Page{Offset: 0, Limit: 2}, live[0:2]},
			{store.Page{Offset: 2, Limit: 2}, live[2:4]},
			{store.Page{Offset: 3, Limit: 10}, live[3:]},
			{store.Page{Offset: 4, Limit: 2}, nil},
		}
		for _, tt := range tests {
			t.Run(pageName(tt.page), func(t *testing.T) {
				h := h.on(t)
				got, total, err := h.s.ListCertificates(h.ctx, sess.ID, t0, tt.page)
				h.must("ListCertificates", err)
				if total != len(live) {
					t.Errorf("total = %d, want %d", total, len(live))
				}
				var ids []string
				for _, c := range got {
					if c.APISessionID != sess.ID {
						t.Errorf("certificate %s of session %s listed", c.ID, c.APISessionID)
					}
					ids = append(ids, c.ID)
				}
				h.same("ids", ids, tt.want)
			})
		}
		t.Run("later now", func(t *testing.T) {
			h := h.on(t)
			got, total, err := h.s.ListCertificates(h.ctx, sess.ID, t0.Add(time.Hour),
				store.Page{Limit: 10})
			h.must("ListCertificates", err)
			if total != 1 || len(got) != 1 {
				t.Errorf("an hour later: %d listed, total %d, want 1 and 1", len(got), total)
			}
		})
	})

	t.Run("Delete", func(t *testing.T) {
		h := open(t, f, Options{})
		sess := h.sessionWithIdentity()
		gone, kept := h.mustCert(sess), h.mustCert(sess)
		from := h.cursor()

		at := t0.Add(time.Minute)
		ev, err := h.s.DeleteCertificate(h.ctx, sess.ID, gone.ID, at)
		h.must("DeleteCertificate", err)
		if ev == nil {
			t.Fatal("DeleteCertificate returned no event")
		}
		if ev.Cursor <= from {
			t.Errorf("event cursor %d is not after the cursor before it, %d", ev.Cursor, from)
		}
		h.sameEvent("event", *ev, store.Event{
			Cursor:       ev.Cursor,
			Type:         store.EventCertificateDeleted,
			APISessionID: sess.ID,
			IdentityID:   sess.IdentityID,
			Fingerprints: []string{gone.Fingerprint},
			Cause:        store.CauseDeleted,
			At:           at,
		})
		h.sameEvents("Events", h.eventsAfter(from), []store.Event{*ev})

		_, err = h.s.GetCertificate(h.ctx, sess.ID, gone.ID)
		wantErr(t, "GetCertificate", err, store.ErrNotFound)
		_, err = h.s.FindCertificateByFingerprint(h.ctx, gone.APISessionID, gone.Fingerprint)
		wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
		list, total, err := h.s.ListCertificates(h.ctx, sess.ID, t0, store.Page{Limit: 10})
		h.must("ListCertificates", err)
		if total != 1 || len(list) != 1 || list[0].ID != kept.ID {
			t.Errorf("ListCertificates: %d items, total %d, want only %s",
				len(list), total, kept.ID)
		}
		_, err = h.s.DeleteCertificate(h.ctx, sess.ID, gone.ID, at)
		wantErr(t, "DeleteCertificate again", err, store.ErrNotFound)
		_, err = h.s.GetAPISession(h.ctx, sess.ID)
		h.must("GetAPISession: the session outlives its certificate", err)
	})

	t.Run("DeleteOfAnotherSession", func(t *testing.T) {
		h := open(t, f, Options{})
		a := h.sessionWithIdentity()
		b := h.mustSession(a.IdentityID)
		c := h.mustCert(a)
		from := h.cursor()

		tests := []struct {
			name      string
			sessionID string
		}{
			{"other session", b.ID},
			{"unknown session", "missing"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				_, err := h.s.DeleteCertificate(h.ctx, tt.sessionID, c.ID, t0)
				wantErr(t, "DeleteCertificate", err, store.ErrNotFound)
				got, err := h.s.GetCertificate(h.ctx, a.ID, c.ID)
				h.must("GetCertificate of the certificate that was not deleted", err)
				h.same("certificate", got, c)
				if evs := h.eventsAfter(from); len(evs) != 0 {
					t.Errorf("a refused delete recorded events %s", cursors(evs))
				}
			})
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		h := open(t, f, Options{})
		tick := h.tick()
		a := h.sessionWithIdentity()
		b := h.mustSession(a.IdentityID)
		tests := []struct {
			name    string
			sess    *store.APISession
			validTo time.Time
			removed bool
		}{
			{"expired two hours ago", a, t0.Add(-2 * time.Hour), true},
			{"expired an hour ago", b, t0.Add(-time.Hour), true},
			{"expires exactly now", b, t0, true},
			{"expires in a tick", a, t0.Add(tick), false},
			{"expires in an hour", b, t0.Add(time.Hour), false},
		}
		certs := make([]*store.Certificate, len(tests))
		for n, tt := range tests {
			certs[n] = h.mustCertValidTo(tt.sess, tt.validTo)
		}
		from := h.cursor()

		for _, step := range []struct{ limit, want int }{{2, 2}, {2, 1}, {2, 0}} {
			n, err := h.s.DeleteExpiredCertificates(h.ctx, t0, step.limit)
			h.must("DeleteExpiredCertificates", err)
			if n != step.want {
				t.Errorf("limit %d removed %d, want %d", step.limit, n, step.want)
			}
		}
		for n, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				_, err := h.s.FindCertificateByFingerprint(h.ctx, certs[n].APISessionID, certs[n].Fingerprint)
				if tt.removed {
					wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
				} else {
					h.must("FindCertificateByFingerprint", err)
				}
			})
		}
		if evs := h.eventsAfter(from); len(evs) != 0 {
			t.Errorf("removing expired certificates recorded events %s", cursors(evs))
		}
		for _, s := range []*store.APISession{a, b} {
			_, err := h.s.GetAPISession(h.ctx, s.ID)
			h.must("GetAPISession: sessions outlive their expired certificates", err)
		}
	})

	// The count is of records, in every session: a certificate past its
	// ValidTo counts until a sweep removes it, and every removal path
	// (one certificate, a session, an identity, the sweep) takes its
	// certificates out of it.
	t.Run("Count", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity(h.id("name"))
		a := h.session(i.ID)
		h.must("CreateAPISession",
			h.s.CreateAPISession(h.ctx, a, []*store.Certificate{h.cert(a), h.cert(a)}))
		b := h.mustSession(i.ID)
		c := h.mustSession(h.mustIdentity(h.id("name")).ID)
		inA := h.mustCert(a)
		h.mustCertValidTo(b, t0.Add(-time.Hour))
		h.mustCert(b)
		h.mustCert(c)

		steps := []struct {
			name string
			do   func() error
			want int
		}{
			{"as created, the expired one included", nil, 6},
			{"after DeleteCertificate", func() error {
				_, err := h.s.DeleteCertificate(h.ctx, a.ID, inA.ID, t0)
				return err
			}, 5},
			{"after DeleteExpiredCertificates", func() error {
				_, err := h.s.DeleteExpiredCertificates(h.ctx, t0, 10)
				return err
			}, 4},
			{"after DeleteAPISession", func() error {
				_, err := h.s.DeleteAPISession(h.ctx, a.ID, store.CauseLogout, t0)
				return err
			}, 2},
			{"after DeleteIdentity", func() error {
				_, err := h.s.DeleteIdentity(h.ctx, i.ID, t0)
				return err
			}, 1},
			{"after reopening", func() error {
				if h.f.Reopen != nil {
					h.reopen()
				}
				return nil
			}, 1},
		}
		for _, step := range steps {
			if step.do != nil {
				h.must(step.name, step.do())
			}
			n, err := h.s.CountCertificates(h.ctx)
			h.must("CountCertificates "+step.name, err)
			if n != step.want {
				t.Errorf("CountCertificates %s = %d, want %d", step.name, n, step.want)
			}
		}
	})
}

// testDeleteIdentity covers the cascade of DeleteIdentity: authenticators,
// sessions and their certificates go, one event per session, and nothing of
// another identity is touched.
func testDeleteIdentity(t *testing.T, f Factory) {
	h := open(t, f, Options{})

	type owned struct {
		identity *store.Identity
		auths    []*store.Authenticator
		sessions []*store.APISession
		certs    map[string][]*store.Certificate // by session id
	}
	build := func(name string, nSessions int) *owned {
		o := &owned{identity: h.mustIdentity(name), certs: map[string][]*store.Certificate{}}
		for _, a := range []*store.Authenticator{
			{ID: h.id("authenticator"), Method: store.AuthMethodPassword, Username: name},
			{ID: h.id("authenticator"), Method: store.AuthMethodCert,
				Fingerprint: fingerprint("login-" + name), CertPEM: "pem of " + name},
		} {
			a.IdentityID, a.CreatedAt, a.UpdatedAt = o.identity.ID, t0, t0
			h.must("CreateAuthenticator", h.s.CreateAuthenticator(h.ctx, a))
			o.auths = append(o.auths, a)
		}
		for range nSessions {
			s := h.session(o.identity.ID)
			first := h.cert(s)
			h.must("CreateAPISession",
				h.s.CreateAPISession(h.ctx, s, []*store.Certificate{first}))
			o.sessions = append(o.sessions, s)
			o.certs[s.ID] = []*store.Certificate{first, h.mustCert(s)}
		}
		return o
	}
	doomed := build("doomed", 3)
	other := build("other", 1)
	from := h.cursor()

	at := t0.Add(time.Minute)
	events, err := h.s.DeleteIdentity(h.ctx, doomed.identity.ID, at)
	h.must("DeleteIdentity", err)

	t.Run("events", func(t *testing.T) {
		h := h.on(t)
		if len(events) != len(doomed.sessions) {
			t.Fatalf("%d events, want one per session (%d)", len(events), len(doomed.sessions))
		}
		bySession := make(map[string]store.Event)
		for n, e := range events {
			bySession[e.APISessionID] = e
			if n > 0 && e.Cursor <= events[n-1].Cursor {
				t.Errorf("cursors not increasing: %s", cursors(events))
			}
		}
		for _, s := range doomed.sessions {
			var fps []string
			for _, c := range doomed.certs[s.ID] {
				fps = append(fps, c.Fingerprint)
			}
			e := bySession[s.ID]
			h.sameEvent("event of "+s.ID, e, store.Event{
				Cursor:       e.Cursor,
				Type:         store.EventAPISessionRemoved,
				APISessionID: s.ID,
				IdentityID:   doomed.identity.ID,
				Fingerprints: fps,
				Cause:        store.CauseAdmin,
				At:           at,
			})
		}
		h.sameEvents("Events", h.eventsAfter(from), events)
	})

	t.Run("removed", func(t *testing.T) {
		h := h.on(t)
		_, err := h.s.GetIdentity(h.ctx, doomed.identity.ID)
		wantErr(t, "GetIdentity", err, store.ErrNotFound)
		for _, a := range doomed.auths {
			_, err := h.s.GetAuthenticator(h.ctx, a.ID)
			wantErr(t, "GetAuthenticator", err, store.ErrNotFound)
		}
		_, err = h.s.FindAuthenticatorByUsername(h.ctx, "doomed")
		wantErr(t, "FindAuthenticatorByUsername", err, store.ErrNotFound)
		_, err = h.s.FindAuthenticatorByFingerprint(h.ctx, fingerprint("login-doomed"))
		wantErr(t, "FindAuthenticatorByFingerprint", err, store.ErrNotFound)
		for _, s := range doomed.sessions {
			_, err := h.s.GetAPISession(h.ctx, s.ID)
			wantErr(t, "GetAPISession", err, store.ErrNotFound)
			_, err = h.s.FindAPISessionByTokenHash(h.ctx, s.TokenHash)
			wantErr(t, "FindAPISessionByTokenHash", err, store.ErrNotFound)
			for _, c := range doomed.certs[s.ID] {
				_, err := h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
				wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
			}
		}
	})

	t.Run("others untouched", func(t *testing.T) {
		h := h.on(t)
		got, err := h.s.GetIdentity(h.ctx, other.identity.ID)
		h.must("GetIdentity", err)
		h.same("identity", got, other.identity)
		for _, a := range other.auths {
			got, err := h.s.GetAuthenticator(h.ctx, a.ID)
			h.must("GetAuthenticator", err)
			h.same("authenticator", got, a)
		}
		for _, s := range other.sessions {
			got, err := h.s.GetAPISession(h.ctx, s.ID)
			h.must("GetAPISession", err)
			h.same("session", got, s)
			for _, c := range other.certs[s.ID] {
				got, err := h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
				h.must("FindCertificateByFingerprint", err)
				h.same("certificate", got, c)
			}
		}
		for _, c := range []struct {
			name string
			list func() (int, error)
			want int
		}{
			{"identities", func() (int, error) { return h.s.CountIdentities(h.ctx) }, 1},
			{"authenticators", func() (int, error) {
				_, n, err := h.s.ListAuthenticators(h.ctx, store.Page{Limit: 1})
				return n, err
			}, len(other.auths)},
			{"sessions", func() (int, error) {
				_, n, err := h.s.ListAPISessions(h.ctx, store.Page{Limit: 1})
				return n, err
			}, len(other.sessions)},
		} {
			n, err := c.list()
			h.must("count "+c.name, err)
			if n != c.want {
				t.Errorf("%s: total %d, want %d", c.name, n, c.want)
			}
		}
	})
}

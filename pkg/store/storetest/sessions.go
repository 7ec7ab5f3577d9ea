package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// testSessions covers SessionStore.
func testSessions(t *testing.T, f Factory) {
	t.Run("CreateGetFind", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		sess := h.session(i.ID)
		login := h.cert(sess) // the client certificate of a cert login
		h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, []*store.Certificate{login}))

		got, err := h.s.GetAPISession(h.ctx, sess.ID)
		h.must("GetAPISession", err)
		h.same("GetAPISession", got, sess)
		got, err = h.s.FindAPISessionByTokenHash(h.ctx, sess.TokenHash)
		h.must("FindAPISessionByTokenHash", err)
		h.same("FindAPISessionByTokenHash", got, sess)

		c, err := h.s.GetCertificate(h.ctx, sess.ID, login.ID)
		h.must("GetCertificate of the initial certificate", err)
		h.same("initial certificate", c, login)
		c, err = h.s.FindCertificateByFingerprint(h.ctx, login.APISessionID, login.Fingerprint)
		h.must("FindCertificateByFingerprint of the initial certificate", err)
		h.same("initial certificate by fingerprint", c, login)
	})

	t.Run("CreateErrors", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		other := h.mustSession(i.ID)
		taken := h.mustCert(other)

		tests := []struct {
			name      string
			build     func() (*store.APISession, []*store.Certificate)
			wantErr   error
			wantField string
		}{
			{"unknown identity", func() (*store.APISession, []*store.Certificate) {
				s := h.session("missing")
				return s, []*store.Certificate{h.cert(s)}
			}, store.ErrNotFound, ""},
			// Fingerprints are unique within a session, so two initial
			// certificates with one fingerprint conflict.
			{"initial certificates sharing a fingerprint",
				func() (*store.APISession, []*store.Certificate) {
					s := h.session(i.ID)
					fresh, dup := h.cert(s), h.cert(s)
					dup.Fingerprint = fresh.Fingerprint
					return s, []*store.Certificate{fresh, dup}
				}, nil, "fingerprint"},
			// A duplicate id or token hash must not replace the session that
			// holds it; which field the conflict names is not specified.
			{"taken id", func() (*store.APISession, []*store.Certificate) {
				s := h.session(i.ID)
				s.ID = other.ID
				return s, nil
			}, store.ErrConflict, ""},
			{"taken token hash", func() (*store.APISession, []*store.Certificate) {
				s := h.session(i.ID)
				s.TokenHash = other.TokenHash
				return s, []*store.Certificate{h.cert(s)}
			}, store.ErrConflict, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				s, certs := tt.build()
				err := h.s.CreateAPISession(h.ctx, s, certs)
				if tt.wantField != "" {
					wantConflict(t, "CreateAPISession", err, tt.wantField)
				} else {
					wantErr(t, "CreateAPISession", err, tt.wantErr)
				}

				// Nothing of the refused session was stored, and the
				// session it collided with is intact.
				if s.ID != other.ID {
					_, err = h.s.GetAPISession(h.ctx, s.ID)
					wantErr(t, "GetAPISession of the refused session", err, store.ErrNotFound)
				}
				if s.TokenHash != other.TokenHash {
					_, err = h.s.FindAPISessionByTokenHash(h.ctx, s.TokenHash)
					wantErr(t, "FindAPISessionByTokenHash of the refused session", err,
						store.ErrNotFound)
				}
				for _, c := range certs {
					if c.Fingerprint == taken.Fingerprint {
						continue
					}
					_, err := h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
					wantErr(t, "FindCertificateByFingerprint of a refused certificate", err,
						store.ErrNotFound)
				}
				got, err := h.s.GetAPISession(h.ctx, other.ID)
				h.must("GetAPISession of the existing session", err)
				h.same("existing session", got, other)
				got, err = h.s.FindAPISessionByTokenHash(h.ctx, other.TokenHash)
				h.must("FindAPISessionByTokenHash of the existing session", err)
				h.same("existing session by token hash", got, other)
			})
		}
		_, total, err := h.s.ListAPISessions(h.ctx, store.Page{Limit: 10})
		h.must("ListAPISessions", err)
		if total != 1 {
			t.Errorf("total = %d after refused creates, want 1", total)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		h := open(t, f, Options{})
		h.sessionWithIdentity()
		_, err := h.s.GetAPISession(h.ctx, "missing")
		wantErr(t, "GetAPISession", err, store.ErrNotFound)
		_, err = h.s.FindAPISessionByTokenHash(h.ctx, tokenHash("missing"))
		wantErr(t, "FindAPISessionByTokenHash", err, store.ErrNotFound)
		_, err = h.s.DeleteAPISession(h.ctx, "missing", store.CauseLogout, t0)
		wantErr(t, "DeleteAPISession", err, store.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		// Created out of id order; one has expired: lists ignore expiry.
		ids := []string{"s-c", "s-a", "s-d", "s-b"}
		for n, id := range ids {
			s := h.session(i.ID)
			s.ID, s.TokenHash = id, tokenHash(id)
			if n == 0 {
				s.ExpiresAt = t0.Add(-time.Hour)
			}
			h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, s, nil))
		}
		tests := []struct {
			page store.Page
			want []string
		}{
			{store.Page{Offset: 0, Limit: 3}, []string{"s-a", "s-b", "s-c"}},
			{store.Page{Offset: 3, Limit: 3}, []string{"s-d"}},
			{store.Page{Offset: 4, Limit: 3}, nil},
		}
		for _, tt := range tests {
			t.Run(pageName(tt.page), func(t *testing.T) {
				h := h.on(t)
				got, total, err := h.s.ListAPISessions(h.ctx, tt.page)
				h.must("ListAPISessions", err)
				if total != 4 {
					t.Errorf("total = %d, want 4", total)
				}
				var ids []string
				for _, s := range got {
					ids = append(ids, s.ID)
				}
				h.same("ids", ids, tt.want)
			})
		}
	})

	t.Run("Touch", testTouch(f))

	t.Run("Delete", func(t *testing.T) {
		causes := []store.Cause{store.CauseLogout, store.CauseAdmin, store.CauseExpiry}
		for _, cause := range causes {
			for _, nCerts := range []int{0, 3} {
				t.Run(fmt.Sprintf("%s/%d certificates", cause, nCerts), func(t *testing.T) {
					testDeleteSession(t, f, cause, nCerts)
				})
			}
		}
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		tick := h.tick()
		tests := []struct {
			name      string
			expiresAt time.Time
			removed   bool
		}{
			{"expired an hour ago", t0.Add(-time.Hour), true},
			{"expired a tick ago", t0.Add(-tick), true},
			{"expires exactly now", t0, true},
			{"expires in a tick", t0.Add(tick), false},
			{"expires in an hour", t0.Add(time.Hour), false},
		}
		sessions := make([]*store.APISession, len(tests))
		certs := make([]*store.Certificate, len(tests))
		for n, tt := range tests {
			s := h.session(i.ID)
			s.ExpiresAt = tt.expiresAt
			c := h.cert(s)
			h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, s, []*store.Certificate{c}))
			sessions[n], certs[n] = s, c
		}
		from := h.cursor()

		events, err := h.s.DeleteExpiredAPISessions(h.ctx, t0, 100)
		h.must("DeleteExpiredAPISessions", err)
		got := make(map[string]store.Event)
		for _, e := range events {
			got[e.APISessionID] = e
		}
		if len(got) != len(events) {
			t.Errorf("%d events name only %d sessions", len(events), len(got))
		}
		for n, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := h.on(t)
				s, c := sessions[n], certs[n]
				e, ok := got[s.ID]
				if ok != tt.removed {
					t.Fatalf("event for the session: %t, want %t", ok, tt.removed)
				}
				_, errS := h.s.GetAPISession(h.ctx, s.ID)
				_, errC := h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
				if !tt.removed {
					h.must("GetAPISession of a live session", errS)
					h.must("FindCertificateByFingerprint of a live session", errC)
					return
				}
				wantErr(t, "GetAPISession", errS, store.ErrNotFound)
				wantErr(t, "FindCertificateByFingerprint", errC, store.ErrNotFound)
				h.sameEvent("event", e, store.Event{
					Cursor:       e.Cursor,
					Type:         store.EventAPISessionRemoved,
					APISessionID: s.ID,
					IdentityID:   i.ID,
					Fingerprints: []string{c.Fingerprint},
					Cause:        store.CauseExpiry,
					At:           t0,
				})
			})
		}
		h.sameEvents("Events after the sweep", h.eventsAfter(from), events)
	})

	t.Run("DeleteExpiredLimit", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		for range 5 {
			s := h.session(i.ID)
			s.ExpiresAt = t0.Add(-time.Minute)
			h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, s, nil))
		}
		live := h.mustSession(i.ID)

		seen := make(map[string]bool)
		for _, step := range []struct{ limit, want int }{{2, 2}, {2, 2}, {2, 1}, {2, 0}} {
			events, err := h.s.DeleteExpiredAPISessions(h.ctx, t0, step.limit)
			h.must("DeleteExpiredAPISessions", err)
			if len(events) != step.want {
				t.Errorf("limit %d removed %d sessions, want %d",
					step.limit, len(events), step.want)
			}
			for _, e := range events {
				if seen[e.APISessionID] {
					t.Errorf("session %s removed twice", e.APISessionID)
				}
				seen[e.APISessionID] = true
			}
		}
		_, err := h.s.GetAPISession(h.ctx, live.ID)
		h.must("GetAPISession of the live session", err)
		_, total, err := h.s.ListAPISessions(h.ctx, store.Page{Limit: 10})
		h.must("ListAPISessions", err)
		if total != 1 {
			t.Errorf("total = %d, want only the live session", total)
		}
	})
}

// testDeleteSession removes a session with nCerts certificates for cause.
func testDeleteSession(t *testing.T, f Factory, cause store.Cause, nCerts int) {
	h := open(t, f, Options{})
	i := h.mustIdentity("alice")
	sess := h.mustSession(i.ID)
	var fps []string
	var certs []*store.Certificate
	for range nCerts {
		c := h.mustCert(sess)
		certs = append(certs, c)
		fps = append(fps, c.Fingerprint)
	}
	bystander := h.mustSession(i.ID)
	bystanderCert := h.mustCert(bystander)
	from := h.cursor()

	at := t0.Add(5 * time.Minute)
	ev, err := h.s.DeleteAPISession(h.ctx, sess.ID, cause, at)
	h.must("DeleteAPISession", err)
	if ev == nil {
		t.Fatal("DeleteAPISession returned no event")
	}
	if ev.Cursor <= from {
		t.Errorf("event cursor %d is not after the cursor before it, %d", ev.Cursor, from)
	}
	h.sameEvent("event", *ev, store.Event{
		Cursor:       ev.Cursor,
		Type:         store.EventAPISessionRemoved,
		APISessionID: sess.ID,
		IdentityID:   i.ID,
		Fingerprints: fps,
		Cause:        cause,
		At:           at,
	})
	h.sameEvents("Events after the delete", h.eventsAfter(from), []store.Event{*ev})

	_, err = h.s.GetAPISession(h.ctx, sess.ID)
	wantErr(t, "GetAPISession", err, store.ErrNotFound)
	_, err = h.s.FindAPISessionByTokenHash(h.ctx, sess.TokenHash)
	wantErr(t, "FindAPISessionByTokenHash", err, store.ErrNotFound)
	for _, c := range certs {
		_, err = h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
		wantErr(t, "FindCertificateByFingerprint", err, store.ErrNotFound)
		_, err = h.s.GetCertificate(h.ctx, sess.ID, c.ID)
		wantErr(t, "GetCertificate", err, store.ErrNotFound)
	}
	_, err = h.s.DeleteAPISession(h.ctx, sess.ID, cause, at)
	wantErr(t, "DeleteAPISession again", err, store.ErrNotFound)

	// A client certificate that started the ended session (a cert login)
	// may start the next one: its fingerprint is free again.
	if len(certs) > 0 {
		next := h.session(i.ID)
		reused := h.cert(next)
		reused.Fingerprint = certs[0].Fingerprint
		h.must("CreateAPISession with a certificate of the ended session",
			h.s.CreateAPISession(h.ctx, next, []*store.Certificate{reused}))
		got, err := h.s.FindCertificateByFingerprint(h.ctx, reused.APISessionID, reused.Fingerprint)
		h.must("FindCertificateByFingerprint of the reused fingerprint", err)
		h.same("certificate with the reused fingerprint", got, reused)
		_, err = h.s.DeleteAPISession(h.ctx, next.ID, cause, at)
		h.must("DeleteAPISession of the next session", err)
	}

	_, err = h.s.GetCertificate(h.ctx, bystander.ID, bystanderCert.ID)
	h.must("GetCertificate of another session", err)
	_, total, err := h.s.ListAPISessions(h.ctx, store.Page{Limit: 10})
	h.must("ListAPISessions", err)
	if total != 1 {
		t.Errorf("ListAPISessions total = %d, want 1", total)
	}
}

// testTouch covers TouchAPISessions: activity only moves forward, unknown
// sessions are skipped, and the new expiry is the one that sweeps obey.
func testTouch(f Factory) func(*testing.T) {
	return func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		a, b := h.mustSession(i.ID), h.mustSession(i.ID)
		deleted := h.mustSession(i.ID)
		_, err := h.s.DeleteAPISession(h.ctx, deleted.ID, store.CauseLogout, t0)
		h.must("DeleteAPISession", err)

		touch := func(s *store.APISession, d time.Duration) store.Touch {
			return store.Touch{
				APISessionID:   s.ID,
				LastActivityAt: s.LastActivityAt.Add(d),
				ExpiresAt:      s.ExpiresAt.Add(d),
			}
		}
		// The steps run in order; want is how far each session has moved
		// from where it started once the step is done.
		steps := []struct {
			name    string
			touches []store.Touch
			wantA   time.Duration
			wantB   time.Duration
			// exact says that every session the step touches is touched
			// once, forward, so LastActivityAt must follow; otherwise only
			// ExpiresAt is promised (it never moves back).
			exact bool
		}{
			{"none", nil, 0, 0, true},
			{"forward", []store.Touch{touch(a, time.Minute)}, time.Minute, 0, true},
			{"backward is ignored", []store.Touch{touch(a, -5*time.Minute)},
				time.Minute, 0, false},
			{"several at once, unknown and deleted skipped", []store.Touch{
				{APISessionID: "missing", LastActivityAt: t0, ExpiresAt: t0.Add(time.Hour)},
				touch(b, 3*time.Minute),
				touch(deleted, time.Hour),
				touch(a, 2*time.Minute),
			}, 2 * time.Minute, 3 * time.Minute, true},
			{"the same session twice keeps the later expiry", []store.Touch{
				touch(b, 10*time.Minute),
				touch(b, 4*time.Minute),
			}, 2 * time.Minute, 10 * time.Minute, false},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				h := h.on(t)
				h.must("TouchAPISessions", h.s.TouchAPISessions(h.ctx, st.touches))
				for _, c := range []struct {
					s    *store.APISession
					want time.Duration
				}{{a, st.wantA}, {b, st.wantB}} {
					got, err := h.s.GetAPISession(h.ctx, c.s.ID)
					h.must("GetAPISession", err)
					want := *c.s
					want.ExpiresAt = c.s.ExpiresAt.Add(c.want)
					want.LastActivityAt = got.LastActivityAt
					if st.exact {
						want.LastActivityAt = c.s.LastActivityAt.Add(c.want)
					}
					h.same("session "+c.s.ID, got, &want)
				}
				_, err := h.s.GetAPISession(h.ctx, deleted.ID)
				wantErr(t, "GetAPISession of the deleted session", err, store.ErrNotFound)
			})
		}

		t.Run("sweeps obey the new expiry", func(t *testing.T) {
			h := h.on(t)
			events, err := h.s.DeleteExpiredAPISessions(h.ctx, a.ExpiresAt, 10)
			h.must("DeleteExpiredAPISessions at the old expiry", err)
			if len(events) != 0 {
				t.Errorf("a sweep at the old expiry removed %d touched sessions", len(events))
			}
			events, err = h.s.DeleteExpiredAPISessions(h.ctx, a.ExpiresAt.Add(2*time.Minute), 10)
			h.must("DeleteExpiredAPISessions at the new expiry", err)
			if len(events) != 1 || events[0].APISessionID != a.ID {
				t.Errorf("a sweep at a's new expiry removed %d sessions, want only %s",
					len(events), a.ID)
			}
		})
	}
}

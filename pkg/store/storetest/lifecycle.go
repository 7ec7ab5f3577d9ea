package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// testTimes checks that times come back in UTC, equal to what was written
// within the factory's precision, whatever zone they were written in.
func testTimes(t *testing.T, f Factory) {
	h := open(t, f, Options{})
	tests := []struct {
		name string
		at   time.Time
	}{
		{"UTC with nanoseconds", t0},
		{"east of UTC", t0.In(time.FixedZone("UTC+5:30", 5*3600+1800))},
		{"west of UTC", t0.Add(987654321).In(time.FixedZone("UTC-8", -8*3600))},
		{"with a monotonic reading", time.Now()},
		{"far past", time.Date(1950, time.January, 1, 0, 0, 0, 1_000_000, time.UTC)},
		{"far future", time.Date(9999, time.December, 31, 23, 59, 59, 999_000_000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.on(t)
			i := h.identity(h.id("name"))
			i.CreatedAt, i.UpdatedAt = tt.at, tt.at.Add(-time.Millisecond)
			h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, i))
			got, err := h.s.GetIdentity(h.ctx, i.ID)
			h.must("GetIdentity", err)
			h.same("identity", got, i)

			s := h.session(i.ID)
			s.CreatedAt, s.LastActivityAt = tt.at, tt.at
			c := h.cert(s)
			c.ValidFrom, c.CreatedAt = tt.at, tt.at
			h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, s, []*store.Certificate{c}))
			gotS, err := h.s.GetAPISession(h.ctx, s.ID)
			h.must("GetAPISession", err)
			h.same("session", gotS, s)
			gotC, err := h.s.GetCertificate(h.ctx, s.ID, c.ID)
			h.must("GetCertificate", err)
			h.same("certificate", gotC, c)

			ev, err := h.s.DeleteAPISession(h.ctx, s.ID, store.CauseLogout, tt.at)
			h.must("DeleteAPISession", err)
			h.sameEvent("returned event", *ev, store.Event{
				Cursor: ev.Cursor, Type: store.EventAPISessionRemoved, APISessionID: s.ID,
				IdentityID: i.ID, Fingerprints: []string{c.Fingerprint},
				Cause: store.CauseLogout, At: tt.at,
			})
			stored, err := h.s.Events(h.ctx, ev.Cursor-1, 1)
			h.must("Events", err)
			h.sameEvents("stored event", stored, []store.Event{*ev})
		})
	}
}

// testCopies checks that callers own what they pass in and get back:
// changing either afterwards does not change what is stored.
func testCopies(t *testing.T, f Factory) {
	h := open(t, f, Options{})
	i := h.mustIdentity("alice")
	sess := h.session(i.ID)
	want := *sess
	want.ConfigTypes = append([]string(nil), sess.ConfigTypes...)
	h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, nil))

	// Change the caller's value after the call.
	sess.ConfigTypes[0] = "changed by the caller"
	sess.IPAddress = "changed by the caller"
	got, err := h.s.GetAPISession(h.ctx, sess.ID)
	h.must("GetAPISession", err)
	h.same("session after the caller changed its argument", got, &want)

	// Change a returned value.
	got.ConfigTypes[0] = "changed by a reader"
	got.TokenHash[0] ^= 0xff
	again, err := h.s.GetAPISession(h.ctx, sess.ID)
	h.must("GetAPISession", err)
	h.same("session after a reader changed its copy", again, &want)

	gotI, err := h.s.GetIdentity(h.ctx, i.ID)
	h.must("GetIdentity", err)
	gotI.Name = "changed by a reader"
	againI, err := h.s.FindIdentityByName(h.ctx, "alice")
	h.must("FindIdentityByName", err)
	h.same("identity after a reader changed its copy", againI, i)

	c := h.mustCert(&want)
	ev, err := h.s.DeleteAPISession(h.ctx, sess.ID, store.CauseLogout, t0)
	h.must("DeleteAPISession", err)
	ev.Fingerprints[0] = "changed by a reader"
	evs, err := h.s.Events(h.ctx, ev.Cursor-1, 1)
	h.must("Events", err)
	if len(evs) != 1 || len(evs[0].Fingerprints) != 1 || evs[0].Fingerprints[0] != c.Fingerprint {
		t.Errorf("stored event changed with the returned one: %+v", evs)
	}
}

// testClosed checks that every method returns ErrClosed after Close.
func testClosed(t *testing.T, f Factory) {
	h := open(t, f, Options{})
	sess := h.sessionWithIdentity()
	c := h.mustCert(sess)
	h.must("Close", h.s.Close())

	ctx, s, p := h.ctx, h.s, store.Page{Limit: 10}
	calls := []struct {
		name string
		call func() error
	}{
		{"Close", s.Close},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"CreateIdentity", func() error { return s.CreateIdentity(ctx, h.identity("new")) }},
		{"GetIdentity", func() error {
			_, err := s.GetIdentity(ctx, sess.IdentityID)
			return err
		}},
		{"FindIdentityByName", func() error {
			_, err := s.FindIdentityByName(ctx, "x")
			return err
		}},
		{"FindIdentityByExternalID", func() error {
			_, err := s.FindIdentityByExternalID(ctx, "x")
			return err
		}},
		{"UpdateIdentity", func() error { return s.UpdateIdentity(ctx, h.identity("x")) }},
		{"DeleteIdentity", func() error {
			_, err := s.DeleteIdentity(ctx, sess.IdentityID, t0)
			return err
		}},
		{"ListIdentities", func() error {
			_, _, err := s.ListIdentities(ctx, p)
			return err
		}},
		{"CountIdentities", func() error {
			_, err := s.CountIdentities(ctx)
			return err
		}},
		{"CountCertificates", func() error {
			_, err := s.CountCertificates(ctx)
			return err
		}},
		{"CreateAuthenticator", func() error {
			return s.CreateAuthenticator(ctx, &store.Authenticator{
				ID: "a", IdentityID: sess.IdentityID, Method: store.AuthMethodPassword,
				Username: "u",
			})
		}},
		{"GetAuthenticator", func() error {
			_, err := s.GetAuthenticator(ctx, "a")
			return err
		}},
		{"FindAuthenticatorByUsername", func() error {
			_, err := s.FindAuthenticatorByUsername(ctx, "u")
			return err
		}},
		{"FindAuthenticatorByFingerprint", func() error {
			_, err := s.FindAuthenticatorByFingerprint(ctx, "f")
			return err
		}},
		{"UpdateAuthenticator", func() error {
			return s.UpdateAuthenticator(ctx, &store.Authenticator{
				ID: "a", IdentityID: sess.IdentityID, Method: store.AuthMethodPassword,
			})
		}},
		{"DeleteAuthenticator", func() error {
			_, err := s.DeleteAuthenticator(ctx, "a", t0)
			return err
		}},
		{"ListAuthenticators", func() error {
			_, _, err := s.ListAuthenticators(ctx, p)
			return err
		}},
		{"CreateExtJWTSigner", func() error {
			return s.CreateExtJWTSigner(ctx, &store.ExtJWTSigner{ID: "s", Name: "s"})
		}},
		{"GetExtJWTSigner", func() error {
			_, err := s.GetExtJWTSigner(ctx, "s")
			return err
		}},
		{"UpdateExtJWTSigner", func() error {
			return s.UpdateExtJWTSigner(ctx, &store.ExtJWTSigner{ID: "s", Name: "s"})
		}},
		{"DeleteExtJWTSigner", func() error { return s.DeleteExtJWTSigner(ctx, "s") }},
		{"ListExtJWTSigners", func() error {
			_, _, err := s.ListExtJWTSigners(ctx, p)
			return err
		}},
		{"CreateAPISession", func() error {
			return s.CreateAPISession(ctx, h.session(sess.IdentityID), nil)
		}},
		{"GetAPISession", func() error {
			_, err := s.GetAPISession(ctx, sess.ID)
			return err
		}},
		{"FindAPISessionByTokenHash", func() error {
			_, err := s.FindAPISessionByTokenHash(ctx, sess.TokenHash)
			return err
		}},
		{"ListAPISessions", func() error {
			_, _, err := s.ListAPISessions(ctx, p)
			return err
		}},
		{"TouchAPISessions", func() error {
			return s.TouchAPISessions(ctx, []store.Touch{{
				APISessionID: sess.ID, LastActivityAt: t0, ExpiresAt: t0.Add(time.Hour),
			}})
		}},
		{"DeleteAPISession", func() error {
			_, err := s.DeleteAPISession(ctx, sess.ID, store.CauseLogout, t0)
			return err
		}},
		{"DeleteExpiredAPISessions", func() error {
			_, err := s.DeleteExpiredAPISessions(ctx, t0, 10)
			return err
		}},
		{"CreateCertificate", func() error {
			return s.CreateCertificate(ctx, h.cert(sess), 0, t0)
		}},
		{"GetCertificate", func() error {
			_, err := s.GetCertificate(ctx, sess.ID, c.ID)
			return err
		}},
		{"FindCertificateByFingerprint", func() error {
			_, err := s.FindCertificateByFingerprint(ctx, c.APISessionID, c.Fingerprint)
			return err
		}},
		{"ListCertificates", func() error {
			_, _, err := s.ListCertificates(ctx, sess.ID, t0, p)
			return err
		}},
		{"DeleteCertificate", func() error {
			_, err := s.DeleteCertificate(ctx, sess.ID, c.ID, t0)
			return err
		}},
		{"DeleteExpiredCertificates", func() error {
			_, err := s.DeleteExpiredCertificates(ctx, t0, 10)
			return err
		}},
		{"Events", func() error {
			_, err := s.Events(ctx, 0, 10)
			return err
		}},
		{"EventCursor", func() error {
			_, err := s.EventCursor(ctx)
			return err
		}},
		{"WaitEvents", func() error { return s.WaitEvents(ctx, 0) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.call(), store.ErrClosed)
		})
	}
}

// testReopen checks that everything written survives closing and opening
// the same data again, and that the event stream continues after it.
func testReopen(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("the backend cannot reopen a store")
	}
	h := open(t, f, Options{})

	// Write one of everything.
	ident := h.identity("alice")
	ident.ExternalID, ident.IsAdmin, ident.Type = "ext-alice", true, store.IdentityTypeRouter
	h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, ident))
	auth := &store.Authenticator{
		ID: h.id("authenticator"), IdentityID: ident.ID, Method: store.AuthMethodCert,
		CertPEM: "pem", Fingerprint: fingerprint("alice-login"), CreatedAt: t0, UpdatedAt: t0,
	}
	h.must("CreateAuthenticator", h.s.CreateAuthenticator(h.ctx, auth))
	signer := &store.ExtJWTSigner{
		ID: h.id("signer"), Name: "okta", Issuer: "https://okta.example", Audience: "sc",
		CertPEM: "pem", ClaimsProperty: "sub", Enabled: true, CreatedAt: t0, UpdatedAt: t0,
	}
	h.must("CreateExtJWTSigner", h.s.CreateExtJWTSigner(h.ctx, signer))

	sess := h.session(ident.ID)
	sess.AuthMethod, sess.AuthenticatorID = "cert", auth.ID
	login := h.cert(sess)
	login.Fingerprint = auth.Fingerprint
	h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, sess, []*store.Certificate{login}))
	issued := h.mustCert(sess)
	touched := store.Touch{
		APISessionID:   sess.ID,
		LastActivityAt: t0.Add(time.Minute),
		ExpiresAt:      sess.ExpiresAt.Add(time.Minute),
	}
	h.must("TouchAPISessions", h.s.TouchAPISessions(h.ctx, []store.Touch{touched}))
	sess.LastActivityAt, sess.ExpiresAt = touched.LastActivityAt, touched.ExpiresAt

	start := h.cursor()
	ended := h.sessionWithIdentity()
	endedCert := h.mustCert(ended)
	deleted := h.mustCert(sess)
	var events []store.Event
	ev, err := h.s.DeleteCertificate(h.ctx, sess.ID, deleted.ID, t0)
	h.must("DeleteCertificate", err)
	events = append(events, *ev)
	ev, err = h.s.DeleteAPISession(h.ctx, ended.ID, store.CauseLogout, t0)
	h.must("DeleteAPISession", err)
	events = append(events, *ev)
	cursor := h.cursor()

	h.reopen()

	t.Run("records", func(t *testing.T) {
		h := h.on(t)
		gotI, err := h.s.FindIdentityByExternalID(h.ctx, "ext-alice")
		h.must("FindIdentityByExternalID", err)
		h.same("identity", gotI, ident)
		gotA, err := h.s.FindAuthenticatorByFingerprint(h.ctx, auth.Fingerprint)
		h.must("FindAuthenticatorByFingerprint", err)
		h.same("authenticator", gotA, auth)
		gotSg, err := h.s.GetExtJWTSigner(h.ctx, signer.ID)
		h.must("GetExtJWTSigner", err)
		h.same("signer", gotSg, signer)
		gotS, err := h.s.FindAPISessionByTokenHash(h.ctx, sess.TokenHash)
		h.must("FindAPISessionByTokenHash", err)
		h.same("session", gotS, sess)

		list, total, err := h.s.ListCertificates(h.ctx, sess.ID, t0, store.Page{Limit: 10})
		h.must("ListCertificates", err)
		if total != 2 {
			t.Errorf("ListCertificates total = %d, want 2", total)
		}
		h.same("certificates", list, []*store.Certificate{login, issued})
		for _, gone := range []*store.Certificate{deleted, endedCert} {
			_, err := h.s.FindCertificateByFingerprint(h.ctx, gone.APISessionID, gone.Fingerprint)
			wantErr(t, "FindCertificateByFingerprint of a removed certificate", err,
				store.ErrNotFound)
		}
		_, err = h.s.GetAPISession(h.ctx, ended.ID)
		wantErr(t, "GetAPISession of a removed session", err, store.ErrNotFound)
	})

	t.Run("indexes", func(t *testing.T) {
		h := h.on(t)
		wantConflict(t, "CreateIdentity with a taken name",
			h.s.CreateIdentity(h.ctx, h.identity("alice")), "name")
		dup := h.cert(sess)
		dup.Fingerprint = issued.Fingerprint
		wantConflict(t, "CreateCertificate with a taken fingerprint",
			h.s.CreateCertificate(h.ctx, dup, 0, t0), "fingerprint")
		wantErr(t, "CreateCertificate over the cap",
			h.s.CreateCertificate(h.ctx, h.cert(sess), 2, t0), store.ErrLimitReached)
	})

	t.Run("events", func(t *testing.T) {
		h := h.on(t)
		if got := h.cursor(); got < cursor {
			t.Errorf("EventCursor = %d after reopen, was %d", got, cursor)
		}
		h.sameEvents("Events after reopen", h.eventsAfter(start), events)
		next := h.makeEvents(1)[0]
		if next.Cursor <= cursor {
			t.Errorf("first event after reopen has cursor %d, not after %d", next.Cursor, cursor)
		}
		h.sameEvents("Events", h.eventsAfter(start), append(events, next))
	})

	t.Run("expiry", func(t *testing.T) {
		h := h.on(t)
		evs, err := h.s.DeleteExpiredAPISessions(h.ctx, sess.ExpiresAt, 10)
		h.must("DeleteExpiredAPISessions", err)
		for _, e := range evs {
			if e.APISessionID != sess.ID {
				continue
			}
			h.sameEvent("event", e, store.Event{
				Cursor: e.Cursor, Type: store.EventAPISessionRemoved, APISessionID: sess.ID,
				IdentityID: ident.ID, Fingerprints: []string{login.Fingerprint, issued.Fingerprint},
				Cause: store.CauseExpiry, At: sess.ExpiresAt,
			})
			return
		}
		t.Errorf("a sweep at its expiry after reopen did not remove session %s", sess.ID)
	})
}

// testConcurrency runs writers against each other. The counts prove that
// checks and writes are atomic; -race proves the rest.
func testConcurrency(t *testing.T, f Factory) {
	const (
		workers = 16
		each    = 8
	)

	t.Run("CertificateCap", func(t *testing.T) {
		h := open(t, f, Options{})
		sess := h.sessionWithIdentity()
		const maxLive = 20
		certs := make([][]*store.Certificate, workers)
		for w := range certs {
			for range each {
				certs[w] = append(certs[w], h.cert(sess))
			}
		}

		var (
			mu      sync.Mutex
			created int
			others  []error
		)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for _, c := range certs[w] {
					err := h.s.CreateCertificate(h.ctx, c, maxLive, t0)
					mu.Lock()
					switch {
					case err == nil:
						created++
					case !errors.Is(err, store.ErrLimitReached):
						others = append(others, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()

		if len(others) > 0 {
			t.Errorf("errors other than ErrLimitReached: %v", others)
		}
		if created != maxLive {
			t.Errorf("%d of %d creations succeeded, want exactly %d",
				created, workers*each, maxLive)
		}
		_, total, err := h.s.ListCertificates(h.ctx, sess.ID, t0, store.Page{Limit: 100})
		h.must("ListCertificates", err)
		if total != maxLive {
			t.Errorf("ListCertificates total = %d, want %d", total, maxLive)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		sessions := make([][]*store.APISession, workers)
		for w := range sessions {
			for range each {
				sessions[w] = append(sessions[w], h.session(i.ID))
			}
		}
		errs := make(chan error, workers*each)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for _, s := range sessions[w] {
					if err := h.s.CreateAPISession(h.ctx, s, nil); err != nil {
						errs <- fmt.Errorf("CreateAPISession %s: %w", s.ID, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		_, total, err := h.s.ListAPISessions(h.ctx, store.Page{Limit: 1})
		h.must("ListAPISessions", err)
		if total != workers*each {
			t.Errorf("ListAPISessions total = %d, want %d", total, workers*each)
		}
		for _, ss := range sessions {
			for _, s := range ss {
				got, err := h.s.FindAPISessionByTokenHash(h.ctx, s.TokenHash)
				h.must("FindAPISessionByTokenHash", err)
				h.same("session", got, s)
			}
		}
	})

	t.Run("DeleteRacesCreate", func(t *testing.T) {
		// Certificates created while their session is being removed either
		// land before the removal, and are named by its event, or are
		// refused: none may outlive the session.
		h := open(t, f, Options{})
		sess := h.sessionWithIdentity()
		var (
			mu       sync.Mutex
			created  []string
			attempts []*store.Certificate
			others   []error
		)
		for range workers * each {
			attempts = append(attempts, h.cert(sess))
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range workers {
			wg.Go(func() {
				<-start
				for _, c := range attempts[w*each : (w+1)*each] {
					err := h.s.CreateCertificate(h.ctx, c, 0, t0)
					mu.Lock()
					switch {
					case err == nil:
						created = append(created, c.Fingerprint)
					case !errors.Is(err, store.ErrNotFound):
						others = append(others, err)
					}
					mu.Unlock()
				}
			})
		}
		var ev *store.Event
		var delErr error
		wg.Go(func() {
			<-start
			ev, delErr = h.s.DeleteAPISession(h.ctx, sess.ID, store.CauseAdmin, t0)
		})
		close(start)
		wg.Wait()

		h.must("DeleteAPISession", delErr)
		if len(others) > 0 {
			t.Errorf("errors other than ErrNotFound: %v", others)
		}
		named := make(map[string]bool)
		for _, fp := range ev.Fingerprints {
			named[fp] = true
		}
		for _, fp := range created {
			if !named[fp] {
				t.Errorf("certificate %s was created but is not named by the event", fp)
			}
		}
		for _, c := range attempts {
			_, err := h.s.FindCertificateByFingerprint(h.ctx, c.APISessionID, c.Fingerprint)
			wantErr(t, "FindCertificateByFingerprint after the session ended", err,
				store.ErrNotFound)
		}
	})

	t.Run("TouchRacesDelete", func(t *testing.T) {
		// Activity recorded while a session is removed must not bring it
		// back.
		h := open(t, f, Options{})
		i := h.mustIdentity("alice")
		var sessions []*store.APISession
		for range workers {
			sessions = append(sessions, h.mustSession(i.ID))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers)
		for _, s := range sessions {
			wg.Go(func() {
				_, err := h.s.DeleteAPISession(h.ctx, s.ID, store.CauseLogout, t0)
				if err != nil {
					errs <- fmt.Errorf("DeleteAPISession: %w", err)
				}
			})
			wg.Go(func() {
				err := h.s.TouchAPISessions(h.ctx, []store.Touch{{
					APISessionID:   s.ID,
					LastActivityAt: t0.Add(time.Minute),
					ExpiresAt:      s.ExpiresAt.Add(time.Minute),
				}})
				if err != nil {
					errs <- fmt.Errorf("TouchAPISessions: %w", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, s := range sessions {
			_, err := h.s.GetAPISession(h.ctx, s.ID)
			wantErr(t, "GetAPISession after delete and touch", err, store.ErrNotFound)
		}
		evs, err := h.s.DeleteExpiredAPISessions(h.ctx, t0.Add(24*time.Hour), 100)
		h.must("DeleteExpiredAPISessions", err)
		if len(evs) != 0 {
			t.Errorf("a sweep found %d sessions that touches brought back", len(evs))
		}
	})

	t.Run("ReadersDuringWrites", func(t *testing.T) {
		h := open(t, f, Options{})
		sess := h.sessionWithIdentity()
		var wg sync.WaitGroup
		// A bounded number of reads rather than a loop until the writer is
		// done: spinning readers would starve the suite's parallel groups.
		for range 2 {
			wg.Go(func() {
				for range 100 {
					_, _, _ = h.s.ListCertificates(h.ctx, sess.ID, t0, store.Page{Limit: 50})
					_, _ = h.s.FindAPISessionByTokenHash(h.ctx, sess.TokenHash)
					_, _ = h.s.Events(h.ctx, 0, 50)
				}
			})
		}
		for range 10 {
			c := h.mustCert(sess)
			_, err := h.s.DeleteCertificate(h.ctx, sess.ID, c.ID, t0)
			h.must("DeleteCertificate", err)
		}
		wg.Wait()
	})
}

// Package storetest is the conformance suite of store.Store. A backend's own
// test calls Run with a Factory, and the suite proves, through the
// interface alone, every guarantee that package store documents: lookups and
// uniqueness, list order and paging, a session's certificates living and
// dying with it, exactly one event per removal with increasing cursors,
// waiting on the event stream, durability across a reopen, behaviour under
// concurrent writers, and ErrClosed after Close.
//
// Run the suite with -race: several tests exist to give the detector work.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Options configures a store that Factory.Open returns.
type Options struct {
	// EventHistory asks the backend to retain about this many of the newest
	// events: at least EventHistory, and none older than the newest
	// 10*EventHistory, so that the suite can reach a cursor older than the
	// retained history. Zero means the backend's default.
	EventHistory int
}

// Factory opens the stores the suite runs against. The suite runs its
// groups of tests in parallel, so both functions must be safe for
// concurrent use.
type Factory struct {
	// Open returns a new, empty store configured by o, or fails t. The
	// suite closes the store when the test ends.
	Open func(t *testing.T, o Options) store.Store

	// Reopen closes s and returns a store over the same data, opened with
	// the same Options, or fails t. Nil skips the tests that need it.
	Reopen func(t *testing.T, s store.Store) store.Store

	// TimePrecision is the finest unit the backend keeps in time values,
	// at most time.Millisecond; a time read back may differ from the time
	// written by less than this. Zero means times come back exactly, to the
	// nanosecond.
	TimePrecision time.Duration
}

// Run runs the whole suite against the stores f opens, each group of tests
// as a parallel subtest of t.
func Run(t *testing.T, f Factory) {
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	if f.TimePrecision < 0 || f.TimePrecision > time.Millisecond {
		t.Fatalf("storetest: TimePrecision %s is outside [0, 1ms]", f.TimePrecision)
	}

	groups := []struct {
		name string
		run  func(*testing.T, Factory)
	}{
		{"Identities", testIdentities},
		{"Authenticators", testAuthenticators},
		{"ExtJWTSigners", testSigners},
		{"APISessions", testSessions},
		{"Certificates", testCertificates},
		{"DeleteIdentityCascades", testDeleteIdentity},
		{"Events", testEvents},
		{"WaitEvents", testWaitEvents},
		{"Times", testTimes},
		{"Copies", testCopies},
		{"Closed", testClosed},
		{"Reopen", testReopen},
		{"Concurrency", testConcurrency},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, f)
		})
	}
}

// t0 is the suite's "now". It has nanoseconds so that a backend that drops
// them below its declared precision is caught, and lies in the future so
// that no real clock could agree with it by accident.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.UTC)

// harness is one store under test with the helpers the tests share.
type harness struct {
	t   *testing.T
	f   Factory
	s   store.Store
	ctx context.Context
}

// on returns the harness for the subtest t, which must report through its
// own t: FailNow may only be called from the test's own goroutine.
func (h *harness) on(t *testing.T) *harness {
	c := *h
	c.t, c.ctx = t, t.Context()
	return &c
}

// seq numbers every id the fixtures make up, across all tests, so that ids
// are unique and sort in creation order.
var seq atomic.Int64

// open returns a harness over a new store opened with o.
func open(t *testing.T, f Factory, o Options) *harness {
	t.Helper()
	h := &harness{t: t, f: f, ctx: t.Context()}
	h.setStore(f.Open(t, o))
	return h
}

// setStore makes s the store under test and closes it when the test ends;
// the test may have closed it already, so the error is not interesting.
func (h *harness) setStore(s store.Store) {
	h.t.Helper()
	if s == nil {
		h.t.Fatal("storetest: the factory returned a nil store")
	}
	h.s = s
	h.t.Cleanup(func() { _ = s.Close() })
}

// reopen closes the store and opens its data again.
func (h *harness) reopen() {
	h.t.Helper()
	h.setStore(h.f.Reopen(h.t, h.s))
}

// tick is the smallest step in time that the store under test keeps.
func (h *harness) tick() time.Duration {
	return max(h.f.TimePrecision, time.Nanosecond)
}

// id makes up a unique id.
func (h *harness) id(kind string) string {
	return fmt.Sprintf("%s-%06d", kind, seq.Add(1))
}

// fingerprint makes up a value shaped like a certificate's fingerprint:
// 40 lower-case hex digits.
func fingerprint(seed string) string {
	sum := sha256.Sum256([]byte("fingerprint:" + seed))
	return hex.EncodeToString(sum[:20])
}

// tokenHash makes up the hash of a session token.
func tokenHash(seed string) store.TokenHash {
	return sha256.Sum256([]byte("token:" + seed))
}

// identity returns an identity that is not stored yet.
func (h *harness) identity(name string) *store.Identity {
	return &store.Identity{
		ID:        h.id("identity"),
		Name:      name,
		Type:      store.IdentityTypeUser,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

// mustIdentity stores a new identity named name.
func (h *harness) mustIdentity(name string) *store.Identity {
	h.t.Helper()
	i := h.identity(name)
	h.must("CreateIdentity", h.s.CreateIdentity(h.ctx, i))
	return i
}

// session returns a session of identityID, with every field set, that is
// not stored yet. It expires 30 minutes after t0.
func (h *harness) session(identityID string) *store.APISession {
	id := h.id("session")
	return &store.APISession{
		ID:              id,
		TokenHash:       tokenHash(id),
		IdentityID:      identityID,
		AuthenticatorID: "authenticator-of-" + id,
		AuthMethod:      "password",
		IPAddress:       "192.0.2.7",
		ConfigTypes:     []string{"all", "intercept.v1"},
		Timeout:         30 * time.Minute,
		CreatedAt:       t0.Add(-time.Minute),
		UpdatedAt:       t0.Add(-time.Second),
		LastActivityAt:  t0,
		ExpiresAt:       t0.Add(30 * time.Minute),
	}
}

// mustSession stores a new session of identityID that starts with certs.
func (h *harness) mustSession(identityID string, certs ...*store.Certificate) *store.APISession {
	h.t.Helper()
	s := h.session(identityID)
	for _, c := range certs {
		c.APISessionID = s.ID
	}
	h.must("CreateAPISession", h.s.CreateAPISession(h.ctx, s, certs))
	return s
}

// sessionWithIdentity stores a new identity and a session of it.
func (h *harness) sessionWithIdentity() *store.APISession {
	h.t.Helper()
	i := h.mustIdentity(h.id("name"))
	return h.mustSession(i.ID)
}

// cert returns a certificate of s, valid until 12 hours after t0, that is
// not stored yet. Each one is created a millisecond after the previous.
func (h *harness) cert(s *store.APISession) *store.Certificate {
	n := seq.Add(1)
	id := fmt.Sprintf("certificate-%06d", n)
	return &store.Certificate{
		ID:           id,
		APISessionID: s.ID,
		IdentityID:   s.IdentityID,
		Fingerprint:  fingerprint(id),
		Subject:      "CN=" + s.IdentityID,
		Serial:       fmt.Sprintf("%x", n*7919),
		ChainPEM:     "-----BEGIN CERTIFICATE-----\n" + id + "\n-----END CERTIFICATE-----\n",
		ValidFrom:    t0.Add(-time.Minute),
		ValidTo:      t0.Add(12 * time.Hour),
		CreatedAt:    t0.Add(time.Duration(n) * time.Millisecond),
	}
}

// mustCert stores a new certificate of s with no cap.
func (h *harness) mustCert(s *store.APISession) *store.Certificate {
	h.t.Helper()
	c := h.cert(s)
	h.must("CreateCertificate", h.s.CreateCertificate(h.ctx, c, 0, t0))
	return c
}

// mustCertValidTo stores a new certificate of s valid until validTo.
func (h *harness) mustCertValidTo(s *store.APISession, validTo time.Time) *store.Certificate {
	h.t.Helper()
	c := h.cert(s)
	c.ValidTo = validTo
	h.must("CreateCertificate", h.s.CreateCertificate(h.ctx, c, 0, t0))
	return c
}

// must fails the test at once when a step that sets the scene fails.
func (h *harness) must(what string, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// cursor returns the store's event cursor.
func (h *harness) cursor() uint64 {
	h.t.Helper()
	c, err := h.s.EventCursor(h.ctx)
	h.must("EventCursor", err)
	return c
}

// eventsAfter returns every event after cursor.
func (h *harness) eventsAfter(cursor uint64) []store.Event {
	h.t.Helper()
	evs, err := h.s.Events(h.ctx, cursor, 10_000)
	h.must("Events", err)
	return evs
}

// wantErr reports an error unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// wantConflict reports an error unless err is a *store.ConflictError on
// field that also matches store.ErrConflict.
func wantConflict(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ce *store.ConflictError
	switch {
	case !errors.As(err, &ce):
		t.Errorf("%s: error %v, want a *store.ConflictError on %q", what, err, field)
	case ce.Field != field:
		t.Errorf("%s: conflict on %q, want %q (%v)", what, ce.Field, field, err)
	case !errors.Is(err, store.ErrConflict):
		t.Errorf("%s: errors.Is(%v, store.ErrConflict) is false", what, err)
	}
}

// same reports every field in which got differs from want. Times compare
// within the factory's precision and must come back in UTC; a nil slice
// equals an empty one.
func (h *harness) same(what string, got, want any) {
	h.t.Helper()
	d := diff(reflect.ValueOf(got), reflect.ValueOf(want), "", h.f.TimePrecision)
	if len(d) > 0 {
		h.t.Errorf("%s differs from what was stored:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// sameEvent is same for events, whose fingerprints are a set.
func (h *harness) sameEvent(what string, got, want store.Event) {
	h.t.Helper()
	got.Fingerprints = slices.Sorted(slices.Values(got.Fingerprints))
	want.Fingerprints = slices.Sorted(slices.Values(want.Fingerprints))
	h.same(what, got, want)
}

// sameEvents is sameEvent for lists, in order.
func (h *harness) sameEvents(what string, got, want []store.Event) {
	h.t.Helper()
	if len(got) != len(want) {
		h.t.Errorf("%s: %d events %s, want %d %s",
			what, len(got), cursors(got), len(want), cursors(want))
		return
	}
	for i, w := range want {
		h.sameEvent(fmt.Sprintf("%s[%d]", what, i), got[i], w)
	}
}

// cursors lists the cursors of evs for messages.
func cursors(evs []store.Event) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", e.Cursor)
	}
	b.WriteByte(']')
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

// diff walks got and want, which have the same type, and describes each
// difference with its path.
func diff(got, want reflect.Value, path string, prec time.Duration) []string {
	if !got.IsValid() || !want.IsValid() {
		if got.IsValid() != want.IsValid() {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
	if got.Type() != want.Type() {
		return []string{fmt.Sprintf("%s: got a %s, want a %s", path, got.Type(), want.Type())}
	}
	if got.Type() == timeType {
		msg := timeDiff(got.Interface().(time.Time), want.Interface().(time.Time), prec)
		if msg == "" {
			return nil
		}
		return []string{path + ": " + msg}
	}

	switch got.Kind() {
	case reflect.Pointer:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
			}
			return nil
		}
		return diff(got.Elem(), want.Elem(), path, prec)
	case reflect.Struct:
		var out []string
		for i := range got.NumField() {
			f := got.Type().Field(i)
			if f.IsExported() {
				out = append(out, diff(got.Field(i), want.Field(i), path+"."+f.Name, prec)...)
			}
		}
		return out
	case reflect.Slice:
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var out []string
		for i := range got.Len() {
			out = append(out, diff(got.Index(i), want.Index(i),
				fmt.Sprintf("%s[%d]", path, i), prec)...)
		}
		return out
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
}

// timeDiff describes how got differs from want beyond prec, or returns "".
func timeDiff(got, want time.Time, prec time.Duration) string {
	if got.Location() != time.UTC {
		return fmt.Sprintf("got %s in %s, want UTC", got, got.Location())
	}
	d := got.Sub(want)
	if d < 0 {
		d = -d
	}
	if (prec == 0 && d != 0) || (prec > 0 && d >= prec) {
		return fmt.Sprintf("got %s, want %s (off by %s)",
			got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), d)
	}
	return ""
}

package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

const alicePassword = "alice-password"

// passwordFixture is a store holding alice with the username "alice", a
// fake over it that can fail, and a clock.
type passwordFixture struct {
	store *failingStore
	clock *testClock
}

func newPasswordFixture(tb testing.TB) *passwordFixture {
	tb.Helper()
	s := openBoltStore(tb)
	createIdentities(tb, s, alice)
	hash, err := HashPassword(alicePassword, cheap, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	a := &store.Authenticator{
		ID: "authpppppppppppp", IdentityID: alice.ID, Method: store.AuthMethodPassword,
		Username: "alice", PasswordHash: hash, CreatedAt: fixNow, UpdatedAt: fixNow,
	}
	if err := s.CreateAuthenticator(context.Background(), a); err != nil {
		tb.Fatalf("CreateAuthenticator: %v", err)
	}
	return &passwordFixture{
		store: &failingStore{Store: s, err: fmt.Errorf("bolt: %w", store.ErrUnavailable)},
		clock: newTestClock(),
	}
}

// auth returns a Password over the fixture with those limits.
func (f *passwordFixture) auth(tb testing.TB, bySource, byUsername *AttemptLimiter) *Password {
	tb.Helper()
	p, err := NewPassword(PasswordConfig{
		Store: f.store, Params: cheap, BySource: bySource, ByUsername: byUsername,
		Now: f.clock.Now, Rand: rand.Reader,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Outcomes of a password login, as outcome names them.
const (
	outOK           = "ok"
	outLimitedFirst = "rate limited, first"
	outLimited      = "rate limited"
	outStoreDown    = "store unavailable"
)

// outcome names what a login returned: an outcome constant or the reason
// of a *LoginError.
func outcome(res *Result, err error) string {
	var (
		limited *RateLimitError
		le      *LoginError
	)
	switch {
	case err == nil && res != nil && res.Identity.ID == alice.ID && res.Method == MethodPassword:
		return outOK
	case errors.As(err, &limited) && errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrInvalidAuth):
		if limited.First {
			return outLimitedFirst
		}
		return outLimited
	case errors.As(err, &le) && errors.Is(err, ErrInvalidAuth) && res == nil:
		return string(le.Reason)
	case errors.Is(err, store.ErrUnavailable) && !errors.Is(err, ErrInvalidAuth):
		return outStoreDown
	}
	return fmt.Sprintf("unexpected %+v, %v", res, err)
}

// TestPasswordAuthenticate checks each outcome of a single login without
// limits: an unknown username fails like a wrong password, and a failing
// store is not a failed login.
func TestPasswordAuthenticate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, username, password string
		storeDown                bool
		want                     string
	}{
		{"right password", "alice", alicePassword, false, outOK},
		{"wrong password", "alice", "alice-passwore", false, string(ReasonWrongPassword)},
		{"unknown username", "nobody", alicePassword, false, string(ReasonUnknownUser)},
		{"username in another case", "Alice", alicePassword, false, string(ReasonUnknownUser)},
		{"store unavailable", "alice", alicePassword, true, outStoreDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newPasswordFixture(t)
			f.store.failFindByUsername.Store(tc.storeDown)

			p := f.auth(t, nil, nil)
			res, err := p.Authenticate(context.Background(), tc.username, tc.password, "10.0.0.1")

			if got := outcome(res, err); got != tc.want {
				t.Errorf("outcome %s, want %s", got, tc.want)
			}
		})
	}
}

// loginStep is one login of a scripted test: the clock moves by advance,
// the store is up or down, and the outcome must be want.
type loginStep struct {
	username, password, source string
	advance                    time.Duration
	storeDown                  bool
	want                       string
}

// Steps of the scripts below: right and wrong passwords of alice from a
// source, and a login of a username that does not exist.
func right(source, want string) loginStep {
	return loginStep{"alice", alicePassword, source, 0, false, want}
}

func wrong(source, want string) loginStep {
	return loginStep{"alice", "not-her-password", source, 0, false, want}
}

func unknown(username, source, want string) loginStep {
	return loginStep{username, "any-password", source, 0, false, want}
}

// TestPasswordLimits scripts logins against limits of failed attempts per
// source and per username, with a clock the test moves.
func TestPasswordLimits(t *testing.T) {
	t.Parallel()
	const wrongPassword, unknownUser = string(ReasonWrongPassword), string(ReasonUnknownUser)
	for _, tc := range []struct {
		name                       string
		sourceBurst, usernameBurst int
		steps                      []loginStep
	}{
		{"after the burst even the right password is refused, until a minute passes", 3, 3, []loginStep{
			wrong("s1", wrongPassword), wrong("s1", wrongPassword), wrong("s1", wrongPassword),
			right("s1", outLimitedFirst), wrong("s1", outLimited), right("s1", outLimited),
			{"alice", alicePassword, "s1", time.Minute, false, outOK},
			wrong("s1", wrongPassword),
			right("s1", outLimitedFirst),
		}},
		{"a right password costs nothing", 3, 3, []loginStep{
			wrong("s1", wrongPassword), wrong("s1", wrongPassword),
			right("s1", outOK), right("s1", outOK), right("s1", outOK), right("s1", outOK),
			wrong("s1", wrongPassword),
			right("s1", outLimitedFirst),
		}},
		{"an unknown username counts like a wrong password", 3, 3, []loginStep{
			unknown("nobody", "s1", unknownUser), unknown("nobody", "s1", unknownUser),
			unknown("nobody", "s1", unknownUser), unknown("nobody", "s1", outLimitedFirst),
		}},
		{"per username, whatever the source", 3, 3, []loginStep{
			wrong("s1", wrongPassword), wrong("s2", wrongPassword), wrong("s3", wrongPassword),
			right("s4", outLimitedFirst), right("s5", outLimited),
			unknown("nobody", "s4", unknownUser),
		}},
		{"per source, whatever the username", 3, 3, []loginStep{
			unknown("u1", "s1", unknownUser), unknown("u2", "s1", unknownUser),
			unknown("u3", "s1", unknownUser),
			right("s1", outLimitedFirst),
			right("s2", outOK),
		}},
		{"a refusal by username gives the source its attempt back", 2, 1, []loginStep{
			wrong("s1", wrongPassword),
			wrong("s1", outLimitedFirst),
			unknown("nobody", "s1", unknownUser),
			unknown("other", "s1", outLimitedFirst),
		}},
		{"a refusal by source takes nothing from the username", 1, 2, []loginStep{
			wrong("s1", wrongPassword),
			wrong("s1", outLimitedFirst), wrong("s1", outLimited),
			wrong("s2", wrongPassword),
			wrong("s3", outLimitedFirst),
		}},
		{"a store outage costs nothing", 2, 2, []loginStep{
			{"alice", "not-her-password", "s1", 0, true, outStoreDown},
			{"alice", "not-her-password", "s1", 0, true, outStoreDown},
			{"alice", "not-her-password", "s1", 0, true, outStoreDown},
			wrong("s1", wrongPassword), wrong("s1", wrongPassword),
			wrong("s1", outLimitedFirst),
		}},
		{"a 512 KiB username is limited like any other", 10, 2, []loginStep{
			unknown(string(make([]byte, 512<<10)), "s1", unknownUser),
			unknown(string(make([]byte, 512<<10)), "s2", unknownUser),
			unknown(string(make([]byte, 512<<10)), "s3", outLimitedFirst),
			unknown(string(make([]byte, 512<<10-1)), "s3", unknownUser),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newPasswordFixture(t)
			p := f.auth(t, NewAttemptLimiter(tc.sourceBurst, time.Minute),
				NewAttemptLimiter(tc.usernameBurst, time.Minute))
			for i, s := range tc.steps {
				f.clock.Advance(s.advance)
				f.store.failFindByUsername.Store(s.storeDown)
				res, err := p.Authenticate(context.Background(), s.username, s.password, s.source)
				if got := outcome(res, err); got != s.want {
					t.Fatalf("step %d (%.12s from %s): %s, want %s", i, s.username, s.source, got, s.want)
				}
			}
		})
	}
}

// TestPasswordLimitsParallel sends many wrong passwords at once: exactly
// the burst reaches the password check, and the rest are refused before
// it, one of them marked as the first refusal.
func TestPasswordLimitsParallel(t *testing.T) {
	t.Parallel()
	const burst, n = 3, 40
	for _, tc := range []struct {
		name                 string
		bySource, byUsername *AttemptLimiter
		source               func(i int) string
	}{
		{"one source", NewAttemptLimiter(burst, time.Hour), NewAttemptLimiter(burst, time.Hour),
			func(int) string { return "10.0.0.1" }},
		{"a source each", NewAttemptLimiter(burst, time.Hour), NewAttemptLimiter(burst, time.Hour),
			func(i int) string { return fmt.Sprintf("10.0.1.%d", i) }},
		{"no limit per username", NewAttemptLimiter(burst, time.Hour), nil,
			func(int) string { return "10.0.0.1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newPasswordFixture(t)
			p := f.auth(t, tc.bySource, tc.byUsername)
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				got = map[string]int{}
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := p.Authenticate(context.Background(), "alice", "not-her-password", tc.source(i))
					mu.Lock()
					got[outcome(res, err)]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			want := map[string]int{
				string(ReasonWrongPassword): burst, outLimitedFirst: 1, outLimited: n - burst - 1,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("outcomes %v, want %v", got, want)
			}
		})
	}
}

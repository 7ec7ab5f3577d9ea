package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// AttemptLimiter limits failed login attempts per key (a source address or a
// username) with a token bucket: each key may fail Burst times at once, and
// regains one attempt every Every. Successful logins cost nothing.
//
// Keys whose bucket has refilled are forgotten, so memory stays proportional
// to the keys that failed recently. Safe for concurrent use.
type AttemptLimiter struct {
	burst int
	every time.Duration

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	sweeps  int
}

// NewAttemptLimiter returns a limiter that allows burst failures per key and
// regains one every every. A burst of zero or less disables limiting.
func NewAttemptLimiter(burst int, every time.Duration) *AttemptLimiter {
	return &AttemptLimiter{burst: burst, every: every, buckets: make(map[string]*rate.Limiter)}
}

// Allowed reports whether key may make an attempt at now.
func (l *AttemptLimiter) Allowed(key string, now time.Time) bool {
	if l == nil || l.burst <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	return !ok || b.TokensAt(now) >= 1
}

// Fail records a failed attempt of key at now.
func (l *AttemptLimiter) Fail(key string, now time.Time) {
	if l == nil || l.burst <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[key] = b
	}
	b.AllowN(now, 1)
	l.sweeps++
	if l.sweeps >= 1024 {
		l.sweeps = 0
		l.forgetRefilled(now)
	}
}

// Take records an attempt of key at now and reports whether it was within
// the limit; an attempt over the limit costs nothing. It limits every
// attempt, not only failed ones: certificate issuance per session, say.
func (l *AttemptLimiter) Take(key string, now time.Time) bool {
	if l == nil || l.burst <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[key] = b
	}
	allowed := b.AllowN(now, 1)
	l.sweeps++
	if l.sweeps >= 1024 {
		l.sweeps = 0
		l.forgetRefilled(now)
	}
	return allowed
}

// forgetRefilled drops buckets that are full again; they behave exactly like
// absent ones.
func (l *AttemptLimiter) forgetRefilled(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// sweepEvery is how many takes pass between two sweeps of the buckets that
// are full again.
const sweepEvery = 1024

// AttemptLimiter limits attempts per key (a source address, a username, a
// session id) with a token bucket: each key may make burst attempts at
// once, and regains one every every.
//
// An attempt takes its token before the work it guards (Take) and may give
// it back afterwards (GiveBack): a login gives it back when it succeeded,
// so that only failures count, and attempts running in parallel cannot all
// pass on the one token that was left.
//
// Buckets are held under the SHA-256 of their key, so a key of any length
// costs the same few bytes, and buckets that are full again are forgotten,
// so memory stays proportional to the keys used recently. Safe for
// concurrent use.
type AttemptLimiter struct {
	burst int
	every time.Duration

	mu      sync.Mutex
	buckets map[[sha256.Size]byte]*bucket
	takes   int
}

// bucket is the state of one key. It counts whole tokens and the time from
// which the next one accrues, so that a token given back restores exactly
// one. (golang.org/x/time/rate restores less than a token when other
// reservations followed the cancelled one, and moves its refill clock back,
// so parallel logins would drift the limit.)
type bucket struct {
	tokens   int
	since    time.Time // when the next token began to accrue
	refusing bool      // refused an attempt since it last granted one
}

// NewAttemptLimiter returns a limiter that allows burst attempts per key at
// once and regains one every every. A burst or an every of zero or less
// disables limiting: every attempt is granted.
func NewAttemptLimiter(burst int, every time.Duration) *AttemptLimiter {
	return &AttemptLimiter{burst: burst, every: every, buckets: make(map[[sha256.Size]byte]*bucket)}
}

// disabled reports whether l grants every attempt; a nil limiter does.
func (l *AttemptLimiter) disabled() bool { return l == nil || l.burst <= 0 || l.every <= 0 }

// Take takes one attempt of key at now and reports whether key's bucket
// held one. When it did not, nothing is taken, and first reports whether
// this is the first refusal since the bucket last granted an attempt, so
// that a caller can record a run of refusals once instead of once per
// request.
func (l *AttemptLimiter) Take(key string, now time.Time) (ok, first bool) {
	if l.disabled() {
		return true, false
	}
	k := sha256.Sum256([]byte(key))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.takes++
	if l.takes >= sweepEvery {
		l.takes = 0
		l.forgetFull(now)
	}
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{tokens: l.burst, since: now}
		l.buckets[k] = b
	}
	l.refill(b, now)
	if b.tokens == 0 {
		first = !b.refusing
		b.refusing = true
		return false, first
	}
	b.tokens--
	b.refusing = false
	return true, false
}

// GiveBack returns an attempt of key that Take granted, as if it had not
// been made: for a login that succeeded, or that failed for another reason
// than its credential. A bucket never holds more than burst attempts.
func (l *AttemptLimiter) GiveBack(key string) {
	if l.disabled() {
		return
	}
	k := sha256.Sum256([]byte(key))
	l.mu.Lock()
	defer l.mu.Unlock()
	// A bucket that is gone was full, and stays so.
	if b, ok := l.buckets[k]; ok && b.tokens < l.burst {
		b.tokens++
	}
}

// refill adds the tokens b earned by now. A full bucket earns nothing, so
// its next token begins to accrue when one is taken.
func (l *AttemptLimiter) refill(b *bucket, now time.Time) {
	if b.tokens >= l.burst {
		b.tokens, b.since = l.burst, now
		return
	}
	n := now.Sub(b.since) / l.every
	if n <= 0 {
		return
	}
	if n >= time.Duration(l.burst-b.tokens) {
		b.tokens, b.since = l.burst, now
		return
	}
	b.tokens += int(n)
	b.since = b.since.Add(n * l.every)
}

// forgetFull drops the buckets that are full at now; they behave exactly
// like absent ones.
func (l *AttemptLimiter) forgetFull(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

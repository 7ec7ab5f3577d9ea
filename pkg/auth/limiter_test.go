package auth

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// limiterStep is one call on a limiter: a Take of key at fixNow plus at,
// with the answer it must get, or a GiveBack of key.
type limiterStep struct {
	give      bool
	key       string
	at        time.Duration
	ok, first bool
}

func take(key string, at time.Duration, ok, first bool) limiterStep {
	return limiterStep{key: key, at: at, ok: ok, first: first}
}

func giveBack(key string) limiterStep { return limiterStep{give: true, key: key} }

// TestAttemptLimiter scripts a limiter of three attempts a minute.
func TestAttemptLimiter(t *testing.T) {
	granted := func(key string, at time.Duration) limiterStep { return take(key, at, true, false) }
	for _, tc := range []struct {
		name  string
		steps []limiterStep
	}{
		{"burst, then refusals of which the first is marked", []limiterStep{
			granted("a", 0), granted("a", 0), granted("a", 0),
			take("a", 0, false, true), take("a", time.Second, false, false),
			granted("b", 0),
		}},
		{"one attempt regained a minute, the remainder kept", []limiterStep{
			granted("a", 0), granted("a", 0), granted("a", 0),
			take("a", 59*time.Second, false, true),
			granted("a", time.Minute),
			take("a", time.Minute, false, true),
			granted("a", 179*time.Second),
			granted("a", 180*time.Second),
			take("a", 180*time.Second, false, true),
		}},
		{"an hour regains no more than the burst", []limiterStep{
			granted("a", 0), granted("a", 0), granted("a", 0),
			granted("a", time.Hour), granted("a", time.Hour), granted("a", time.Hour),
			take("a", time.Hour, false, true),
		}},
		{"a given back attempt is exactly one", []limiterStep{
			granted("a", 0), granted("a", 0), granted("a", 0),
			giveBack("a"),
			granted("a", 0),
			take("a", 0, false, true),
		}},
		{"giving back never fills past the burst", []limiterStep{
			giveBack("a"), granted("a", 0), giveBack("a"), giveBack("a"),
			granted("a", 0), granted("a", 0), granted("a", 0),
			take("a", 0, false, true),
		}},
		{"a refusal takes nothing", []limiterStep{
			granted("a", 0), granted("a", 0), granted("a", 0),
			take("a", 0, false, true), take("a", 0, false, false),
			granted("a", time.Minute),
			take("a", time.Minute, false, true),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewAttemptLimiter(3, time.Minute)
			for i, s := range tc.steps {
				if s.give {
					l.GiveBack(s.key)
					continue
				}
				ok, first := l.Take(s.key, fixNow.Add(s.at))
				if ok != s.ok || first != s.first {
					t.Fatalf("step %d: Take(%s, +%s) = %v, %v; want %v, %v",
						i, s.key, s.at, ok, first, s.ok, s.first)
				}
			}
		})
	}
}

// TestAttemptLimiterDisabled checks that a nil limiter, and one with no
// burst or no refill, grant every attempt.
func TestAttemptLimiterDisabled(t *testing.T) {
	for name, l := range map[string]*AttemptLimiter{
		"nil":        nil,
		"zero burst": NewAttemptLimiter(0, time.Minute),
		"zero every": NewAttemptLimiter(3, 0),
	} {
		t.Run(name, func(t *testing.T) {
			for i := range 100 {
				if ok, _ := l.Take("a", fixNow); !ok {
					t.Fatalf("attempt %d refused", i+1)
				}
			}
			l.GiveBack("a")
		})
	}
}

// TestAttemptLimiterParallel takes from one key in parallel: exactly the
// burst is granted, and exactly one refusal is marked first.
func TestAttemptLimiterParallel(t *testing.T) {
	const burst, n = 5, 64
	l := NewAttemptLimiter(burst, time.Hour)
	var (
		wg                    sync.WaitGroup
		mu                    sync.Mutex
		granted, firstRefusal int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, first := l.Take("a", fixNow)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				granted++
			}
			if first {
				firstRefusal++
			}
		}()
	}
	wg.Wait()
	if granted != burst || firstRefusal != 1 {
		t.Errorf("%d of %d granted, %d first refusals; want %d and 1", granted, n, firstRefusal, burst)
	}
}

// TestAttemptLimiterLongKeys limits a 512 KiB key like any other, tells
// apart keys that differ only in their last byte, and keeps none of the
// keys it was given.
func TestAttemptLimiterLongKeys(t *testing.T) {
	huge := strings.Repeat("u", 512<<10)
	l := NewAttemptLimiter(2, time.Hour)
	for _, s := range []limiterStep{
		take(huge, 0, true, false), take(huge, 0, true, false), take(huge, 0, false, true),
		take(huge[:len(huge)-1]+"v", 0, true, false),
	} {
		if ok, first := l.Take(s.key, fixNow); ok != s.ok || first != s.first {
			t.Fatalf("Take(%.8s... of %d bytes) = %v, %v; want %v, %v",
				s.key, len(s.key), ok, first, s.ok, s.first)
		}
	}

	// Were the keys kept, 64 of them would hold 32 MiB.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 64 {
		l.Take(fmt.Sprintf("%s%08d", huge[8:], i), fixNow)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc+4<<20 {
		t.Errorf("the heap grew from %d to %d KiB for 64 buckets", before.HeapAlloc>>10, after.HeapAlloc>>10)
	}
	if n := len(l.buckets); n != 66 {
		t.Errorf("%d buckets, want 66", n)
	}
}

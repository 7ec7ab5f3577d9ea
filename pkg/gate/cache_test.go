package gate

import (
	"crypto/sha256"
	"slices"
	"strconv"
	"testing"
	"time"
)

func key(token, leaf string) cacheKey {
	return cacheKey{token: sha256.Sum256([]byte(token)), leaf: sha256.Sum256([]byte(leaf))}
}

func adm(session, fp string) *Admission {
	return &Admission{APISessionID: session, Fingerprint: fp}
}

func TestCacheExpiresOnRead(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := newCache(10)
	c.put(key("t", "l"), adm("s", "f"), now.Add(time.Minute), now)

	for _, tc := range []struct {
		name string
		at   time.Time
		hit  bool
	}{
		{"before expiry", now.Add(59 * time.Second), true},
		{"at expiry", now.Add(time.Minute), false},
		{"after expiry", now.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.get(key("t", "l"), tc.at) != nil; got != tc.hit {
				t.Errorf("hit = %v, want %v", got, tc.hit)
			}
		})
	}
}

func TestCacheKeyNeedsTokenAndLeaf(t *testing.T) {
	now := time.Now()
	c := newCache(10)
	c.put(key("token-a", "leaf-a"), adm("a", "fa"), now.Add(time.Hour), now)
	for _, tc := range []struct {
		name  string
		k     cacheKey
		found bool
	}{
		{"same token and leaf", key("token-a", "leaf-a"), true},
		{"another token", key("token-b", "leaf-a"), false},
		{"another leaf", key("token-a", "leaf-b"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.get(tc.k, now) != nil; got != tc.found {
				t.Errorf("found = %v, want %v", got, tc.found)
			}
		})
	}
}

func TestCacheBoundAndSecondChance(t *testing.T) {
	now := time.Now()
	c := newCache(3)
	for i := range 3 {
		c.put(key("t"+strconv.Itoa(i), "l"), adm("s"+strconv.Itoa(i), "f"), now.Add(time.Hour), now)
	}
	// A fresh entry is not referenced until read: reading t0 saves it.
	c.get(key("t0", "l"), now)
	c.put(key("t3", "l"), adm("s3", "f"), now.Add(time.Hour), now)

	if n := c.len(); n != 3 {
		t.Fatalf("len = %d, want 3", n)
	}
	for _, tc := range []struct {
		token string
		kept  bool
	}{
		{"t0", true}, {"t1", false}, {"t2", true}, {"t3", true},
	} {
		t.Run(tc.token, func(t *testing.T) {
			if got := c.get(key(tc.token, "l"), now) != nil; got != tc.kept {
				t.Errorf("kept = %v, want %v", got, tc.kept)
			}
		})
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	now := time.Now()
	c := newCache(2)
	c.put(key("old", "l"), adm("s1", "f"), now.Add(time.Second), now)
	c.put(key("live", "l"), adm("s2", "f"), now.Add(time.Hour), now)
	c.get(key("old", "l"), now) // referenced, but expired by the next put
	later := now.Add(time.Minute)
	c.put(key("new", "l"), adm("s3", "f"), later.Add(time.Hour), later)
	if c.get(key("live", "l"), later) == nil || c.get(key("new", "l"), later) == nil {
		t.Error("the live entries were evicted instead of the expired one")
	}
}

func TestCacheRemovals(t *testing.T) {
	now := time.Now()
	fill := func() *cache {
		c := newCache(10)
		c.put(key("a", "1"), adm("A", "f1"), now.Add(time.Hour), now)
		c.put(key("a", "2"), adm("A", "f2"), now.Add(time.Hour), now)
		c.put(key("b", "3"), adm("B", "f3"), now.Add(time.Hour), now)
		return c
	}
	for _, tc := range []struct {
		name    string
		remove  func(*cache) int
		removed int
		left    []cacheKey
	}{
		{"session", func(c *cache) int { return c.removeSession("A") }, 2,
			[]cacheKey{key("b", "3")}},
		{"one certificate", func(c *cache) int {
			return c.removeCertificates("A", []string{"f1"})
		}, 1, []cacheKey{key("a", "2"), key("b", "3")}},
		{"certificate of another session", func(c *cache) int {
			return c.removeCertificates("B", []string{"f1"})
		}, 0, []cacheKey{key("a", "1"), key("a", "2"), key("b", "3")}},
		{"unknown session", func(c *cache) int { return c.removeSession("C") }, 0,
			[]cacheKey{key("a", "1"), key("a", "2"), key("b", "3")}},
		{"all", func(c *cache) int { return c.clear() }, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fill()
			if n := tc.remove(c); n != tc.removed {
				t.Errorf("removed %d, want %d", n, tc.removed)
			}
			if n := c.len(); n != len(tc.left) {
				t.Errorf("len = %d, want %d", n, len(tc.left))
			}
			for _, k := range tc.left {
				if c.get(k, now) == nil {
					t.Errorf("entry %x lost", k.token[:4])
				}
			}
		})
	}
}

func TestCacheTakeActive(t *testing.T) {
	now := time.Now()
	c := newCache(10)
	c.put(key("a", "1"), adm("A", "f1"), now.Add(time.Hour), now)
	c.put(key("b", "1"), adm("B", "f1"), now.Add(time.Hour), now)

	if got := c.takeActive(now); len(got) != 0 {
		t.Errorf("before any hit = %v, want none", got)
	}
	c.get(key("b", "1"), now)
	if got := c.takeActive(now); !slices.Equal(got, []string{"B"}) {
		t.Errorf("after a hit on B = %v, want [B]", got)
	}
	if got := c.takeActive(now); len(got) != 0 {
		t.Errorf("with no hits = %v, want none", got)
	}
}

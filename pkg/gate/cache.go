package gate

import (
	"container/list"
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// cacheKey names one decision: the SHA-256 of the token and of the leaf's
// DER. The token itself is never kept; the leaf is keyed by SHA-256 rather
// than by the controller's SHA-1 fingerprint so that the key stays
// collision-resistant.
type cacheKey struct {
	token [sha256.Size]byte
	leaf  [sha256.Size]byte
}

// entry is one cached grant.
type entry struct {
	key     cacheKey
	adm     *Admission
	expires time.Time
	elem    *list.Element

	// referenced gives the entry a second chance when the cache is full.
	referenced atomic.Bool
	// active says the entry was used since the last heartbeat, so that its
	// session is reported as active.
	active atomic.Bool
}

// cache is a bounded map of grants with expiry checked on read. Eviction is
// second-chance (CLOCK) over insertion order, so that a hit needs only the
// read lock: it sets a flag instead of moving the entry in a list.
type cache struct {
	max int

	mu        sync.RWMutex
	byKey     map[cacheKey]*entry
	bySession map[string]map[*entry]struct{}
	order     *list.List // of *entry, oldest insertion first
}

func newCache(size int) *cache {
	return &cache{
		max:       size,
		byKey:     make(map[cacheKey]*entry),
		bySession: make(map[string]map[*entry]struct{}),
		order:     list.New(),
	}
}

// get returns the grant under k if it has not expired at now.
func (c *cache) get(k cacheKey, now time.Time) *Admission {
	c.mu.RLock()
	e := c.byKey[k]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	// Stores are skipped when the flag is already set: a busy entry would
	// otherwise bounce its cache line between cores on every hit.
	if !e.referenced.Load() {
		e.referenced.Store(true)
	}
	if !e.active.Load() {
		e.active.Store(true)
	}
	return e.adm
}

// put caches adm under k until expires, replacing any older entry, and
// evicts one entry first when the cache is full.
func (c *cache) put(k cacheKey, adm *Admission, expires, now time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byKey[k]; old != nil {
		c.unlink(old)
	}
	if len(c.byKey) >= c.max {
		c.evictOne(now)
	}
	// A new entry is not marked active: the controller counted the
	// createAdmission that produced it as activity already.
	e := &entry{key: k, adm: adm, expires: expires}
	e.elem = c.order.PushBack(e)
	c.byKey[k] = e
	set := c.bySession[adm.APISessionID]
	if set == nil {
		set = make(map[*entry]struct{})
		c.bySession[adm.APISessionID] = set
	}
	set[e] = struct{}{}
}

// evictOne drops the oldest entry that is expired or was not used since the
// hand last passed it. Each pass clears the flags it skips, so the loop ends
// within one turn of the list.
func (c *cache) evictOne(now time.Time) {
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		e := el.Value.(*entry)
		if e.referenced.Swap(false) && now.Before(e.expires) {
			c.order.MoveToBack(el)
			continue
		}
		c.unlink(e)
		return
	}
}

// unlink removes e from every index. The caller holds the write lock.
func (c *cache) unlink(e *entry) {
	delete(c.byKey, e.key)
	c.order.Remove(e.elem)
	if set := c.bySession[e.adm.APISessionID]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(c.bySession, e.adm.APISessionID)
		}
	}
}

// removeSession drops every grant of a session and returns how many.
func (c *cache) removeSession(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.bySession[id]
	n := len(set)
	for e := range set {
		c.unlink(e)
	}
	return n
}

// removeCertificates drops the grants of a session for any of the leaf
// fingerprints given and returns how many.
func (c *cache) removeCertificates(id string, fingerprints []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := range c.bySession[id] {
		if slices.Contains(fingerprints, e.adm.Fingerprint) {
			c.unlink(e)
			n++
		}
	}
	return n
}

// clear drops every grant and returns how many there were.
func (c *cache) clear() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.byKey)
	c.byKey = make(map[cacheKey]*entry)
	c.bySession = make(map[string]map[*entry]struct{})
	c.order.Init()
	return n
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byKey)
}

// takeActive returns the sessions with a grant used since the last call,
// and clears the marks.
func (c *cache) takeActive(now time.Time) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []string
	for id, set := range c.bySession {
		used := false
		for e := range set {
			if e.active.Swap(false) && now.Before(e.expires) {
				used = true
			}
		}
		if used {
			ids = append(ids, id)
		}
	}
	return ids
}

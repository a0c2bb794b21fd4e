package gate

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache remembers tokens that verified, so that a client sending
// the same token with every request pays for the signature once: an
// ES256 or RS256 check costs tens of microseconds, a lookup well under
// one. Tokens are keyed by their SHA-256, so the cache holds no bearer
// token. Only verified tokens enter, so a client cannot fill it with
// garbage; its size is bounded by two generations of max/2 entries.
// Each Gate has its own: a reload that changes keys starts empty.
type tokenCache struct {
	mu       sync.Mutex
	cur, old map[[sha256.Size]byte]*cachedToken
	half     int
}

// cachedToken is a verified token's principal and the times to check
// again on each use; zero means the claim is absent.
type cachedToken struct {
	p             *Principal
	exp, nbf, iat int64 // unix seconds
}

// DefaultTokenCache is the number of verified tokens remembered.
const DefaultTokenCache = 4096

func newTokenCache(max int) *tokenCache {
	if max < 2 {
		return nil
	}
	return &tokenCache{cur: map[[sha256.Size]byte]*cachedToken{}, old: map[[sha256.Size]byte]*cachedToken{}, half: max / 2}
}

func (c *tokenCache) get(k [sha256.Size]byte) *cachedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.cur[k]; ok {
		return t
	}
	if t, ok := c.old[k]; ok {
		delete(c.old, k)
		c.putLocked(k, t)
		return t
	}
	return nil
}

func (c *tokenCache) put(k [sha256.Size]byte, t *cachedToken) {
	c.mu.Lock()
	c.putLocked(k, t)
	c.mu.Unlock()
}

func (c *tokenCache) putLocked(k [sha256.Size]byte, t *cachedToken) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[[sha256.Size]byte]*cachedToken, c.half)
	}
	c.cur[k] = t
}

func (c *tokenCache) drop(k [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.cur, k)
	delete(c.old, k)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// valid tells whether the token's times still hold at now, with the same
// leeway the parser applies.
func (t *cachedToken) valid(now time.Time, leeway time.Duration) bool {
	n := now.Unix()
	l := int64(leeway / time.Second)
	if t.exp == 0 || n >= t.exp+l {
		return false
	}
	if t.nbf != 0 && n+l < t.nbf {
		return false
	}
	if t.iat != 0 && n+l < t.iat {
		return false
	}
	return true
}

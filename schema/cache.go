package schema

import "time"

// Cache bounds the response cache; see #Cache in config.cue.
type Cache struct {
	MaxEntries int
	MaxBytes   int64
	TTL        time.Duration // 0: answers do not expire
	// Sampled caches requests whose answer is random too.
	Sampled bool
}

// maxCacheTTL bounds cache.ttl: an answer older than a month is more
// likely stale than useful.
const maxCacheTTL = 30 * day

type rawCache struct {
	Enabled    bool   `json:"enabled"`
	MaxEntries int    `json:"max_entries"`
	MaxBytes   int64  `json:"max_bytes"`
	TTL        string `json:"ttl"`
	Sampled    bool   `json:"sampled"`
}

// convertCache returns nil when the cache is off, so that a config
// without one is what it was before the cache existed.
func (c *checker) convertCache(raw *rawCache) *Cache {
	// Checked even when off, so that turning it on later cannot fail on
	// a value written long before.
	ttl := c.duration([]string{"cache", "ttl"}, raw.TTL, false, maxCacheTTL)
	if !raw.Enabled {
		return nil
	}
	return &Cache{MaxEntries: raw.MaxEntries, MaxBytes: raw.MaxBytes, TTL: ttl, Sampled: raw.Sampled}
}

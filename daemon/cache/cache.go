// Package cache keeps the answers to repeated requests in memory, so that
// a question asked again is answered without running its model: an LRU
// bounded by entries and by bytes, each answer kept at most a TTL from
// when it was stored. Keys (NewKey) hash the model's identity and every
// field of the request that changes its answer; what to cache, and for
// whom, is the caller's to decide.
//
// The LRU is hashicorp/golang-lru's simplelru under one mutex of ours:
// its eviction callback keeps the byte count and the per-model gauges
// exact whichever way an entry leaves, and the TTL is checked here, on
// the clock of Options.Now, so no goroutine runs per cache and tests need
// no sleeping.
package cache

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Entry is one cached answer. It is shared by every request it is served
// to, so it must not be changed once stored.
type Entry struct {
	// Body is a whole answer whose bytes do not depend on the request
	// that gets it (an embeddings response); nil for generated text,
	// whose answer carries the request's own id and time.
	Body []byte
	// Chunks are generated text as it was streamed: joined, they are the
	// whole text, and a streamed hit sends them one event each, as the
	// miss did.
	Chunks []string
	// FinishReason is the generation's: "stop" or "length".
	FinishReason string
	// PromptTokens and CompletionTokens are what the answer cost, which
	// a hit is counted and charged with again.
	PromptTokens, CompletionTokens int
}

// Text is the generated text: the chunks joined.
func (e *Entry) Text() string { return strings.Join(e.Chunks, "") }

// entryOverhead is what an entry costs besides its bytes: the key, the
// list element, the map slot and the Entry itself, roughly.
const entryOverhead = 256

// Size is the bytes the entry is counted for against Options.MaxBytes.
func (e *Entry) Size() int64 {
	n := int64(entryOverhead + len(e.Body) + len(e.FinishReason))
	for _, c := range e.Chunks {
		n += int64(len(c)) + 16
	}
	return n
}

// Options bound a cache.
type Options struct {
	// MaxEntries is the most answers kept; at least 1.
	MaxEntries int
	// MaxBytes is the most bytes of answers kept (Entry.Size summed); an
	// answer larger on its own is not stored.
	MaxBytes int64
	// TTL is how long an answer is served after it was stored; 0 keeps
	// it until it is evicted.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Metrics receives the aiassist_cache_* series; nil makes a private
	// set.
	Metrics *metrics.Set
}

// Eviction reasons, the reason label of aiassist_cache_evictions_total.
const (
	reasonEntries = "entries" // MaxEntries was reached
	reasonBytes   = "bytes"   // MaxBytes was reached
	reasonExpired = "expired" // older than TTL
	reasonUnused  = "unused"  // its model is no longer served as it was (Retain)
)

// Cache is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	opts  Options
	lru   *simplelru.LRU[[32]byte, *item]
	bytes int64
	// reason is why the entries the LRU drops now leave: set around
	// each call that may drop one, read by the eviction callback.
	reason string
	models map[string]*modelSeries
	set    *metrics.Set
}

type item struct {
	key    Key
	entry  *Entry
	size   int64
	stored time.Time
}

// modelSeries are one model's series.
type modelSeries struct {
	hits, misses   *metrics.Counter
	entries, bytes *metrics.Gauge
}

// New returns an empty cache.
func New(opts Options) *Cache {
	opts = normalise(opts)
	c := &Cache{opts: opts, models: map[string]*modelSeries{}, set: opts.Metrics}
	if c.set == nil {
		c.set = metrics.NewSet()
	}
	// The size is checked by normalise, the one error NewLRU has.
	c.lru, _ = simplelru.NewLRU(opts.MaxEntries, c.evicted)
	return c
}

func normalise(o Options) Options {
	o.MaxEntries = max(o.MaxEntries, 1)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Resize applies new bounds, as a reload does: answers over them leave,
// the least recently used first, and a shorter TTL applies to those
// already stored. Metrics and Now are kept.
func (c *Cache) Resize(opts Options) {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts.Metrics, opts.Now = c.opts.Metrics, c.opts.Now
	c.opts = normalise(opts)
	c.reason = reasonEntries
	c.lru.Resize(c.opts.MaxEntries)
	c.trim()
}

// Retain drops the answers of models whose identity keep does not hold:
// after a reload, those of a model loaded from new files, or no longer
// served, can never be hit again.
func (c *Cache) Retain(keep func(model, id string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reason = reasonUnused
	for _, k := range c.lru.Keys() {
		if it, ok := c.lru.Peek(k); ok && !keep(it.key.Model, it.key.ID) {
			c.lru.Remove(k)
		}
	}
}

// Get returns the answer stored under k, counting a hit or a miss for
// k's model. An answer older than the TTL is a miss, and is dropped.
func (c *Cache) Get(k Key) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.series(k.Model)
	it, ok := c.lru.Get(k.sum)
	if ok && c.expired(it) {
		c.reason = reasonExpired
		c.lru.Remove(k.sum)
		ok = false
	}
	if !ok {
		s.misses.Inc()
		return nil, false
	}
	s.hits.Inc()
	return it.entry, true
}

// Miss counts a miss for k's model without a lookup: a request told
// not to read the cache (Cache-Control: no-cache), whose answer is
// stored all the same.
func (c *Cache) Miss(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.series(k.Model).misses.Inc()
}

// Put stores e under k, in place of what was there. It reports whether
// e was stored: one larger than MaxBytes alone is not.
func (c *Cache) Put(k Key, e *Entry) bool {
	size := e.Size()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts.MaxBytes > 0 && size > c.opts.MaxBytes {
		return false
	}
	c.series(k.Model)
	// An old answer under the same key is replaced, not evicted; the
	// LRU's Add would swap it without telling the callback.
	c.reason = ""
	c.lru.Remove(k.sum)
	c.dropExpired()
	it := &item{key: k, entry: e, size: size, stored: c.opts.Now()}
	c.bytes += size
	if s := c.models[k.Model]; s != nil {
		s.entries.Inc()
		s.bytes.Add(float64(size))
	}
	c.reason = reasonEntries
	c.lru.Add(k.sum, it)
	c.trim()
	return true
}

// Len is the number of answers stored, expired ones included until they
// are looked at or pushed out.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes is the size of the answers stored.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Purge drops every answer, as when the cache is turned off.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reason = ""
	c.lru.Purge()
}

// trim evicts the least recently used answers until the bytes fit.
func (c *Cache) trim() {
	c.reason = reasonBytes
	for c.opts.MaxBytes > 0 && c.bytes > c.opts.MaxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			return
		}
	}
}

// dropExpired drops expired answers from the old end of the list, a few
// at each Put, so that answers nobody asks for again do not hold their
// bytes until the cache fills.
func (c *Cache) dropExpired() {
	c.reason = reasonExpired
	for range 4 {
		_, it, ok := c.lru.GetOldest()
		if !ok || !c.expired(it) {
			return
		}
		c.lru.RemoveOldest()
	}
}

func (c *Cache) expired(it *item) bool {
	return c.opts.TTL > 0 && c.opts.Now().Sub(it.stored) >= c.opts.TTL
}

// evicted is the LRU's callback: every entry that leaves passes here,
// with c.mu held.
func (c *Cache) evicted(_ [32]byte, it *item) {
	c.bytes -= it.size
	if s := c.models[it.key.Model]; s != nil {
		s.entries.Dec()
		s.bytes.Add(-float64(it.size))
	}
	if c.reason != "" {
		c.set.GetOrCreateCounter(`aiassist_cache_evictions_total{model=` + strconv.Quote(it.key.Model) + `,reason="` + c.reason + `"}`).Inc()
	}
}

// series returns the series of model, made on its first use. c.mu is
// held; the gauges have no callback, so a scrape never waits for it.
func (c *Cache) series(model string) *modelSeries {
	if s := c.models[model]; s != nil {
		return s
	}
	l := `{model=` + strconv.Quote(model) + `}`
	s := &modelSeries{
		hits:    c.set.GetOrCreateCounter(`aiassist_cache_hits_total` + l),
		misses:  c.set.GetOrCreateCounter(`aiassist_cache_misses_total` + l),
		entries: c.set.GetOrCreateGauge(`aiassist_cache_entries`+l, nil),
		bytes:   c.set.GetOrCreateGauge(`aiassist_cache_bytes`+l, nil),
	}
	c.models[model] = s
	return s
}
